"""Server commands: INFO, CONFIG, COMMAND, TIME, SHUTDOWN, and reset helpers."""
from __future__ import annotations

import re
import time
from typing import Any, Dict, List

from ...config import ALIASES, ConfigError, DIRECTIVES, REDIS_ONLY
from ...directives import PROTECTED
from ...protocol import OK, RespSet, Status, Verbatim
from .. import info as info_mod
from ..errors import CommandError, SYNTAX
from ..client_info import is_local_address
from ..glob import glob_match
from .table import (ACL_CATEGORIES, COMMANDS, CommandSpec, command, container, help_reply,
                    keys_with_access)

_SRV = dict(group="server")


@command("info", -1, "loading stale", **_SRV)
def info(c: Any, args: List[bytes]) -> Any:
    """Server information and statistics, by section."""
    text = info_mod.render(c.server, [a.decode("utf-8", "replace") for a in args[1:]])
    return Verbatim(text.encode())


@command("time", 1, "loading fast stale", **_SRV)
def time_(c: Any, args: List[bytes]) -> Any:
    """The server's time: [seconds, microseconds]."""
    now = time.time()
    seconds = int(now)
    return [b"%d" % seconds, b"%d" % int((now - seconds) * 1_000_000)]


@command("shutdown", -1, "admin loading no_multi allow_busy noscript stale", **_SRV)
def shutdown(c: Any, args: List[bytes]) -> Any:
    """Stop the server, saving unless NOSAVE."""
    save = None
    for arg in args[1:]:
        opt = arg.upper()
        if opt == b"NOSAVE":
            save = False
        elif opt == b"SAVE":
            save = True
        elif opt in (b"NOW", b"FORCE"):
            pass
        elif opt == b"ABORT":
            raise CommandError("ERR No shutdown in progress.")
        else:
            raise CommandError(SYNTAX)
    try:
        c.server.shutdown(save, raise_errors=True)
    except Exception:
        raise CommandError("ERR Errors trying to SHUTDOWN. Check logs.") from None
    c.closing = True
    from ..connection import BLOCKED
    return BLOCKED  # Redis closes the connection without replying


# -- CONFIG ----------------------------------------------------------------------------

container("config", -2, "", summary="Manage the server configuration.")
_CFG = dict(parent="config", group="server")


@command("get", -3, "admin noscript loading stale", **_CFG)
def config_get(c: Any, args: List[bytes]) -> Any:
    """Directives matching one or more glob patterns."""
    config = c.server.config
    out: Dict[bytes, bytes] = {}
    seen = set()  # names shown, in any case (Redis's reply dict ignores case)
    names = None
    for pattern in dict.fromkeys(args[2:]):  # a repeated pattern adds nothing
        if not _GLOB_CHARS.search(pattern):
            # As Redis: a name without * ? [ is looked up, and shown as given.
            if names is None:
                names = set(config.names())
            name = pattern.decode("utf-8", "replace").lower()
            if name in names and name not in seen:
                seen.add(name)
                out[pattern] = config.render(name).encode()
            continue
        pat = pattern.lower()
        for name in config.names():
            if name not in seen and glob_match(pat, name.encode()):
                seen.add(name)
                out[name.encode()] = config.render(name).encode()
    return out


_GLOB_CHARS = re.compile(rb"[*?\[]")


@command("set", -4, "admin noscript loading stale", **_CFG)
def config_set(c: Any, args: List[bytes]) -> Any:
    """Change directives at run time: CONFIG SET name value [name value ...]."""
    if len(args) % 2:
        raise CommandError("ERR wrong number of arguments for 'config|set' command")
    config = c.server.config
    pairs = [(_canonical(args[i].decode("utf-8", "replace").lower()),
              args[i + 1].decode("utf-8", "replace")) for i in range(2, len(args), 2)]
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise CommandError(f"ERR CONFIG SET failed (possibly related to argument '{dup}') - "
                           "duplicate parameter")
    for name, _ in pairs:
        if name not in DIRECTIVES and name not in REDIS_ONLY:
            raise CommandError(f"ERR Unknown option or number of arguments for CONFIG SET - "
                               f"'{name}'")
    for name in names:
        if name in PROTECTED and not _protected_allowed(c):
            raise CommandError(f"ERR CONFIG SET failed (possibly related to argument '{name}') - "
                               "can't set protected config")
    previous = {name: config.render(name) if name in DIRECTIVES or name in config.foreign
                else None for name, _ in pairs}
    try:
        for name, value in pairs:
            config.set(name, value, startup=False)
        for apply in c.server.config_appliers:  # e.g. TLS: load the new certificate
            apply(names)
    except ConfigError as exc:
        for name, old in previous.items():  # all or nothing, as in Redis 7
            if old is not None:
                config.set(name, old)
            else:
                config.foreign.pop(name, None)  # a Redis-only directive never set
        raise CommandError(exc.reply_text) from None
    for name, _ in pairs:
        c.server.config_changed(name)
    return OK


def _protected_allowed(c: Any) -> bool:
    """``enable-protected-configs``: yes, or local and the client is on loopback or a socket file."""
    mode = c.server.config["enable-protected-configs"]
    return mode == "yes" or (mode == "local" and is_local_address(c.addr))


def _canonical(name: str) -> str:
    return ALIASES.get(name, name)  # lua-time-limit is busy-reply-threshold


@command("resetstat", 2, "admin noscript loading stale", **_CFG)
def config_resetstat(c: Any, args: List[bytes]) -> Any:
    """Reset the statistics INFO reports."""
    c.server.reset_stats()
    return OK


@command("rewrite", 2, "admin noscript loading stale", **_CFG)
def config_rewrite(c: Any, args: List[bytes]) -> Any:
    """Write the running configuration back to the config file."""
    path = c.server.config.source_file
    if not path:
        raise CommandError("ERR The server is running without a config file")
    config = c.server.config
    if not config["aclfile"]:  # as Redis: the users as they are now, as user lines
        config.users = c.server.acl.config_lines()
    config.rewrite(path)
    return OK


@command("help", 2, "loading stale", **_CFG)
def config_help(c: Any, args: List[bytes]) -> Any:
    """Subcommands of CONFIG."""
    return help_reply("CONFIG",
                      ["GET <pattern>, SET <directive> <value>, RESETSTAT, REWRITE, HELP"])


# -- COMMAND ---------------------------------------------------------------------------

def _unique_subs(spec: CommandSpec) -> List[CommandSpec]:
    return sorted({s.name: s for s in spec.subcommands.values()}.values(), key=lambda s: s.name)


#: Flags in the order COMMAND INFO lists them (others, like may_replicate, are hidden).
_FLAG_ORDER = ["write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript",
               "blocking", "loading", "stale", "skip_monitor", "skip_slowlog", "asking", "fast",
               "no_auth", "no_mandatory_keys", "no_async_loading", "no_multi", "movablekeys",
               "allow_busy"]
def _set_or_array(items: list) -> list:
    """Redis sends an empty list here as a RESP3 set, a non-empty one as an array."""
    return items if items else RespSet()


def command_info(spec: CommandSpec) -> list:
    flags = RespSet(Status(f.encode()) for f in _FLAG_ORDER if f in spec.flags)
    if spec.handler is None:  # a container (CONFIG, CLIENT): only its subcommands run
        return _container_info(spec)
    acl_set = acl_category_set(spec)
    key_specs = []
    if spec.first_key:
        last = spec.last_key
        access = b"not_key" if "not_key" in spec.flags else b"RW" if spec.write else b"RO"
        key_specs.append({b"flags": RespSet([Status(access)]),
                          b"begin_search": {b"type": b"index",
                                            b"spec": {b"index": spec.first_key}},
                          b"find_keys": {b"type": b"range",
                                         b"spec": {b"lastkey": last if last < 0
                                                   else last - spec.first_key,
                                                   b"keystep": spec.step, b"limit": 0}}})
    return [spec.fullname.encode(), spec.arity, flags, spec.first_key, spec.last_key,
            spec.step, acl_set, RespSet(), _set_or_array(key_specs),
            _set_or_array([command_info(s) for s in _unique_subs(spec)])]


def acl_category_set(spec: CommandSpec) -> RespSet:
    """A command's ACL categories as COMMAND INFO lists them (``@read``...)."""
    return RespSet(Status(b"@" + name.encode()) for name in ACL_CATEGORIES
                   if name in spec.acl_categories)


def _container_info(spec: CommandSpec) -> list:
    return [spec.fullname.encode(), spec.arity, RespSet(), 0, 0, 0, acl_category_set(spec),
            RespSet(), RespSet(), _set_or_array([command_info(s) for s in _unique_subs(spec)])]


def command_docs(spec: CommandSpec) -> Dict[bytes, Any]:
    doc: Dict[bytes, Any] = {b"summary": spec.summary.encode(), b"since": spec.since.encode(),
                             b"group": spec.group.encode(),
                             b"complexity": spec.complexity.encode()}
    subs = _unique_subs(spec)
    if subs:
        doc[b"subcommands"] = {s.fullname.encode(): command_docs(s) for s in subs}
    return doc


def _resolve(name: bytes) -> Any:
    text = name.decode("utf-8", "replace").lower()
    if "|" in text:
        parent, _, sub = text.partition("|")
        spec = COMMANDS.get(parent)
        return spec.subcommands.get(sub.encode()) if spec else None
    return COMMANDS.get(text)


@command("command", -1, "loading stale", **_SRV)
def command_(c: Any, args: List[bytes]) -> Any:
    """Details of every command."""
    return [command_info(spec) for spec in COMMANDS.values()]


_CMD = dict(parent="command", group="server")


@command("count", 2, "loading stale", **_CMD)
def command_count(c: Any, args: List[bytes]) -> Any:
    """How many commands there are."""
    return len(COMMANDS)


@command("info", -2, "loading stale", **_CMD)
def command_info_(c: Any, args: List[bytes]) -> Any:
    """Details of the named commands (all when none is named)."""
    if len(args) == 2:
        return [command_info(spec) for spec in COMMANDS.values()]
    out = []
    for name in args[2:]:
        spec = _resolve(name)
        out.append(command_info(spec) if spec else None)
    return out


@command("docs", -2, "loading stale", **_CMD)
def command_docs_(c: Any, args: List[bytes]) -> Any:
    """Documentation of the named commands (all when none is named)."""
    specs = list(COMMANDS.values()) if len(args) == 2 else \
        [s for s in (_resolve(n) for n in args[2:]) if s is not None]
    return {s.fullname.encode(): command_docs(s) for s in specs}


@command("list", -2, "loading stale", **_CMD)
def command_list(c: Any, args: List[bytes]) -> Any:
    """Names of all commands (FILTERBY PATTERN, ACLCAT, MODULE)."""
    names = [name.encode() for name in COMMANDS]
    if len(args) > 2:
        if len(args) != 5 or args[2].upper() != b"FILTERBY":
            raise CommandError(SYNTAX)
        kind, value = args[3].upper(), args[4]
        if kind == b"PATTERN":
            names = [n for n in names if glob_match(value.lower(), n)]
        elif kind == b"ACLCAT":
            cat = value.decode("utf-8", "replace").lower().lstrip("@")
            names = [n for n in names if cat in COMMANDS[n.decode()].acl_categories]
        elif kind == b"MODULE":
            names = []
        else:
            raise CommandError(SYNTAX)
    return names


@command("getkeys", -4, "loading stale", **_CMD)
def command_getkeys(c: Any, args: List[bytes]) -> Any:
    """The key arguments of a command call."""
    spec = _resolve(args[2])
    call = args[2:]
    if spec is not None and spec.subcommands and len(call) > 1:  # OBJECT ENCODING key
        spec = spec.subcommands.get(call[1].lower())
    if spec is None:
        raise CommandError("ERR Invalid command specified")
    if not spec.key_specs:  # none declared (SSUBSCRIBE's channels are not keys)
        raise CommandError("ERR The command has no key arguments")
    arity = spec.arity
    if (len(call) != arity) if arity > 0 else (len(call) < -arity):
        raise CommandError("ERR Invalid number of arguments specified for command")
    keys = [call[index] for index, _ in keys_with_access(spec, call)]
    if not keys:
        raise CommandError("ERR The command has no key arguments")
    return keys


@command("help", 2, "loading stale", **_CMD)
def command_help(c: Any, args: List[bytes]) -> Any:
    """Subcommands of COMMAND."""
    return help_reply("COMMAND", ["(no subcommand), COUNT, INFO, DOCS, LIST, GETKEYS, HELP"])

