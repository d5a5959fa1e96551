"""The RESP wire codec, shared by server and client; it knows nothing of commands.

:func:`make_request_parser` and :func:`make_reply_parser` pick hiredis's C
reader when it is installed (and not disabled) on CPython, else the pure-Python
codec: on PyPy the JIT compiles the Python codec, while hiredis runs through
cpyext's emulation of the C API, and the Python codec measured faster there
(docs/pypy.md). Both have the same interface and pass the same tests.
"""
from __future__ import annotations

import sys
from typing import Any, Optional

from .reply_parser import NOT_ENOUGH, ReplyParser
from .resp import (MAX_REPLY_DEPTH, NULL_ARRAY, OK, PONG, ProtocolError, Push, PushMessage, Raw,
                   ReplyError, RequestParser, RespSet, Status, UnauthenticatedLimit, Verbatim,
                   encode_command, encode_reply, format_double)

try:
    import hiredis as _hiredis  # noqa: F401
    HAVE_HIREDIS = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_HIREDIS = False

#: The runtime is PyPy (a JIT; C extensions go through cpyext, slowly).
PYPY = sys.implementation.name == "pypy"
#: What ``auto`` picks: hiredis where it is installed and faster.
AUTO_HIREDIS = HAVE_HIREDIS and not PYPY

__all__ = ["MAX_REPLY_DEPTH", "NOT_ENOUGH", "NULL_ARRAY", "OK", "PONG", "ProtocolError", "Push",
           "PushMessage", "Raw", "ReplyError", "ReplyParser", "RequestParser", "RespSet",
           "Status", "UnauthenticatedLimit", "Verbatim", "encode_command", "encode_reply",
           "format_double", "HAVE_HIREDIS", "PYPY", "make_request_parser", "make_reply_parser",
           "parser_name"]


def _use_hiredis(kind: str) -> bool:
    if kind == "hiredis" and not HAVE_HIREDIS:
        raise RuntimeError("parser 'hiredis' requested but hiredis is not installed")
    return kind == "hiredis" or (kind == "auto" and AUTO_HIREDIS)


def parser_name(kind: str = "auto") -> str:
    """The codec that ``kind`` (auto, hiredis, python) selects: hiredis or python."""
    return "hiredis" if _use_hiredis(kind) else "python"


def make_request_parser(config: Any = None, kind: str = "auto") -> Any:
    """A parser for requests, honouring proto-max-bulk-len and friends."""
    max_bulk = config["proto-max-bulk-len"] if config is not None else 512 * 1024 * 1024
    max_multi = config["proto-max-multibulk-len"] if config is not None else 1 << 24
    if _use_hiredis(kind):
        from .hiredis_codec import HiredisRequestParser
        return HiredisRequestParser(max_bulk, max_multi)
    return RequestParser(max_bulk, max_multi)


def make_reply_parser(kind: str = "auto", encoding: Optional[str] = None,
                      max_depth: int = MAX_REPLY_DEPTH) -> Any:
    """A parser for replies (client side)."""
    if _use_hiredis(kind):
        from .hiredis_codec import HiredisReplyParser
        return HiredisReplyParser(max_depth=max_depth, encoding=encoding)
    return ReplyParser(max_depth=max_depth, encoding=encoding)
