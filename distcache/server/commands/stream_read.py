"""XREAD and what XREADGROUP shares with it: the options, ``$`` ids, the keyed
reply and blocking on streams (the appending commands wake the blocked readers
through ``types.blocking.signal_ready``)."""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

from ...protocol import NULL_ARRAY, Raw
from ..errors import CommandError, SYNTAX
from ..types.blocking import block, cannot_block
from ..types.stream import Stream
from ..types.stream_node import MAX_ID
from .args import to_int
from .streams import _STREAM, entries_reply, range_reply, stream_of, strict_id
from .table import KEY_FINDERS, command

#: Entries a blocked XREAD without COUNT gets at most (Redis's XREAD_BLOCKED_DEFAULT_COUNT).
BLOCKED_DEFAULT_COUNT = 1000


# -- XREAD (and the parsing XREADGROUP shares) --------------------------------------------

class ReadArgs:
    """XREAD/XREADGROUP's options and streams."""

    __slots__ = ("timeout", "count", "keys", "ids", "group", "consumer", "noack")

    def __init__(self, c: Any, args: List[bytes], group_cmd: bool) -> None:
        self.timeout: Optional[int] = None
        self.count = 0
        self.group: Optional[bytes] = None
        self.consumer = b""
        self.noack = False
        name = "XREADGROUP" if group_cmd else "XREAD"
        streams_at = 0
        argc = len(args)
        i = 1
        while i < argc:
            more = argc - i - 1
            opt = args[i].lower()
            if opt == b"block" and more:
                if getattr(c, "in_script", False):
                    raise CommandError(f"ERR {args[0].decode()} command is not allowed with "
                                       "BLOCK option from scripts")
                i += 1
                timeout = to_int(args[i], "ERR timeout is not an integer or out of range")
                if timeout < 0:
                    raise CommandError("ERR timeout is negative")
                self.timeout = timeout
            elif opt == b"count" and more:
                i += 1
                self.count = max(0, to_int(args[i]))
            elif opt == b"streams" and more:
                streams_at = i + 1
                if (argc - streams_at) % 2:
                    symbol = ">" if group_cmd else "$"
                    raise CommandError(f"ERR Unbalanced '{name.lower()}' list of streams: for "
                                       f"each stream key an ID or '{symbol}' must be "
                                       "specified.")
                break
            elif opt == b"group" and more >= 2:
                if not group_cmd:
                    raise CommandError("ERR The GROUP option is only supported by XREADGROUP. "
                                       "You called XREAD instead.")
                self.group, self.consumer = args[i + 1], args[i + 2]
                i += 2
            elif opt == b"noack":
                if not group_cmd:
                    raise CommandError("ERR The NOACK option is only supported by XREADGROUP. "
                                       "You called XREAD instead.")
                self.noack = True
            else:
                raise CommandError(SYNTAX)
            i += 1
        if not streams_at:
            raise CommandError(SYNTAX)
        if group_cmd and self.group is None:
            raise CommandError("ERR Missing GROUP option for XREADGROUP")
        n = (argc - streams_at) // 2
        self.keys = args[streams_at:streams_at + n]
        self.ids: List[Any] = args[streams_at + n:]


def _xread_ids(c: Any, opts: ReadArgs) -> List[int]:
    """The ids after which each stream is read (``$``: its last id now)."""
    db = c.db
    ids = []
    for key, arg in zip(opts.keys, opts.ids):
        s = stream_of(db, key, counted=False)
        if arg == b"$":
            ids.append(s.last_id if s is not None else 0)
        elif arg == b">":
            raise CommandError("ERR The > ID can be specified only when calling XREADGROUP "
                               "using the GROUP <group> <consumer> option.")
        else:
            ids.append(strict_id(arg))
    return ids


def keyed_reply(c: Any, items: List[Tuple[bytes, Raw]]) -> Raw:
    """[[key, entries]...] in RESP2, a map key -> entries in RESP3 (a key repeats
    when a call names it twice, as in Redis)."""
    head, pair = (b"%%%d\r\n", b"") if c.resp3 else (b"*%d\r\n", b"*2\r\n")
    return Raw(head % len(items) + b"".join(
        [b"%s$%d\r\n%s\r\n%s" % (pair, len(key), key, value) for key, value in items]))


def stream_waiter(c: Any, keys: List[bytes], timeout_ms: int,
                  ready: Callable[[bytes, Stream], bool],
                  serve: Callable[[bytes, Stream], Tuple[Any, List[List[bytes]]]],
                  gone_reply: Any = None) -> Any:
    """Block on streams until ``ready`` says one can be served (0: forever)."""
    if cannot_block(c):
        return NULL_ARRAY
    return block(c, keys, Stream, timeout_ms / 1000.0, serve, ready=ready,
                 gone_reply=gone_reply)


@command("xread", -4, "readonly blocking movablekeys", since="5.0.0",
         complexity="O(N)", **_STREAM)
def xread(c: Any, args: List[bytes]) -> Any:
    """Read entries after given ids from one or more streams (COUNT, BLOCK)."""
    opts = ReadArgs(c, args, False)
    db = c.db
    ids = _xread_ids(c, opts)
    found = []
    for key, after in zip(opts.keys, ids):
        s = stream_of(db, key)
        if s is None or not s.length:
            continue
        if s.top() > after:
            found.append((key, range_reply(s, after + 1, MAX_ID, opts.count)))
    if found:
        return keyed_reply(c, found)
    if opts.timeout is None:
        return NULL_ARRAY
    wanted = dict(zip(opts.keys, ids))
    count = opts.count or BLOCKED_DEFAULT_COUNT

    def ready(key: bytes, s: Stream) -> bool:
        return s.last_id > wanted[key]

    def serve(key: bytes, s: Stream) -> Tuple[Any, List[List[bytes]]]:
        entries = list(s.range(wanted[key] + 1, MAX_ID, count))
        return keyed_reply(c, [(key, entries_reply(entries))]), []

    return stream_waiter(c, opts.keys, opts.timeout, ready, serve)


def xread_keys(args: List[bytes]) -> List[Tuple[int, int]]:
    """XREAD/XREADGROUP's keys: the first half of the arguments after STREAMS."""
    from .table import KEY_READ, KEY_WRITE
    access = KEY_READ | (KEY_WRITE if args[0].lower() == b"xreadgroup" else 0)
    for i in range(1, len(args)):
        if args[i].lower() == b"streams":
            n = (len(args) - i - 1) // 2
            return [(j, access) for j in range(i + 1, i + 1 + n)]
    return []


KEY_FINDERS["xread"] = xread_keys
