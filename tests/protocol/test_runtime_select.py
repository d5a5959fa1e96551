"""The codec ``auto`` picks per runtime: hiredis on CPython when installed, Python on PyPy."""
from __future__ import annotations

import platform

import pytest

import distcache.protocol as protocol
from distcache.protocol.reply_parser import ReplyParser
from distcache.protocol.resp import RequestParser


def test_auto_picks_hiredis_only_on_cpython() -> None:
    pypy = platform.python_implementation() == "PyPy"
    assert protocol.PYPY is pypy
    expected = "hiredis" if protocol.HAVE_HIREDIS and not pypy else "python"
    assert protocol.parser_name("auto") == expected
    assert protocol.parser_name("python") == "python"
    assert isinstance(protocol.make_request_parser(), RequestParser) is (expected == "python")
    assert isinstance(protocol.make_reply_parser(), ReplyParser) is (expected == "python")


def test_explicit_hiredis_still_honoured() -> None:
    if not protocol.HAVE_HIREDIS:
        with pytest.raises(RuntimeError, match="hiredis is not installed"):
            protocol.parser_name("hiredis")
    else:
        assert protocol.parser_name("hiredis") == "hiredis"
