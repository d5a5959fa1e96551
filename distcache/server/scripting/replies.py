"""Lua values into Redis replies: a script's return value, and Lua's tostring.

:func:`lua_to_reply` follows Redis 7.0's luaReplyToRedisReply, and
:func:`encode_script_reply` keeps a map's or set's members in the order the
script's table gave them. (redis.call's replies into Lua values are
:meth:`.lua.LuaRuntime.reply_to_lua`: they need the runtime's tables.)
"""
from __future__ import annotations

import math
from typing import Any, List, Optional

import lupa.lua51 as lupa

from ...protocol import ReplyError, Status
from ...protocol.resp import Raw, encode_reply, format_double

LLONG_MIN = -(1 << 63)
#: Nesting beyond this in a script's reply is refused, as Redis's Lua stack limit
#: refuses it (a table that holds itself would otherwise recurse forever).
MAX_REPLY_DEPTH = 200


def lua_tostring(value: Any) -> Optional[bytes]:
    """Lua's lua_tolstring: strings and numbers (``%.14g``), else None."""
    cls = value.__class__
    if cls is bytes:
        return value
    if cls is int or cls is float:
        return b"%.14g" % value
    return None


def to_integer(value: Any) -> int:
    """A Lua number as Redis returns it: C's (long long) cast."""
    if value.__class__ is int:
        return value if LLONG_MIN <= value < -LLONG_MIN else LLONG_MIN
    if math.isnan(value) or math.isinf(value) or not LLONG_MIN <= value < -LLONG_MIN:
        return LLONG_MIN
    return int(value)


def lua_to_reply(value: Any, resp3: bool, script_resp3: bool, depth: int = 0) -> Any:
    """A script's return value as the reply Redis 7.0 sends (luaReplyToRedisReply)."""
    cls = value.__class__
    if cls is bytes:
        return value
    if cls is int or cls is float:
        return to_integer(value)
    if cls is bool:
        if script_resp3:
            return value
        return 1 if value else None
    if value is None:
        return None
    if lupa.lua_type(value) != "table":
        return None
    if depth > MAX_REPLY_DEPTH:
        return ReplyError("ERR reached lua stack limit")
    err = value[b"err"]
    if err.__class__ is bytes:
        text = err.decode("utf-8", "replace")
        return ReplyError(text[1:] if text.startswith("-") else text)
    ok = value[b"ok"]
    if ok.__class__ is bytes:
        return Status(ok.replace(b"\r", b" ").replace(b"\n", b" "))
    double = value[b"double"]
    if double.__class__ is int or double.__class__ is float:
        return float(double)
    big = value[b"big_number"]
    if big.__class__ is bytes:
        big = big.replace(b"\r", b" ").replace(b"\n", b" ")
        return Raw(b"(%s\r\n" % big) if resp3 else big
    verbatim = value[b"verbatim_string"]
    if lupa.lua_type(verbatim) == "table":
        fmt, text = verbatim[b"format"], verbatim[b"string"]
        if fmt.__class__ is bytes and text.__class__ is bytes:
            if resp3:
                return Raw(b"=%d\r\n%s:%s\r\n" % (len(text) + 4, fmt[:3].ljust(3), text))
            return text
    depth += 1
    mapping = value[b"map"]
    if lupa.lua_type(mapping) == "table":
        pairs = []
        for k, v in mapping.items():
            pairs.append(lua_to_reply(k, resp3, script_resp3, depth))
            pairs.append(lua_to_reply(v, resp3, script_resp3, depth))
        return _Map(pairs)
    members = value[b"set"]
    if lupa.lua_type(members) == "table":
        items = [lua_to_reply(k, resp3, script_resp3, depth) for k in members.keys()]
        return _Set(items)
    out = []
    i = 1
    while True:
        item = value[i]
        if item is None:
            break
        out.append(lua_to_reply(item, resp3, script_resp3, depth))
        i += 1
    return out


class _Map(list):
    """A map reply as flat key, value pairs (keys may repeat or be unhashable)."""


class _Set(list):
    """A set reply in the script's order."""


def encode_script_reply(value: Any, out: List[bytes], resp3: bool) -> None:
    """encode_reply, plus maps and sets in the order the script's table gave them."""
    cls = value.__class__
    if cls is _Map:
        out.append(b"%%%d\r\n" % (len(value) // 2) if resp3 else b"*%d\r\n" % len(value))
    elif cls is _Set:
        out.append(b"~%d\r\n" % len(value) if resp3 else b"*%d\r\n" % len(value))
    elif cls is list:
        out.append(b"*%d\r\n" % len(value))
    elif cls is float and not resp3:
        text = format_double(value)
        out.append(b"$%d\r\n%s\r\n" % (len(text), text))
        return
    else:
        encode_reply(value, out, resp3)
        return
    for item in value:
        encode_script_reply(item, out, resp3)
