"""hiredis-backed parsers with the same interface as the pure-Python ones.

hiredis's C reader is several times faster, but it does not parse inline
requests, it accepts any RESP type inside a request, and it knows nothing of
Redis's request limits. So whole requests come from hiredis, inline ones go
to the Python parser, and a partly received request is shadowed by the
Python parser, which enforces the limits on it as its bytes arrive.
"""
from __future__ import annotations

from typing import Any, List, Optional

import hiredis

from .resp import NOT_ENOUGH, ProtocolError, ReplyError, RequestParser


class HiredisRequestParser:
    __slots__ = ("_reader", "_python", "_shadow", "_inline", "max_bulk_len",
                 "max_multibulk_len", "authenticated", "_last")

    def __init__(self, max_bulk_len: int = 512 * 1024 * 1024,
                 max_multibulk_len: int = 1024 * 1024 * 16) -> None:
        self._reader = hiredis.Reader(protocolError=ProtocolError, replyError=ReplyError)
        self.max_bulk_len = max_bulk_len
        self.max_multibulk_len = max_multibulk_len
        self.authenticated = True
        self._python: Optional[RequestParser] = None  # inline mode
        self._shadow: Optional[RequestParser] = None  # limit checks for a partial request
        self._last = b""

    def _new_python(self) -> RequestParser:
        parser = RequestParser(self.max_bulk_len, self.max_multibulk_len)
        parser.authenticated = self.authenticated
        return parser

    def feed(self, data: bytes) -> None:
        if self._python is None and not self._reader.len() and data[:1] != b"*":
            self._python = self._new_python()
        if self._python is not None:
            self._python.feed(data)
            return
        self._reader.feed(data)
        if self._shadow is not None:
            self._shadow.feed(data)
        self._last = data

    def buffered(self) -> int:
        if self._python is not None:
            return self._python.buffered()
        return self._reader.len()

    def get_commands(self) -> List[List[bytes]]:
        python = self._python
        if python is not None:
            commands = python.get_commands()
            if not python.buffered() and not python._argc:
                self._python = None
            return commands
        reader = self._reader
        commands: List[Any] = []
        gets = reader.gets
        try:
            while True:
                cmd = gets()
                if cmd is False:
                    break
                if cmd.__class__ is not list:
                    if cmd is None:
                        continue
                    raise ProtocolError("Protocol error: expected '*', got '%s'"
                                        % _type_char(cmd))
                if not cmd:
                    continue
                for arg in cmd:
                    if arg.__class__ is not bytes:
                        raise ProtocolError("Protocol error: expected '$', got '%s'"
                                            % _type_char(arg))
                if not self.authenticated:
                    _check_unauthenticated(cmd)
                commands.append(cmd)
        except hiredis.ProtocolError as exc:
            raise ProtocolError(f"Protocol error: {exc}") from None
        left = reader.len()
        if not left:
            self._shadow = None
        else:
            if commands or self._shadow is None:
                # The partial request starts inside the last read.
                self._shadow = self._new_python()
                self._shadow.feed(self._last[len(self._last) - left:] if left <= len(self._last)
                                  else self._last)
            self._shadow.authenticated = self.authenticated
            self._shadow.get_commands()  # raises on a limit violation
        return commands


def _check_unauthenticated(cmd: List[bytes]) -> None:
    if len(cmd) > 10:
        raise ProtocolError("Protocol error: unauthenticated multibulk length")
    for arg in cmd:
        if len(arg) > 16384:
            raise ProtocolError("Protocol error: unauthenticated bulk length")


def _type_char(value: Any) -> str:
    if isinstance(value, int):
        return ":"
    if isinstance(value, list):
        return "*"
    if isinstance(value, ReplyError):
        return "-"
    return "+"


class HiredisReplyParser:
    """Replies via hiredis; same ``feed``/``get`` contract as ReplyParser."""

    __slots__ = ("_reader",)

    def __init__(self, max_depth: int = 64, max_bulk_len: int = 1 << 62,
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
