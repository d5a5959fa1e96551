"""String and counter commands: exact replies and error texts of Redis 7.0.

Every test runs against distcache and against a real redis-server (when
installed), so the expected values below are Redis's own.
"""
from __future__ import annotations

import time

import pytest

from core_helpers import (NIL, NOT_INT, OK, SYNTAX, bulk, num,  # noqa: F401
                          run_steps, ttl_about,
                          target_server, tr, traw)

NOT_FLOAT = b"-ERR value is not a valid float\r\n"


def test_get_set_basics(traw):
    run_steps(traw, [
        (("GET", "k"), NIL),
        (("SET", "k", "v"), OK),
        (("GET", "k"), bulk(b"v")),
        (("SET", "k", ""), OK),
        (("GET", "k"), bulk(b"")),
        (("SET", "bin", b"\x00\r\n\xff"), OK),
        (("GET", "bin"), bulk(b"\x00\r\n\xff")),
        (("GET",), b"-ERR wrong number of arguments for 'get' command\r\n"),
        (("GET", "a", "b"), b"-ERR wrong number of arguments for 'get' command\r\n"),
        (("SET", "k"), b"-ERR wrong number of arguments for 'set' command\r\n"),
    ])


def test_set_conditions_and_get_option(traw):
    run_steps(traw, [
        (("SET", "k", "1", "NX"), OK),
        (("SET", "k", "2", "NX"), NIL),
        (("SET", "k", "3", "XX"), OK),
        (("SET", "missing", "3", "XX"), NIL),
        (("GET", "missing"), NIL),
        (("SET", "k", "4", "GET"), bulk(b"3")),
        (("SET", "new", "x", "GET"), NIL),
        (("SET", "k", "5", "NX", "GET"), bulk(b"4")),
        (("GET", "k"), bulk(b"4")),
        (("SET", "k", "6", "xx", "get"), bulk(b"4")),
        (("SET", "k", "1", "NX", "XX"), SYNTAX),
        (("SET", "k", "1", "XX", "NX"), SYNTAX),
        (("SET", "k", "1", "FOO"), SYNTAX),
    ])


def test_set_expiry_options(traw):
    future_s = int(time.time()) + 1000
    run_steps(traw, [
        (("SET", "k", "v", "EX", "100"), OK),
        (("TTL", "k"), ttl_about(100)),
        (("SET", "k", "v", "PX", "100000"), OK),
        (("TTL", "k"), ttl_about(100)),
        (("SET", "k", "v", "EXAT", str(future_s)), OK),
        (("EXPIRETIME", "k"), num(future_s)),
        (("SET", "k", "v", "PXAT", str(future_s * 1000 + 5)), OK),
        (("PEXPIRETIME", "k"), num(future_s * 1000 + 5)),
        (("SET", "k", "w", "KEEPTTL"), OK),
        (("PEXPIRETIME", "k"), num(future_s * 1000 + 5)),
        (("SET", "k", "x"), OK),
        (("TTL", "k"), num(-1)),
        # A deadline in the past stores nothing visible.
        (("SET", "k", "v", "EXAT", "1"), OK),
        (("GET", "k"), NIL),
        (("SET", "k", "v", "PXAT", "1"), OK),
        (("EXISTS", "k"), num(0)),
    ])


@pytest.mark.parametrize("args, error", [
    (("EX", "0"), b"-ERR invalid expire time in 'set' command\r\n"),
    (("EX", "-1"), b"-ERR invalid expire time in 'set' command\r\n"),
    (("PX", "0"), b"-ERR invalid expire time in 'set' command\r\n"),
    (("EXAT", "0"), b"-ERR invalid expire time in 'set' command\r\n"),
    (("EX", "9223372036854775807"), b"-ERR invalid expire time in 'set' command\r\n"),
    (("EX", "abc"), NOT_INT),
    (("EX", "1.5"), NOT_INT),
    (("EX",), SYNTAX),
    (("EX", "10", "PX", "10"), SYNTAX),
    (("EX", "10", "EX", "20"), OK),  # the same option twice is accepted
    (("KEEPTTL", "EX", "10"), SYNTAX),
    (("EX", "10", "KEEPTTL"), SYNTAX),
    (("PERSIST",), SYNTAX),
    (("GET", "GET"), NIL),
])
def test_set_invalid_combinations(traw, args, error):
    assert traw.call("SET", "k", "v", *args) == error


def test_setnx_setex_psetex(traw):
    run_steps(traw, [
        (("SETNX", "k", "1"), num(1)),
        (("SETNX", "k", "2"), num(0)),
        (("GET", "k"), bulk(b"1")),
        (("SETEX", "k", "100", "v"), OK),
        (("TTL", "k"), ttl_about(100)),
        (("GET", "k"), bulk(b"v")),
        (("PSETEX", "p", "100000", "v"), OK),
        (("TTL", "p"), ttl_about(100)),
        (("SETEX", "k", "0", "v"), b"-ERR invalid expire time in 'setex' command\r\n"),
        (("SETEX", "k", "-5", "v"), b"-ERR invalid expire time in 'setex' command\r\n"),
        (("PSETEX", "k", "0", "v"), b"-ERR invalid expire time in 'psetex' command\r\n"),
        (("SETEX", "k", "abc", "v"), NOT_INT),
        (("SETEX", "k", "10"), b"-ERR wrong number of arguments for 'setex' command\r\n"),
    ])


def test_getset_getdel(traw):
    run_steps(traw, [
        (("GETSET", "k", "1"), NIL),
        (("GETSET", "k", "2"), bulk(b"1")),
        (("GET", "k"), bulk(b"2")),
        (("SETEX", "t", "100", "v"), OK),
        (("GETSET", "t", "w"), bulk(b"v")),
        (("TTL", "t"), num(-1)),  # GETSET drops the TTL
        (("GETDEL", "k"), bulk(b"2")),
        (("GETDEL", "k"), NIL),
        (("EXISTS", "k"), num(0)),
    ])


def test_getex(traw):
    run_steps(traw, [
        (("GETEX", "k"), NIL),
        (("GETEX", "k", "EX", "0"), NIL),  # missing key: the time is not checked
        (("GETEX", "k", "EX", "abc"), NIL),
        (("GETEX", "k", "FOO"), SYNTAX),
        (("SET", "k", "v"), OK),
        (("GETEX", "k", "EX", "100"), bulk(b"v")),
        (("TTL", "k"), ttl_about(100)),
        (("GETEX", "k", "PERSIST"), bulk(b"v")),
        (("TTL", "k"), num(-1)),
        (("GETEX", "k", "PX", "100000"), bulk(b"v")),
        (("TTL", "k"), ttl_about(100)),
        (("GETEX", "k"), bulk(b"v")),
        (("TTL", "k"), ttl_about(100)),
        (("GETEX", "k", "EX", "10", "PERSIST"), SYNTAX),
        (("GETEX", "k", "KEEPTTL"), SYNTAX),
        (("GETEX", "k", "NX"), SYNTAX),
        (("GETEX", "k", "EX", "0"), b"-ERR invalid expire time in 'getex' command\r\n"),
        (("GETEX", "k", "EX", "abc"), NOT_INT),
        (("GETEX", "k", "EXAT", "1"), bulk(b"v")),  # a past deadline deletes the key
        (("EXISTS", "k"), num(0)),
    ])


def test_mget_mset_msetnx(traw):
    run_steps(traw, [
        (("MSET", "a", "1", "b", "2"), OK),
        (("MGET", "a", "b", "c"), b"*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n"),
        (("MSET", "a", "1", "b"), b"-ERR wrong number of arguments for 'mset' command\r\n"),
        (("MSETNX", "a", "9", "c", "3"), num(0)),
        (("EXISTS", "c"), num(0)),
        (("MSETNX", "c", "3", "d", "4"), num(1)),
        (("MGET", "c", "d"), b"*2\r\n$1\r\n3\r\n$1\r\n4\r\n"),
        (("MSETNX", "x", "1", "y"), b"-ERR wrong number of arguments for 'msetnx' command\r\n"),
        (("MGET",), b"-ERR wrong number of arguments for 'mget' command\r\n"),
    ])


def test_append_strlen(traw):
    run_steps(traw, [
        (("APPEND", "k", "ab"), num(2)),
        (("APPEND", "k", "cde"), num(5)),
        (("GET", "k"), bulk(b"abcde")),
        (("STRLEN", "k"), num(5)),
        (("STRLEN", "missing"), num(0)),
        (("SETEX", "t", "100", "v"), OK),
        (("APPEND", "t", "w"), num(2)),
        (("TTL", "t"), ttl_about(100)),  # APPEND keeps the TTL
    ])


@pytest.mark.parametrize("start, end, expected", [
    ("0", "-1", b"Hello World"), ("0", "4", b"Hello"), ("-5", "-1", b"World"),
    ("-100", "100", b"Hello World"), ("5", "3", b""), ("-1", "-5", b""),
    ("20", "30", b""), ("10", "10", b"d"), ("0", "0", b"H"),
])
def test_getrange(traw, start, end, expected):
    traw.call("SET", "k", "Hello World")
    assert traw.call("GETRANGE", "k", start, end) == bulk(expected)
    assert traw.call("SUBSTR", "k", start, end) == bulk(expected)


def test_getrange_errors_and_missing(traw):
    assert traw.call("GETRANGE", "missing", "0", "-1") == bulk(b"")
    traw.call("SET", "k", "v")
    assert traw.call("GETRANGE", "k", "0", "x") == NOT_INT


def test_setrange(traw):
    run_steps(traw, [
        (("SETRANGE", "k", "6", "Redis"), num(11)),
        (("GET", "k"), bulk(b"\x00" * 6 + b"Redis")),
        (("SETRANGE", "k", "0", "Hello"), num(11)),
        (("GET", "k"), bulk(b"Hello\x00Redis")),
        (("SETRANGE", "k", "3", ""), num(11)),
        (("SETRANGE", "empty", "5", ""), num(0)),
        (("EXISTS", "empty"), num(0)),
        (("SETRANGE", "k", "-1", "x"), b"-ERR offset is out of range\r\n"),
        (("SETRANGE", "k", "536870911", "xy"),
         b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"),
        (("SETRANGE", "k", "x", "y"), NOT_INT),
    ])


def test_incr_family(traw):
    run_steps(traw, [
        (("INCR", "n"), num(1)),
        (("INCRBY", "n", "10"), num(11)),
        (("DECR", "n"), num(10)),
        (("DECRBY", "n", "20"), num(-10)),
        (("INCRBY", "n", "-5"), num(-15)),
        (("GET", "n"), bulk(b"-15")),
        (("SETEX", "t", "100", "5"), OK),
        (("INCR", "t"), num(6)),
        (("TTL", "t"), ttl_about(100)),  # counters keep the TTL
    ])


@pytest.mark.parametrize("value", [b"abc", b" 1", b"1 ", b"01", b"+1", b"1.0", b"",
                                   b"9223372036854775808", b"0x10"])
def test_incr_rejects_non_integers(traw, value):
    traw.call("SET", "n", value)
    assert traw.call("INCR", "n") == NOT_INT
    assert traw.call("GET", "n") == bulk(value)


def test_incr_overflow(traw):
    run_steps(traw, [
        (("SET", "n", "9223372036854775807"), OK),
        (("INCR", "n"), b"-ERR increment or decrement would overflow\r\n"),
        (("SET", "n", "-9223372036854775808"), OK),
        (("DECR", "n"), b"-ERR increment or decrement would overflow\r\n"),
        (("INCRBY", "n", "9223372036854775807"), num(-1)),
        (("DECRBY", "n", "-9223372036854775808"), b"-ERR decrement would overflow\r\n"),
        (("INCRBY", "n", "9223372036854775808"), NOT_INT),
        (("INCRBY", "n", "abc"), NOT_INT),
        (("GET", "n"), bulk(b"-1")),
    ])


@pytest.mark.parametrize("start, increments, expected", [
    (None, ["1.5"], b"1.5"),
    ("10.5", ["0.1"], b"10.6"),
    ("1", ["1.5", "1e3", "0.1"], b"1002.59999999999999998"),  # long double precision
    ("5.0e3", ["2.0e2"], b"5200"),
    ("3.0e3", ["1"], b"3001"),
    (None, ["123456789012345678901234567890"], b"123456789012345678899921813504"),
    (None, ["0x10"], b"16"),
    (None, ["1.1e-5"], b"0.000011"),
    (None, ["-0.0"], b"0"),
    (None, ["1e-320"], b"0"),
    (None, ["0.1", "0.2", "-0.3"], b"0"),
    (None, [".5", "5."], b"5.5"),
    ("10", ["-10.25"], b"-0.25"),
])
def test_incrbyfloat_results(traw, start, increments, expected):
    if start is not None:
        traw.call("SET", "f", start)
    reply = None
    for inc in increments:
        reply = traw.call("INCRBYFLOAT", "f", inc)
    assert reply == bulk(expected)
    assert traw.call("GET", "f") == bulk(expected)


def test_incrbyfloat_huge_values(traw):
    reply = traw.call("INCRBYFLOAT", "f", "1.7976931348623157e308")
    assert reply.startswith(b"$309\r\n179769313486231569995921046774104434048386")
    assert traw.call("INCRBYFLOAT", "f", "1.7976931348623157e308").startswith(
        b"$309\r\n35953862697246313999184209354820886809677")
    assert traw.call("INCRBYFLOAT", "g", "1e4931").startswith(b"$4932\r\n1000000000000000")


@pytest.mark.parametrize("increment", [b"abc", b"nan", b" 1", b"1 ", b"1_0", b"", b"1e99999",
                                       b"1e-99999", b"0x", b"1.2.3"])
def test_incrbyfloat_rejects(traw, increment):
    assert traw.call("INCRBYFLOAT", "f", increment) == NOT_FLOAT
    assert traw.call("EXISTS", "f") == num(0)


def test_incrbyfloat_errors(traw):
    run_steps(traw, [
        (("INCRBYFLOAT", "f", "inf"), b"-ERR increment would produce NaN or Infinity\r\n"),
        (("INCRBYFLOAT", "f", "-inf"), b"-ERR increment would produce NaN or Infinity\r\n"),
        (("SET", "s", "abc"), OK),
        (("INCRBYFLOAT", "s", "1"), NOT_FLOAT),
        (("SET", "s", "1.2e4932"), OK),
        (("INCRBYFLOAT", "s", "1"), NOT_FLOAT),  # overflows a long double
        (("SET", "s", "1.18e4932"), OK),
        (("INCRBYFLOAT", "s", "1e4932"), b"-ERR increment would produce NaN or Infinity\r\n"),
        (("SETEX", "t", "100", "1"), OK),
        (("INCRBYFLOAT", "t", "1"), bulk(b"2")),
        (("TTL", "t"), ttl_about(100)),
    ])


def test_wrongtype_on_strings(traw):
    """String commands against another type; needs a container command."""
    if traw.call("LPUSH", "list", "x").startswith(b"-ERR unknown command"):
        pytest.skip("no list commands in this build yet")
    wrongtype = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    for args in (("GET", "list"), ("APPEND", "list", "x"), ("INCR", "list"),
                 ("STRLEN", "list"), ("GETRANGE", "list", "0", "1"),
                 ("SETRANGE", "list", "0", "x"), ("GETSET", "list", "x"), ("GETDEL", "list"),
                 ("GETEX", "list"), ("INCRBYFLOAT", "list", "1"), ("SET", "list", "x", "GET")):
        assert traw.call(*args) == wrongtype, args
    assert traw.call("MGET", "list") == b"*1\r\n$-1\r\n"
    assert traw.call("SET", "list", "x") == OK
