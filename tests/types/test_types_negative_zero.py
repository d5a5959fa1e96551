"""-0 scores as redis-server 7.0 keeps them: a listpack-encoded sorted set stores an
integral score as the integer, so -0 reads back as 0; a skiplist keeps -0. Scripted
differential cases: ZADD (one pair, many, on a new key past the listpack limit),
ZINCRBY, ZADD INCR, conversions, the stores (converted to a listpack when small) and
the unstored replies."""
from __future__ import annotations

from typing import Any, List

import pytest

from servers import same_reply

LONG = "x" * 100  # past zset-max-listpack-value: the set becomes a skiplist


@pytest.fixture
def pair(text_pair):
    return text_pair


def _all(pair: List[Any], *command: Any) -> None:
    for client in pair:
        client.execute_command(*command)


def _many(n: int, score: str = "1") -> List[str]:
    return [x for i in range(n) for x in (score, f"m{i}")]


def test_zadd_minus_zero_follows_the_encoding(pair):
    same_reply(pair, "ZADD", "lp", "-0", "nz", "0", "z", "1", "a")
    assert same_reply(pair, "ZSCORE", "lp", "nz") == b"0"
    same_reply(pair, "ZRANGE", "lp", 0, -1, "WITHSCORES")
    same_reply(pair, "ZADD", "one", "-0", "m")
    assert same_reply(pair, "ZSCORE", "one", "m") == b"0"
    # a new key: the first pairs go in while it is a listpack, the last after it converted
    same_reply(pair, "ZADD", "big", "-0", "first", *_many(200), "-0", "last")
    assert same_reply(pair, "ZMSCORE", "big", "first", "last") == [b"0", b"-0"]
    # the member that converts the set (the 129th, or a long one) keeps -0
    same_reply(pair, "ZADD", "full", *_many(128))
    same_reply(pair, "ZADD", "full", "-0", "z129")
    assert same_reply(pair, "ZSCORE", "full", "z129") == b"-0"
    same_reply(pair, "ZADD", "lm", "1", "a")
    same_reply(pair, "ZADD", "lm", "-0", LONG)
    assert same_reply(pair, "ZSCORE", "lm", LONG) == b"-0"
    # converting keeps the 0 the listpack read
    same_reply(pair, "ZADD", "lp", *_many(200))
    same_reply(pair, "OBJECT", "ENCODING", "lp")
    assert same_reply(pair, "ZSCORE", "lp", "nz") == b"0"
    # -0 over 0 (or 0 over -0) is no update in either encoding
    same_reply(pair, "ZADD", "big", "CH", "0", "last", "-0", "m1")
    same_reply(pair, "ZMSCORE", "big", "last", "m1")


def test_zincrby_and_zadd_incr_to_minus_zero(pair):
    same_reply(pair, "ZADD", "i", "1", "m")
    assert same_reply(pair, "ZINCRBY", "i", "-1", "m") == b"0"
    same_reply(pair, "ZINCRBY", "i", "-0", "m")
    # the reply is the score given, the stored score what the listpack reads back
    assert same_reply(pair, "ZADD", "n", "INCR", "-0", "m") == b"-0"
    assert same_reply(pair, "ZADD", "n", "INCR", "-0", "m") == b"0"
    same_reply(pair, "ZADD", "s", "-0", LONG, *_many(3))  # a skiplist from the start
    assert same_reply(pair, "ZINCRBY", "s", "-0", LONG) == b"-0"
    same_reply(pair, "ZADD", "s", "-0", "m0")
    assert same_reply(pair, "ZSCORE", "s", "m0") == b"-0"


def test_algebra_and_stores_with_minus_zero(pair):
    _all(pair, "ZADD", "sk", *_many(200), "-0", "nz")  # skiplist holding -0
    _all(pair, "ZADD", "lp", "-0", "nz", "1", "a")      # listpack holding 0
    for command in (("ZUNION", 1, "sk", "WITHSCORES"), ("ZINTER", 2, "sk", "sk", "WITHSCORES"),
                    ("ZINTER", 2, "sk", "sk", "AGGREGATE", "MIN", "WITHSCORES"),
                    ("ZINTER", 2, "lp", "sk", "AGGREGATE", "MAX", "WITHSCORES"),
                    ("ZUNION", 2, "lp", "lp", "WITHSCORES"),
                    ("ZRANGE", "sk", 0, 2, "WITHSCORES")):
        same_reply(pair, *command)
    # stores: a small result becomes a listpack (0), a large one stays a skiplist (-0)
    for command in (("ZUNIONSTORE", "u", 1, "sk"), ("ZINTERSTORE", "i", 2, "sk", "sk"),
                    ("ZRANGESTORE", "r", "sk", 0, 0), ("ZDIFFSTORE", "d", 2, "sk", "lp"),
                    ("ZINTERSTORE", "ism", 2, "sk", "lp")):
        same_reply(pair, *command)
        dest = command[1]
        same_reply(pair, "OBJECT", "ENCODING", dest)
        same_reply(pair, "ZRANGE", dest, 0, 0, "WITHSCORES")


def test_restore_of_a_small_set_reads_minus_zero_as_zero(pair):
    _all(pair, "ZADD", "sk", *_many(200), "-0", "nz")
    payloads = [client.execute_command("DUMP", "sk") for client in pair]
    assert payloads[0] == payloads[1]
    _all(pair, "ZREMRANGEBYRANK", "sk", 1, -1)  # nz alone (a skiplist still, for Redis)
    payload = pair[1].execute_command("DUMP", "sk")
    for client in pair:
        client.execute_command("RESTORE", "small", 0, payload)
    assert same_reply(pair, "ZSCORE", "small", "nz") == b"0"
    same_reply(pair, "OBJECT", "ENCODING", "small")
