"""Pure-Python RESP2/RESP3 codec: reply encoding and request parsing.

It knows nothing of commands. Parsers are incremental: ``feed()`` bytes as
they arrive, then take whole messages out. Both parsers (RequestParser here,
ReplyParser in :mod:`.reply_parser`) keep state across reads, so a value split
over many reads is never re-parsed from its start, and a large bulk string is
assembled with one join instead of repeated concatenation.
"""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

CRLF = b"\r\n"

#: Longest header line (``*123\r\n``) or inline request Redis accepts.
INLINE_MAX_SIZE = 64 * 1024

#: Deepest nesting of aggregates a reply may have before the reply parser gives
#: up with ProtocolError (redis-py caps it too): a hostile server, or anything
#: in between, cannot make the client build an unbounded stack. Redis's own
#: replies nest a few levels at most. hiredis's C reader has a fixed cap of its
#: own (1024 levels) and ignores this one.
MAX_REPLY_DEPTH = 64


class ProtocolError(Exception):
    """The peer sent bytes that are not valid RESP; the connection must close."""


class UnauthenticatedLimit(ProtocolError):
    """A request over the limits of a client not yet authenticated (10
    arguments, 16 KB bulks). The parser stops at the request's first byte over
    the limit, so when the requests before it (``commands``) authenticate the
    client, ``get_commands()`` resumes there: Redis checks each request as it
    reaches it, after the ones before it ran."""


class ReplyError(Exception):
    """An error reply (``-ERR ...``). Parsers return it rather than raise it."""

    @property
    def code(self) -> str:
        return str(self.args[0]).split(" ", 1)[0] if self.args else ""


class PushMessage(list):
    """A RESP3 out-of-band push (``>``), such as a pub/sub message."""


# ---------------------------------------------------------------------------
# Reply values the server hands to the encoder
# ---------------------------------------------------------------------------

class Raw(bytes):
    """Bytes that are already on-the-wire RESP (``+OK\\r\\n``)."""


class Status(bytes):
    """A simple string reply (``+text``)."""


class Verbatim(bytes):
    """A verbatim text reply: ``=`` in RESP3, a bulk string in RESP2."""


class RespSet(list):
    """A set reply: ``~`` in RESP3, an array in RESP2."""


class Push(list):
    """A push reply: ``>`` in RESP3, an array in RESP2."""


class _NullArray:
    """``*-1`` in RESP2 and ``_`` in RESP3 (EXEC aborted, BLPOP timed out)."""

    __slots__ = ()


NULL_ARRAY = _NullArray()
OK = Raw(b"+OK\r\n")
PONG = Raw(b"+PONG\r\n")
QUEUED = Raw(b"+QUEUED\r\n")
EMPTY_ARRAY = Raw(b"*0\r\n")


def format_double(value: float) -> bytes:
    """Render a float as Redis 7.0 does: ``%.17g`` (inf, -inf and nan included)."""
    return b"%.17g" % value


def encode_reply(value: Any, out: List[bytes], resp3: bool = False) -> None:
    """Append the RESP encoding of ``value`` to ``out``."""
    t = value.__class__
    if t is bytes or t is Verbatim and not resp3:
        if len(value) < 16384:
            out.append(b"$%d\r\n%s\r\n" % (len(value), value))
        else:
            out += (b"$%d\r\n" % len(value), value, CRLF)
    elif t is Raw:
        out.append(value)
    elif t is int:
        out.append(b":%d\r\n" % value)
    elif value is None:
        out.append(b"_\r\n" if resp3 else b"$-1\r\n")
    elif t is list or t is tuple or (t is RespSet or t is Push) and not resp3:
        out.append(b"*%d\r\n" % len(value))
        for item in value:
            encode_reply(item, out, resp3)
    elif t is Status:
        out.append(b"+%s\r\n" % value)
    elif t is float:
        if resp3:
            out.append(b",%s\r\n" % format_double(value))
        else:
            text = format_double(value)
            out.append(b"$%d\r\n%s\r\n" % (len(text), text))
    elif t is dict:
        out.append((b"%%%d\r\n" if resp3 else b"*%d\r\n") % (len(value) * (1 if resp3 else 2)))
        for k, v in value.items():
            encode_reply(k, out, resp3)
            encode_reply(v, out, resp3)
    elif t is RespSet:
        out.append(b"~%d\r\n" % len(value))
        for item in value:
            encode_reply(item, out, resp3)
    elif t is Push:
        out.append(b">%d\r\n" % len(value))
        for item in value:
            encode_reply(item, out, resp3)
    elif t is Verbatim:
        out.append(b"=%d\r\ntxt:%s\r\n" % (len(value) + 4, value))
    elif t is _NullArray:
        out.append(b"_\r\n" if resp3 else b"*-1\r\n")
    elif t is bool:
        if resp3:
            out.append(b"#t\r\n" if value else b"#f\r\n")
        else:
            out.append(b":1\r\n" if value else b":0\r\n")
    elif isinstance(value, ReplyError):
        out.append(b"-%s\r\n" % error_text(value))
    elif isinstance(value, str):
        encode_reply(value.encode(), out, resp3)
    elif isinstance(value, int):
        out.append(b":%d\r\n" % value)
    else:
        raise TypeError(f"cannot encode {t.__name__} as RESP")


def error_text(err: BaseException) -> bytes:
    """One-line error text; newlines would break the protocol."""
    text = str(err.args[0]) if err.args else "ERR"
    return text.replace("\r", " ").replace("\n", " ").encode()


def encode_command(args: Any) -> bytes:
    """Encode one request as a multibulk of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if arg.__class__ is not bytes:
            if isinstance(arg, str):
                arg = arg.encode()
            elif isinstance(arg, (bytes, bytearray, memoryview)):
                arg = bytes(arg)
            elif isinstance(arg, bool):
                raise TypeError("cannot send a bool as a command argument")
            elif isinstance(arg, int):
                arg = b"%d" % arg
            elif isinstance(arg, float):
                arg = repr(arg).encode()
            else:
                raise TypeError(f"cannot send {type(arg).__name__} as a command argument")
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


# ---------------------------------------------------------------------------
# Incremental buffer shared by both parsers
# ---------------------------------------------------------------------------

class InputBuffer:
    """Bytes received but not yet parsed, with a cheap wait for large bulks."""

    __slots__ = ("_buf", "_pos", "_chunks", "_chunk_len", "_need")

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        self._chunks: List[bytes] = []
        self._chunk_len = 0
        self._need = 0  # bytes of unparsed input required before parsing can progress

    def feed(self, data: bytes) -> None:
        if self._need:
            self._chunks.append(data)
            self._chunk_len += len(data)
            return
        if self._pos < len(self._buf):
            self._buf = self._buf[self._pos:] + data
        else:
            self._buf = bytes(data)
        self._pos = 0

    def _ready(self) -> bool:
        """Join waiting chunks once enough bytes have arrived."""
        if not self._need:
            return True
        if len(self._buf) - self._pos + self._chunk_len < self._need:
            return False
        self._chunks.insert(0, self._buf[self._pos:])
        self._buf = b"".join(self._chunks)
        self._pos = 0
        self._chunks = []
        self._chunk_len = 0
        self._need = 0
        return True

    def buffered(self) -> int:
        """Bytes held but not yet consumed."""
        return len(self._buf) - self._pos + self._chunk_len


# ---------------------------------------------------------------------------
# Server side: requests
# ---------------------------------------------------------------------------

def split_inline(line: bytes) -> List[bytes]:
    """Split an inline request like redis's sdssplitargs (quotes, escapes)."""
    if b'"' not in line and b"'" not in line:
        return line.split()
    args: List[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \t\n\r\x0b\x0c":
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        in_dq = in_sq = False
        while True:
            if in_dq:
                if i >= n:
                    raise ProtocolError("Protocol error: unbalanced quotes in request")
                c = line[i]
                if c == 0x5C and i + 3 < n and line[i + 1] == 0x78 and _is_hex(line[i + 2:i + 4]):
                    cur.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    cur += _ESCAPES.get(line[i], bytes((line[i],)))
                elif c == 0x22:
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\x0b\x0c":
                        raise ProtocolError("Protocol error: unbalanced quotes in request")
                    in_dq = False
                    i += 1
                    break
                else:
                    cur.append(c)
            elif in_sq:
                if i >= n:
                    raise ProtocolError("Protocol error: unbalanced quotes in request")
                c = line[i]
                if c == 0x5C and i + 1 < n and line[i + 1] == 0x27:
                    i += 1
                    cur.append(0x27)
                elif c == 0x27:
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\x0b\x0c":
                        raise ProtocolError("Protocol error: unbalanced quotes in request")
                    in_sq = False
                    i += 1
                    break
                else:
                    cur.append(c)
            else:
                if i >= n or line[i] in b" \t\n\r\x0b\x0c":
                    break
                c = line[i]
                if c == 0x22:
                    in_dq = True
                elif c == 0x27:
                    in_sq = True
                else:
                    cur.append(c)
            i += 1
        args.append(bytes(cur))


_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("a"): b"\a"}


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(ch in b"0123456789abcdefABCDEF" for ch in pair)


def _strict_int(text: bytes) -> Optional[int]:
    """A length as Redis's string2ll reads it: no sign ``+``, spaces or leading zeros."""
    if len(text) > 20:  # past the 64-bit range, and int() refuses past 4300 digits
        return None
    if text.isdigit():
        return int(text) if text[0] != 48 or len(text) == 1 else None
    if text[:1] == b"-" and text[1:].isdigit() and text[1] != 48:
        value = -int(text[1:])
        # string2ll fails below LLONG_MIN (too large positive values fail later,
        # against the length limits, with the same error text)
        return value if value >= -(1 << 63) else None
    return None


#: Canonical headers the fast path accepts; anything else goes to the exact parser.
_MULTIBULK_HEADS = {b"*%d" % n: n for n in range(1, 1025)}
_BULK_HEADS = {b"$%d" % n: n for n in range(0, 4096)}
#: ``BULK_HEADERS[n]`` is ``b"$n\r\n"``: encoders skip formatting the length.
BULK_HEADERS = [b"$%d\r\n" % n for n in range(4096)]


class RequestParser(InputBuffer):
    """Turns a client's byte stream into commands (lists of bytes).

    Accepts multibulk requests and inline ones, with Redis's limits and
    error texts. After a ProtocolError the connection must be closed.
    """

    __slots__ = ("max_bulk_len", "max_multibulk_len", "authenticated", "_args", "_argc",
                 "_held", "unusual")

    def __init__(self, max_bulk_len: int = 512 * 1024 * 1024,
                 max_multibulk_len: int = 1024 * 1024 * 16) -> None:
        super().__init__()
        self.max_bulk_len = max_bulk_len
        self.max_multibulk_len = max_multibulk_len
        #: Until a client authenticates, requests are capped far lower, as in Redis.
        self.authenticated = True
        self._args: List[bytes] = []
        self._argc = 0  # arguments still expected by the multibulk in progress
        self._held = 0  # wire bytes of the multibulk in progress already consumed
        #: Inline requests (empty lines included) and empty multibulks parsed since
        #: the owner reset it: such a read can't go to the replication stream as
        #: it is (a replica refuses inline requests from its primary, and counts
        #: an empty multibulk in its offset only at its next command).
        self.unusual = 0

    def buffered(self) -> int:
        """Bytes of requests not yet returned, including a partly parsed one:
        zero exactly when the input so far ended at a request boundary."""
        return len(self._buf) - self._pos + self._chunk_len + self._held

    def parse(self, data: bytes) -> List[List[bytes]]:
        """``feed(data)`` then ``get_commands()``, in one call; a read of whole
        requests that starts on a request boundary skips the buffer."""
        if (not self._argc and self._pos >= len(self._buf) and not self._need
                and data[:1] == b"*" and self.authenticated and data[-2:] == b"\r\n"
                and len(data) <= self.max_bulk_len):
            commands = split_whole(data, self.max_multibulk_len)
            if commands is not None:
                return commands
        self.feed(data)
        return self.get_commands()

    def get_commands(self) -> List[List[bytes]]:
        """Every complete command buffered so far, in order."""
        if not self._ready():
            return []
        commands: List[List[bytes]] = []
        buf = self._buf
        pos = self._pos
        n = len(buf)
        if (not self._argc and pos < n and buf[pos] == 42 and self.authenticated
                and n - pos <= self.max_bulk_len):
            pos = self._pos = self._split_commands(commands)
        find = buf.find
        args = self._args
        argc = self._argc
        held = self._held
        window = _BLOCK_WINDOW_MIN
        skip, backoff = 0, 1
        try:
            while pos < n:
                if not argc:
                    if buf[pos] != 42:  # not '*': inline request
                        self.unusual += 1
                        nl = find(b"\n", pos)
                        if nl < 0:
                            if n - pos > INLINE_MAX_SIZE:
                                raise ProtocolError("Protocol error: too big inline request")
                            break
                        line = buf[pos:nl]
                        pos = nl + 1
                        if line.endswith(b"\r"):
                            line = line[:-1]
                        parts = split_inline(line)
                        if parts:
                            commands.append(parts)
                        continue
                    nl = find(b"\r\n", pos)
                    if nl < 0:
                        if n - pos > INLINE_MAX_SIZE:
                            raise ProtocolError("Protocol error: too big mbulk count string")
                        break
                    count = _strict_int(buf[pos + 1:nl])
                    if count is None:
                        raise ProtocolError("Protocol error: invalid multibulk length")
                    if count > self.max_multibulk_len:
                        raise ProtocolError("Protocol error: invalid multibulk length")
                    if count > 10 and not self.authenticated:
                        raise UnauthenticatedLimit(
                            "Protocol error: unauthenticated multibulk length")
                    argc = count
                    held = nl + 2 - pos
                    pos = nl + 2
                    if argc <= 0:
                        self.unusual += 1
                        argc = 0
                        held = 0
                        continue
                    args = []
                # Bulk strings of the multibulk in progress.
                while argc:
                    if argc < _BLOCK_MIN:
                        pass
                    elif skip:
                        skip -= 1
                    elif find(b"\r\n", pos, pos + 6) >= 0:
                        taken, size, window = _take_bulks(buf, pos, argc, args, window)
                        if taken >= _BLOCK_GAIN:
                            backoff = 1
                        else:  # blocks do not pay here: try again later and later
                            skip = backoff
                            backoff = min(backoff * 2, _BLOCK_BACKOFF_MAX)
                        if taken:
                            argc -= taken
                            held += size
                            pos += size
                            continue
                    if pos >= n:
                        break
                    if buf[pos] != 36:  # '$'
                        raise ProtocolError("Protocol error: expected '$', got '%s'"
                                            % chr(buf[pos]))
                    nl = find(b"\r\n", pos)
                    if nl < 0:
                        if n - pos > INLINE_MAX_SIZE:
                            raise ProtocolError("Protocol error: too big bulk count string")
                        break
                    size = _strict_int(buf[pos + 1:nl])
                    if size is None or size < 0 or size > self.max_bulk_len:
                        raise ProtocolError("Protocol error: invalid bulk length")
                    if size > 16384 and not self.authenticated:
                        raise UnauthenticatedLimit("Protocol error: unauthenticated bulk length")
                    end = nl + 2 + size
                    if end + 2 > n:
                        self._need = end + 2 - pos
                        break
                    args.append(buf[nl + 2:end])
                    held += end + 2 - pos
                    pos = end + 2
                    argc -= 1
                if argc:
                    break
                commands.append(args)
                args = []
                held = 0
        except ProtocolError as exc:
            exc.commands = commands  # complete requests before the bad one still run
            raise
        finally:
            self._pos = pos
            self._args = args
            self._argc = argc
            self._held = held
        return commands


    def _split_commands(self, commands: List[List[bytes]]) -> int:
        """Fast path: whole, well-formed multibulk requests, tokenized in C
        (see :func:`_take_split`). Returns the position after the accepted
        requests."""
        pos = self._pos
        tokens = (self._buf[pos:] if pos else self._buf).split(b"\r\n")
        i = _take_split(tokens, len(tokens) - 1, self.max_multibulk_len, commands)
        if i:
            pos += sum(map(len, tokens[:i])) + 2 * i
        return pos


#: A multibulk with at least this many arguments still to come takes them in
#: blocks (:func:`_take_bulks`), a window of the buffer at a time.
_BLOCK_MIN = 32
_BLOCK_WINDOW_MIN = 256
_BLOCK_WINDOW_MAX = 1 << 18
#: A block of fewer arguments costs more than the exact parser would; after one,
#: blocks wait for twice as many arguments as last time (up to the maximum).
_BLOCK_GAIN = 8
_BLOCK_BACKOFF_MAX = 1 << 16


def _take_bulks(buf: bytes, pos: int, argc: int, args: List[bytes],
                window: int) -> Tuple[int, int, int]:
    """Append the canonical short bulks (``$n`` below 4096, exact length) at
    ``pos``, at most ``argc`` and within ``window`` bytes; returns how many, the
    wire bytes they span and the next window. An argument a Python loop turn
    cost 5 us: a 200,000-argument request held the loop for a second
    (redis-server: 10 ms). Anything else (a long bulk, a CRLF inside one, a bad
    header) stops the block and the exact parser judges it.

    The window grows while blocks fill it; a block stopped early sets it to
    twice what that block took, so a split costs about what the previous block
    took, whatever the request mixes in (and a block that takes too little makes
    the parser wait before the next one)."""
    tokens = buf[pos:pos + window].split(b"\r\n")
    pairs = min(argc, (len(tokens) - 1) // 2)  # the last token has no CRLF yet
    heads = tokens[0:2 * pairs:2]
    values = tokens[1:2 * pairs:2]
    sizes = list(map(_BULK_HEADS.get, heads))
    lengths = list(map(len, values))
    if sizes != lengths:
        pairs = next(i for i, (a, b) in enumerate(zip(sizes, lengths)) if a != b)
        heads = heads[:pairs]
        values = values[:pairs]
        grown = False
    else:
        grown = True
    if not pairs:
        return 0, 0, _BLOCK_WINDOW_MIN
    args += values
    size = sum(map(len, heads)) + sum(lengths[:pairs]) + 4 * pairs
    window = min(window * 4, _BLOCK_WINDOW_MAX) if grown else max(_BLOCK_WINDOW_MIN, 2 * size)
    return pairs, size, window


def split_whole(data: bytes, max_args: int) -> Optional[List[List[bytes]]]:
    """The requests in ``data`` if it is exactly whole, canonical multibulk
    requests (the common read), else None: parse it the general way."""
    tokens = data.split(b"\r\n")
    last = len(tokens) - 1
    if tokens[last]:  # ends inside a line
        return None
    # One request of two or three arguments (an unpipelined GET, INCR, SET):
    # _take_split inlined, which saves an eighth of such a read's instructions.
    if last == 5 and tokens[0] == b"*2" and max_args >= 2:
        sizes = _BULK_HEADS
        a, b = tokens[2], tokens[4]
        if sizes.get(tokens[1]) == len(a) and sizes.get(tokens[3]) == len(b):
            return [[a, b]]
        return None
    if last == 7 and tokens[0] == b"*3" and max_args >= 3:
        sizes = _BULK_HEADS
        a, b, c = tokens[2], tokens[4], tokens[6]
        if (sizes.get(tokens[1]) == len(a) and sizes.get(tokens[3]) == len(b)
                and sizes.get(tokens[5]) == len(c)):
            return [[a, b, c]]
        return None
    commands: List[List[bytes]] = []
    if _take_split(tokens, last, max_args, commands) != last:
        return None
    return commands


def _take_split(tokens: List[bytes], last: int, max_args: int,
                commands: List[List[bytes]]) -> int:
    """Append the requests that ``tokens`` (a buffer split on CRLF) begins
    with; returns the index of the first token not taken.

    A request is taken only if every ``$len`` header equals its argument's
    real length in canonical form, so an argument containing CRLF, a partial
    request or anything unusual stops here and the exact parser takes over
    from that request.
    """
    append = commands.append
    heads = _MULTIBULK_HEADS
    sizes = _BULK_HEADS
    i = 0
    while i < last:
        argc = heads.get(tokens[i])
        if argc is None or argc > max_args:
            break
        end = i + 1 + 2 * argc
        if end > last:
            break
        # Each "$N" must be the canonical length of its argument. The short
        # forms (most commands) avoid building lists just to compare them.
        if argc == 2:
            a, b = tokens[i + 2], tokens[i + 4]
            if sizes.get(tokens[i + 1]) != len(a) or sizes.get(tokens[i + 3]) != len(b):
                break
            append([a, b])
        elif argc == 3:
            a, b, c = tokens[i + 2], tokens[i + 4], tokens[i + 6]
            if (sizes.get(tokens[i + 1]) != len(a) or sizes.get(tokens[i + 3]) != len(b)
                    or sizes.get(tokens[i + 5]) != len(c)):
                break
            append([a, b, c])
        else:
            args = tokens[i + 2:end:2]
            if list(map(len, args)) != list(map(sizes.get, tokens[i + 1:end:2])):
                break
            append(args)
        i = end
    return i
