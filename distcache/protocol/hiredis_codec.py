"""hiredis-backed parsers with the same interface as the pure-Python ones.

hiredis's C reader is several times faster, but it does not parse inline
requests, it accepts any RESP type inside a request, and it knows nothing of
Redis's request limits. So whole requests come from hiredis, inline ones go
to the Python parser, and a partly received request is shadowed by the
Python parser, which enforces the limits on it as its bytes arrive.
"""
from __future__ import annotations

import re
from typing import Any, List, Optional, Tuple

import hiredis

from .reply_parser import NOT_ENOUGH
from .resp import (MAX_REPLY_DEPTH, ProtocolError, ReplyError, RequestParser, encode_command,
                   split_whole)

#: Reads up to this size try the split parser first (see parse).
_SPLIT_MAX = 128


class HiredisRequestParser:
    """Requests via hiredis, with the Python parser for the cases hiredis can't judge.

    The Python parser takes over for inline requests, for clients that have
    not authenticated yet (whose requests Redis caps at 10 arguments and 16 KB
    bulks), and for huge multibulk headers. A request left incomplete at the
    end of a read is "shadowed": its bytes also go to a Python parser, which
    applies proto-max-bulk-len and the other limits as they arrive.
    """

    __slots__ = ("_reader", "_python", "_shadow", "max_bulk_len", "max_multibulk_len",
                 "authenticated", "_last", "_tail", "_partial", "unusual")

    def __init__(self, max_bulk_len: int = 512 * 1024 * 1024,
                 max_multibulk_len: int = 1024 * 1024 * 16) -> None:
        self._reader = _new_reader()
        self.max_bulk_len = max_bulk_len
        self.max_multibulk_len = max_multibulk_len
        self.authenticated = True
        self._python: Optional[RequestParser] = None  # inline or unauthenticated mode
        self._shadow: Optional[RequestParser] = None  # limit checks for a partial request
        self._last = b""
        self._tail = b""  # last bytes fed, to spot a header split across reads
        self._partial = 0  # bytes hiredis holds for an incomplete request
        #: Inline requests and empty multibulks parsed since the owner reset it
        #: (see RequestParser.unusual).
        self.unusual = 0

    def _new_python(self) -> RequestParser:
        parser = RequestParser(self.max_bulk_len, self.max_multibulk_len)
        parser.authenticated = self.authenticated
        return parser

    def feed(self, data: bytes) -> None:
        if self._python is None:
            # Only a request already in progress can have a header split across
            # reads, so the last bytes of earlier reads matter only then.
            if self._partial:
                tail = self._tail + data[:12]
                suspect = _holds_types(tail, _RESP3_TYPES) or _HUGE_HEADER(tail) \
                    or _negative_count(tail)
            else:
                suspect = False
            self._tail = data[-12:] if len(data) >= 12 else (self._tail + data)[-12:]
            if suspect or _holds_types(data, _RESP3_TYPES) or _HUGE_HEADER(data) \
                    or _negative_count(data):
                # hiredis allocates a list for a multibulk header before any limit
                # applies, and freeing a list of 2**31 slots stalls the server for
                # seconds; it parses RESP3 types, which Redis refuses in
                # requests, some as if they were bulks or arrays; and it refuses
                # negative counts that Redis skips. The Python parser judges
                # such requests.
                self._take_over()
            elif not self._partial and (data[:1] != b"*" or not self.authenticated):
                self._python = self._new_python()
        if self._python is not None:
            self._python.feed(data)
            return
        self._reader.feed(data)
        self._partial += len(data)
        if self._shadow is not None:
            self._shadow.feed(data)
        self._last = data

    def _take_over(self) -> None:
        """Hand the stream to the Python parser; the shadow holds any partial request."""
        self._python = self._shadow or self._new_python()
        self._shadow = None
        if self._partial:
            self._reader = _new_reader()
            self._partial = 0

    def buffered(self) -> int:
        if self._python is not None:
            return self._python.buffered()
        return self._partial

    def parse(self, data: bytes) -> List[List[bytes]]:
        """``feed(data)`` then ``get_commands()``, in one call.

        The common read, which starts at a request boundary and holds only
        plain multibulk requests, goes to hiredis with only the checks that
        need Python: each argument is a bulk string, and the read ended on a
        request boundary. Anything else takes the general path.
        """
        if (self._partial or self._python is not None or not self.authenticated
                or data[0] != 42):
            self.feed(data)
            return self.get_commands()
        if len(data) <= _SPLIT_MAX:
            # A short read (one request, unpipelined): the pure-Python split,
            # exact by construction, costs less than hiredis and its checks.
            commands = split_whole(data, self.max_multibulk_len)
            if commands is not None:
                return commands
        if _holds_types(data, _ALIASED_TYPES) or _HUGE_HEADER(data):
            self.feed(data)
            return self.get_commands()
        reader = self._reader
        reader.feed(data)
        commands: List[Any] = []
        append = commands.append
        gets = reader.gets
        try:
            cmd = gets()
            while cmd is not False:
                append(cmd)
                cmd = gets()
            for cmd in commands:
                if cmd.__class__ is not list or not cmd:
                    return self._parse_again(data)
                for arg in cmd:
                    if arg.__class__ is not bytes:
                        return self._parse_again(data)
            # At a request boundary an empty multibulk comes back as a request of
            # its own; mid-request it goes into the request, or fails to parse.
            reader.feed(b"*0\r\n")
            if gets() == []:
                return commands
        except (hiredis.ProtocolError, ProtocolError, TypeError):
            # TypeError: a RESP3 map whose key is an array (the probe above, or
            # sent so) cannot become a dict.
            return self._parse_again(data)
        if _holds_types(data, _RESP3_TYPES):  # an unfinished one may hide in the rest
            return self._parse_again(data)
        return self._hold_partial(data, commands)

    def _parse_again(self, data: bytes) -> List[List[bytes]]:
        """The read was unusual: the Python parser judges it from the start."""
        self._reader = _new_reader()
        self._python = self._new_python()
        self._python.feed(data)
        return self.get_commands()

    def _hold_partial(self, data: bytes, commands: List[Any]) -> List[List[bytes]]:
        """Keep the incomplete request at the end of ``data`` (hiredis's numbers
        are strict, so the complete ones span exactly their canonical size)."""
        rest = data[sum(map(_wire_size, commands)):]
        self._reader = _new_reader()
        self._reader.feed(rest)
        self._partial = len(rest)
        self._tail = rest[-12:]
        self._last = data
        self._shadow = self._new_python()
        self._shadow.feed(rest)
        self._shadow.get_commands()  # raises on a limit violation
        return commands

    def get_commands(self) -> List[List[bytes]]:
        python = self._python
        if python is not None:
            python.authenticated = self.authenticated  # AUTH may have succeeded since
            commands = python.get_commands()
            if python.unusual:
                self.unusual += python.unusual
                python.unusual = 0
            if not python.buffered() and not python._argc and self.authenticated:
                self._python = None
            return commands
        reader = self._reader
        commands: List[Any] = []
        gets = reader.gets
        empty = 0
        try:
            while True:
                cmd = gets()
                if cmd is False:
                    break
                if cmd.__class__ is not list:
                    if cmd is None:
                        empty += 5  # *-1
                        self.unusual += 1
                        continue
                    raise ProtocolError("Protocol error: expected '*', got '%s'"
                                        % _type_char(cmd))
                if not cmd:
                    empty += 4  # *0
                    self.unusual += 1
                    continue
                for arg in cmd:
                    if arg.__class__ is not bytes:
                        if arg is None:  # $-1: Redis refuses negative bulk lengths
                            raise ProtocolError("Protocol error: invalid bulk length")
                        raise ProtocolError("Protocol error: expected '$', got '%s'"
                                            % _type_char(arg))
                commands.append(cmd)
        except (hiredis.ProtocolError, ProtocolError) as exc:
            rest = self._inline_after(commands, empty, str(exc))
            if rest is not None:
                return self._continue_inline(commands, rest)
            error = ProtocolError(_redis_text(str(exc)))
            error.commands = commands  # complete requests before the bad one still run
            raise error from None
        if commands or empty:
            last = self._last
            if len(commands) > 4 and not empty and last.endswith(encode_command(commands[-1])):
                # The read ended on a request boundary: the common pipelined case,
                # checked with one encode per read rather than a size per request.
                self._partial = 0
                self._shadow = None
                return commands
            # Few requests, or a partial one left: account exactly by wire size.
            self._partial -= empty + sum(map(_wire_size, commands))
            if self._partial <= 0:
                self._partial = 0
                self._shadow = None
                return commands
            self._shadow = self._new_python()
            self._shadow.feed(last[len(last) - self._partial:] if self._partial <= len(last)
                              else last)
        elif self._shadow is None:
            self._shadow = self._new_python()
            self._shadow.feed(self._last[-self._partial:])
        self._shadow.get_commands()  # raises on a limit violation
        return commands


    def _inline_after(self, commands: List[Any], empty: int, message: str) -> Any:
        """The unparsed bytes when an inline request follows multibulk ones in
        one read (hiredis stops at its first byte), else None."""
        m = _BAD_TYPE_BYTE.search(message)
        if m is None:
            return None
        left = self._partial - empty - sum(map(_wire_size, commands))
        last = self._last
        if not 0 < left <= len(last) or last[len(last) - left:][:1] != m.group(1).encode():
            return None
        return last[len(last) - left:]

    def _continue_inline(self, commands: List[Any], rest: bytes) -> List[Any]:
        """Hand the rest of the read to the Python parser, as Redis switches to
        inline parsing mid-buffer."""
        self._reader = _new_reader()
        self._partial = 0
        self._shadow = None
        self._python = self._new_python()
        self._python.feed(rest)
        try:
            return commands + self.get_commands()
        except ProtocolError as exc:
            exc.commands = commands + getattr(exc, "commands", [])
            raise


#: hiredis's complaint about a byte that starts no RESP type: an inline request.
_BAD_TYPE_BYTE = re.compile(r'got "([^*$+\-:_,#!=(|~>%\\"])" as reply type byte')


def _new_reader() -> Any:
    return hiredis.Reader(protocolError=ProtocolError, replyError=ReplyError)


def _wire_size(cmd: List[bytes]) -> int:
    """Bytes of a canonical multibulk request for ``cmd``."""
    digits = _DIGITS
    size = 3 + len(str(len(cmd)))
    for arg in cmd:
        n = len(arg)
        size += n + 5 + (digits[n] if n < 10000 else len(str(n)))
    return size


_DIGITS = [len(str(n)) for n in range(10000)]


#: A multibulk header of a million elements or more (rare, and costly in hiredis).
_HUGE_HEADER = re.compile(rb"\*[0-9]{7}").search

#: RESP3 type bytes and the simple string, which Redis refuses in requests but
#: hiredis parses. A read with one right after a CRLF goes to the Python parser
#: (a payload starting with one is a false alarm, and only costs that detour).
_RESP3_TYPES = tuple((byte, b"\r\n" + bytes([byte])) for byte in b"+=(~|_,#!%>")
#: The ones hiredis hands over as bulks or arrays (or skips: attributes), so that
#: parse()'s type checks can't see them; the rest come back as other types.
_ALIASED_TYPES = _RESP3_TYPES[:5]


def _holds_types(data: bytes, types: Tuple[Tuple[int, bytes], ...]) -> bool:
    for byte, after_crlf in types:
        if byte in data and after_crlf in data:  # memchr first: the search is rarer
            return True
    return False


def _negative_count(data: bytes) -> bool:
    """Whether ``data`` may hold a negative multibulk count: Redis skips ``*-5``
    as an empty request, hiredis refuses any below -1. (A payload holding
    CRLF ``*-`` is a false alarm, and only costs the Python parser's detour.)"""
    return b"*-" in data and (data[:2] == b"*-" or b"\r\n*-" in data)


def _redis_text(message: str) -> str:
    """Redis's wording for hiredis's length errors."""
    if message.startswith("Protocol error"):
        return message
    lowered = message.lower()
    if "multi-bulk length" in lowered:
        return "Protocol error: invalid multibulk length"
    if "bulk string length" in lowered:
        return "Protocol error: invalid bulk length"
    if "nesting" in lowered:  # arrays nested in a request: Redis wanted a bulk
        return "Protocol error: expected '$', got '*'"
    return f"Protocol error: {message}"


def _type_char(value: Any) -> str:
    if isinstance(value, int):
        return ":"
    if isinstance(value, list):
        return "*"
    if isinstance(value, ReplyError):
        return "-"
    return "+"


class HiredisReplyParser:
    """Replies via hiredis; same ``feed``/``get`` contract as ReplyParser.
    ``max_depth`` is accepted for the same signature: hiredis applies its own cap."""

    __slots__ = ("_reader",)

    def __init__(self, max_depth: int = MAX_REPLY_DEPTH, max_bulk_len: int = 1 << 62,
                 encoding: Optional[str] = None) -> None:
        kwargs: dict = {"protocolError": ProtocolError, "replyError": ReplyError,
                        "notEnoughData": NOT_ENOUGH}
        if encoding:
            kwargs["encoding"] = encoding
            kwargs["errors"] = "replace"
        self._reader = hiredis.Reader(**kwargs)

    def feed(self, data: bytes) -> None:
        self._reader.feed(data)

    def get(self) -> Any:
        try:
            return self._reader.gets()
        except hiredis.ProtocolError as exc:
            raise ProtocolError(str(exc)) from None

    def buffered(self) -> int:
        return self._reader.len()
