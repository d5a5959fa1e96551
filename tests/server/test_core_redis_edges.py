"""Edge cases where distcache once differed from Redis 7.0.15, found by differential
fuzzing. Each expected reply is what redis-server 7.0.15 sent for the same steps."""
from __future__ import annotations

import time

import pytest
import redis

from core_helpers import RawClient, run_steps
from servers import distcache_server

from distcache.server.glob import compile_glob

WRONGTYPE = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
NOT_INT = b"-ERR value is not an integer or out of range\r\n"
EMPTY_SCAN = b"*2\r\n$1\r\n0\r\n*0\r\n"


@pytest.fixture
def raw(shared_server):
    with RawClient(shared_server.port) as client:
        client.call("FLUSHALL")
        yield client


def pairs(*items: bytes) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(b"$%d\r\n%s\r\n" % (len(i), i) for i in items)


def test_zinter_nan_from_weights_is_zeroed_only_for_the_first_set(raw):
    # 0 * inf is NaN: Redis zeroes it for the first (smallest) set only; later,
    # SUM turns a NaN total into 0 and MIN/MAX keep the other side.
    run_steps(raw, [(("ZADD", "a", "1", "m", "3", "n"), b":2\r\n"),
                    (("ZADD", "b", "inf", "m", "2", "n"), b":2\r\n")])
    inter = ("ZINTER", "2", "a", "b", "WEIGHTS", "1", "0", "AGGREGATE")
    run_steps(raw, [
        ((*inter, "SUM", "WITHSCORES"), pairs(b"m", b"0", b"n", b"3")),
        ((*inter, "MIN", "WITHSCORES"), pairs(b"n", b"0", b"m", b"1")),
        ((*inter, "MAX", "WITHSCORES"), pairs(b"m", b"1", b"n", b"3")),
        (("ZINTER", "2", "b", "b", "WEIGHTS", "inf", "0", "WITHSCORES"),
         pairs(b"m", b"0", b"n", b"inf")),
        (("ZUNION", "2", "a", "b", "WEIGHTS", "1", "0", "AGGREGATE", "MIN", "WITHSCORES"),
         pairs(b"m", b"0", b"n", b"0")),
    ])


def test_score_ranges_scores_and_timeouts_read_hex_as_strtod(raw):
    run_steps(raw, [
        (("ZADD", "z", "1", "a", "2", "b", "3", "c"), b":3\r\n"),
        (("ZRANGEBYSCORE", "z", "0x1", "0x2"), pairs(b"a", b"b")),
        (("ZCOUNT", "z", "-inf", "0x1.8p1"), b":3\r\n"),
        (("ZCOUNT", "z", "(0x1", "+inf"), b":2\r\n"),
        (("ZCOUNT", "z", "nan", "3"), b"-ERR min or max is not a float\r\n"),
        (("ZADD", "h", "0xep-1100", "a"), b"-ERR value is not a valid float\r\n"),
        (("ZADD", "h", "0x0.ep-1090", "b"), b"-ERR value is not a valid float\r\n"),
        (("ZADD", "h", "0x0p0", "c"), b":1\r\n"),
        (("BZPOPMIN", "z", "0x10"), pairs(b"z", b"a", b"1")),
        (("BLPOP", "nolist", "0x1p-20"), b"*-1\r\n"),
        (("BLPOP", "nolist", "-0x1"), b"-ERR timeout is negative\r\n"),
        (("ZREMRANGEBYSCORE", "z", "0x1", "0x3"), b":2\r\n"),
    ])


@pytest.mark.parametrize("command", [("LMOVE", "l", "l", "LEFT", "RIGHT"),
                                     ("RPOPLPUSH", "l", "l"), ("BLMOVE", "l", "l", "LEFT",
                                                               "LEFT", "0")])
def test_moving_a_one_element_list_onto_itself_keeps_its_ttl(raw, command):
    run_steps(raw, [(("RPUSH", "l", "a"), b":1\r\n"), (("EXPIRE", "l", "1000"), b":1\r\n"),
                    (command, b"$1\r\na\r\n"), (("TTL", "l"), b":1000\r\n"),
                    (("LRANGE", "l", "0", "-1"), pairs(b"a"))])


def test_scan_reads_the_cursor_before_the_key_and_options_only_for_a_key(raw):
    run_steps(raw, [
        (("SET", "str", "v"), b"+OK\r\n"),
        (("SSCAN", "str", "x"), b"-ERR invalid cursor\r\n"),
        (("ZSCAN", "str", "x"), b"-ERR invalid cursor\r\n"),
        (("HSCAN", "str", "0", "FOO"), WRONGTYPE),
        (("HSCAN", "nokey", "0", "FOO", "bar"), EMPTY_SCAN),
        (("SSCAN", "nokey", "0", "COUNT", "0"), EMPTY_SCAN),
        (("ZADD", "s", "3", "c", "1", "a", "2", "b"), b":3\r\n"),
        (("ZSCAN", "s", "0"),  # a small sorted set scans in score order
         b"*2\r\n$1\r\n0\r\n" + pairs(b"a", b"1", b"b", b"2", b"c", b"3")),
    ])


def test_rand_commands_check_count_then_syntax_then_range_then_type(raw):
    run_steps(raw, [
        (("SET", "str", "v"), b"+OK\r\n"),
        (("HRANDFIELD", "str", "x"), NOT_INT),
        (("HRANDFIELD", "h", "x", "FOO"), NOT_INT),
        (("ZRANDMEMBER", "str", "x"), NOT_INT),
        (("ZRANDMEMBER", "str", "1", "foo"), b"-ERR syntax error\r\n"),
        (("ZRANDMEMBER", "str", "9223372036854775807", "WITHSCORES"),
         b"-ERR value is out of range\r\n"),
        # C's -LONG_MAX/2 truncates: one below it is out of range
        (("HRANDFIELD", "nokey", "-4611686018427387904", "WITHVALUES"),
         b"-ERR value is out of range\r\n"),
        (("SRANDMEMBER", "str", "x"), NOT_INT),
        (("HRANDFIELD", "str", "1"), WRONGTYPE),
    ])


def test_glob_ranges_compare_bytes_as_signed_chars():
    low_to_b = compile_glob(b"[\x80-b]")  # -128..98: high bytes and up to 'b'
    assert low_to_b(b"a") and low_to_b(b"\xe9") and low_to_b(b"\x00")
    assert not low_to_b(b"c")
    a_to_ff = compile_glob(b"[a-\xff]")  # 'a' (97) and \xff (-1): -1..97
    assert a_to_ff(b"a") and a_to_ff(b"\xff") and a_to_ff(b"0")
    assert not a_to_ff(b"b") and not a_to_ff(b"\xe9")
    assert compile_glob(b"[\x90-\xa0]")(b"\x95") and not compile_glob(b"[\x90-\xa0]")(b"a")


def test_a_negative_rand_count_too_big_for_one_reply_is_refused(raw):
    # Redis 7.0 builds such replies and runs out of memory; here a reply of
    # repeats is bounded by proto-max-bulk-len (16 bytes or more per element).
    run_steps(raw, [(("SADD", "s", "a"), b":1\r\n"), (("HSET", "h", "f", "v"), b":1\r\n"),
                    (("ZADD", "z", "1", "m"), b":1\r\n")])
    too_many = str(-(512 * 1024 * 1024 // 16) - 1)
    for args in (("SRANDMEMBER", "s", too_many), ("HRANDFIELD", "h", too_many),
                 ("ZRANDMEMBER", "z", too_many),
                 ("HRANDFIELD", "h", str(-(512 * 1024 * 1024 // 32) - 1), "WITHVALUES"),
                 ("SRANDMEMBER", "s", "-4611686018427387903")):
        assert raw.call(*args) == b"-ERR value is out of range\r\n", args
    assert raw.call("SRANDMEMBER", "s", "-3") == pairs(b"a", b"a", b"a")
    assert raw.call("HRANDFIELD", "h", "-2", "WITHVALUES") == pairs(b"f", b"v", b"f", b"v")
    assert raw.call("CONFIG", "SET", "proto-max-bulk-len", "1mb") == b"+OK\r\n"
    try:
        assert raw.call("SRANDMEMBER", "s", str(-(1 << 16) - 1)) == \
            b"-ERR value is out of range\r\n"
        assert raw.call("SRANDMEMBER", "s", str(-(1 << 16))).startswith(b"*65536\r\n")
    finally:
        raw.call("CONFIG", "SET", "proto-max-bulk-len", "512mb")


def test_memory_directives_take_redis_ranges_and_texts(raw):
    failed = b"-ERR CONFIG SET failed (possibly related to argument '%s') - "
    run_steps(raw, [
        (("CONFIG", "SET", "maxmemory-samples", "0"), failed % b"maxmemory-samples"
         + b"argument must be between 1 and 2147483647 inclusive\r\n"),
        (("CONFIG", "SET", "lfu-log-factor", "-1"), failed % b"lfu-log-factor"
         + b"argument must be between 0 and 2147483647 inclusive\r\n"),
        (("CONFIG", "SET", "maxmemory-policy", "foo"), failed % b"maxmemory-policy"
         + b"argument(s) must be one of the following: volatile-lru, volatile-lfu, "
         b"volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, "
         b"noeviction\r\n"),
        (("CONFIG", "SET", "maxmemory-samples", "65"), b"+OK\r\n"),
        (("CONFIG", "SET", "maxmemory-samples", "5"), b"+OK\r\n"),
    ])


def test_a_huge_sample_count_still_evicts(tmp_path):
    with distcache_server(tmp_path) as srv:
        r = redis.Redis(port=srv.port)
        r.config_set("maxmemory-samples", 2 ** 31 - 1)
        r.config_set("maxmemory-policy", "allkeys-lru")
        for i in range(200):
            r.set(f"k{i}", b"v" * 1000)
        r.config_set("maxmemory", r.info("memory")["used_memory"] - 100_000)
        r.set("new", "v")
        assert r.info("stats")["evicted_keys"] > 0


def test_timeouts_near_llong_max_milliseconds(shared_server, raw):
    negative = b"-ERR timeout is negative\r\n"
    run_steps(raw, [(("BLPOP", "nolist", "9223372036854775.808"), negative),
                    (("BLPOP", "nolist", "1e400"), negative),
                    (("BLPOP", "nolist", "1e5000"),
                     b"-ERR timeout is not a float or out of range\r\n")])
    with RawClient(shared_server.port) as waiter:  # just below: it blocks
        waiter.send(b"BLPOP nolist 9223372036854775.807\r\n")
        deadline = time.monotonic() + 10
        while b"blocked_clients:1\r\n" not in raw.call("INFO", "clients"):
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert raw.call("RPUSH", "nolist", "x") == b":1\r\n"
        assert waiter.read_reply() == pairs(b"nolist", b"x")


def test_hex_overflow_reads_as_infinity_and_long_double_underflow_is_an_error(raw):
    run_steps(raw, [
        (("ZADD", "z", "1", "a"), b":1\r\n"),
        (("ZCOUNT", "z", "-inf", "0x1p2000"), b":1\r\n"),
        (("ZCOUNT", "z", "-0x1p2000", "(0x1p2000"), b":1\r\n"),
        (("ZADD", "z", "0x1p2000", "b"), b"-ERR value is not a valid float\r\n"),
        (("BLPOP", "nolist", "0x1p2000"), b"-ERR timeout is negative\r\n"),
        (("BLPOP", "nolist", "1e-5000"), b"-ERR timeout is not a float or out of range\r\n"),
        (("CLIENT", "UNBLOCK", "abc", "foo"),
         b"-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"),
        (("CLIENT", "UNBLOCK", "1", "2", "3"), b"-ERR unknown subcommand or wrong number of "
         b"arguments for 'UNBLOCK'. Try CLIENT HELP.\r\n"),
    ])
