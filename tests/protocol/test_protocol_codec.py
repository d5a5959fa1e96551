"""The RESP codec: both parser implementations held to the same cases."""
from __future__ import annotations

import random

import pytest

from distcache.protocol import (HAVE_HIREDIS, NOT_ENOUGH, NULL_ARRAY, ProtocolError, Push,
                                PushMessage, ReplyError, RespSet, Status, Verbatim,
                                encode_command, encode_reply)
from distcache.protocol.reply_parser import ReplyParser
from distcache.protocol.resp import RequestParser, split_whole

REQUEST_KINDS = ["python"] + (["hiredis"] if HAVE_HIREDIS else [])


def request_parser(kind: str, **limits):
    if kind == "hiredis":
        from distcache.protocol.hiredis_codec import HiredisRequestParser
        return HiredisRequestParser(**limits)
    return RequestParser(**limits)


def take(parser, data: bytes, api: str):
    """Hand ``data`` to a request parser through ``parse`` (what the server uses)
    or through ``feed`` and ``get_commands``."""
    if api == "parse":
        return parser.parse(data)
    parser.feed(data)
    return parser.get_commands()


APIS = ["parse", "feed"]


def reply_parser(kind: str):
    if kind == "hiredis":
        from distcache.protocol.hiredis_codec import HiredisReplyParser
        return HiredisReplyParser()
    return ReplyParser()


def random_commands(rng: random.Random, count: int):
    cmds = []
    for i in range(count):
        roll = rng.random()
        if roll < 0.1:
            cmds.append([b"PING"])
        elif roll < 0.2:  # arguments containing CRLF and the protocol's own bytes
            cmds.append([b"SET", b"k\r\n*1\r\n$4\r\nPING", b"\r\n" * rng.randrange(4)])
        elif roll < 0.25:
            cmds.append([b"SET", b"big", rng.randbytes(20000)])
        else:
            cmds.append([b"SET", b"key:%d" % i, b"x" * rng.randrange(3000)])
    return cmds


@pytest.mark.parametrize("kind", REQUEST_KINDS)
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("seed", range(8))
def test_requests_survive_any_split(kind, api, seed):
    rng = random.Random(seed)
    cmds = random_commands(rng, 150)
    stream = b"".join(encode_command(c) for c in cmds)
    parser = request_parser(kind)
    got, pos = [], 0
    while pos < len(stream):
        step = rng.choice([5, 100, 1500, 5000, 30000])
        got += take(parser, stream[pos:pos + step], api)
        pos += step
    assert got == cmds
    assert parser.buffered() == 0


@pytest.mark.parametrize("kind", REQUEST_KINDS)
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("seed", range(4))
def test_buffered_is_zero_exactly_at_request_boundaries(kind, api, seed):
    """The persistence log relies on this: a read that starts and ends with
    nothing buffered holds exactly the commands it produced."""
    rng = random.Random(seed)
    wire = [encode_command(c) for c in random_commands(rng, 60)]
    wire[30:30] = [b"SET inline x\r\n"]  # the Python parser takes over from hiredis here
    stream = b"".join(wire)
    boundaries, end = {0}, 0
    for piece in wire:
        end += len(piece)
        boundaries.add(end)
    parser = request_parser(kind)
    pos = 0
    while pos < len(stream):
        step = rng.choice([1, 3, 7, 40, 700, 9000])
        take(parser, stream[pos:pos + step], api)
        pos = min(len(stream), pos + step)
        assert (parser.buffered() == 0) == (pos in boundaries), pos


@pytest.mark.parametrize("kind", REQUEST_KINDS)
@pytest.mark.parametrize("api", APIS)
def test_inline_requests_with_quotes(kind, api):
    parser = request_parser(kind)
    data = b'SET greeting "hello world\\n" \r\nGET \'it\\\'s\'\nPING\r\n\r\n'
    assert take(parser, data, api) == [[b"SET", b"greeting", b"hello world\n"],
                                     [b"GET", b"it's"], [b"PING"]]


@pytest.mark.parametrize("kind", REQUEST_KINDS)
@pytest.mark.parametrize("frame,error", [
    (b"*x\r\n", "Protocol error: invalid multibulk length"),
    (b"*1\r\n:5\r\n", "Protocol error: expected '$', got ':'"),
    (b"*1\r\n$-5\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"),
    (b'SET "unbalanced\r\n', "Protocol error: unbalanced quotes in request"),
    (b"*1\r\n$2000000\r\nab", "Protocol error: invalid bulk length"),
])
@pytest.mark.parametrize("api", APIS)
def test_malformed_requests_raise_redis_errors(kind, frame, error, api):
    parser = request_parser(kind, max_bulk_len=1024 * 1024)
    with pytest.raises(ProtocolError) as info:
        take(parser, frame, api)
    assert str(info.value) == error


@pytest.mark.parametrize("kind", REQUEST_KINDS)
@pytest.mark.parametrize("bad", [b"*1\r\n:5\r\n", b"*2\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n",
                                 b"*1\r\n$-1\r\n", b"*1\r\n+OK\r\n", b"*1\r\n-ERR x\r\n"])
def test_a_bad_request_mid_read_keeps_the_requests_before_it(kind, bad):
    good = encode_command([b"SET", b"a", b"1"]) + encode_command([b"GET", b"a"])
    parser = request_parser(kind)
    with pytest.raises(ProtocolError) as info:
        parser.parse(good + bad + encode_command([b"PING"]))
    assert info.value.commands == [[b"SET", b"a", b"1"], [b"GET", b"a"]]
    assert str(info.value).startswith("Protocol error")


@pytest.mark.parametrize("data", [
    encode_command([b"SET", b"k\r\nx", b"v"]),          # CRLF inside an argument
    b"*2\r\n$3\r\nGET\r\n$2\r\nk\r\n",                  # wrong length
    b"*2\r\n$3\r\nGET\r\n$01\r\nk\r\n",                 # non-canonical length
    encode_command([b"GET", b"k"])[:-1],                # partial
    encode_command([b"GET", b"k"]) + b"*1\r\n",          # whole request, then a partial one
    encode_command([b"GET", b"k"]) + b"PING\r\n",        # an inline request
    b"*2000\r\n$1\r\na\r\n",                           # more arguments than the limit
    # one request of two or three arguments (a path of its own)
    b"*2\r\n$3\r\nGET\r\n$2\r\nk\r\n", b"*2\r\n$4\r\nGET\r\n$1\r\nk\r\n",
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv\r\n", b"*3\r\n$3\r\nSET\r\n$2\r\nk\r\n$1\r\nv\r\n",
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$01\r\nv\r\n", b"*2\r\n$3\r\nGET\r\n+k\r\n",
    b"*3\r\n$3\r\nGET\r\n$1\r\nk\r\n",                  # fewer arguments than declared
])
def test_split_whole_takes_only_exactly_whole_canonical_reads(data):
    assert split_whole(data, 1024) is None
    cmds = [[b"SET", b"k", b"v"], [b"GET", b"k"], [b"MSET"] + [b"x"] * 9]
    assert split_whole(b"".join(map(encode_command, cmds)), 1024) == cmds
    for one in cmds[:2]:
        assert split_whole(encode_command(one), 1024) == [one]
        assert split_whole(encode_command(one), len(one) - 1) is None  # over the limit


@pytest.mark.parametrize("kind", REQUEST_KINDS)
def test_inline_request_after_multibulk_ones_in_one_read(kind):
    parser = request_parser(kind)
    data = encode_command([b"SET", b"a", b"1"]) + b"GET a\r\n" + encode_command([b"PING"])
    assert parser.parse(data) == [[b"SET", b"a", b"1"], [b"GET", b"a"], [b"PING"]]
    assert parser.buffered() == 0
    assert parser.parse(encode_command([b"GET", b"b"])) == [[b"GET", b"b"]]


@pytest.mark.parametrize("kind", REQUEST_KINDS)
def test_huge_multibulk_header_is_refused_by_the_limit(kind):
    parser = request_parser(kind, max_multibulk_len=1000)
    with pytest.raises(ProtocolError, match="invalid multibulk length"):
        parser.parse(encode_command([b"PING"]) + b"*2147483647\r\n$1\r\na\r\n")


@pytest.mark.parametrize("kind", REQUEST_KINDS)
def test_empty_and_null_multibulks_are_skipped(kind):
    parser = request_parser(kind)
    data = b"*0\r\n" + encode_command([b"PING"]) + b"*-1\r\n" + encode_command([b"GET", b"x"])
    assert parser.parse(data) == [[b"PING"], [b"GET", b"x"]]
    assert parser.buffered() == 0


@pytest.mark.parametrize("kind", REQUEST_KINDS)
def test_unauthenticated_clients_get_small_limits(kind):
    parser = request_parser(kind)
    parser.authenticated = False
    with pytest.raises(ProtocolError, match="unauthenticated multibulk length"):
        parser.parse(b"*11\r\n")


@pytest.mark.parametrize("kind", REQUEST_KINDS)
def test_large_bulk_is_assembled_without_quadratic_copies(kind):
    value = b"v" * (4 * 1024 * 1024)
    stream = encode_command([b"SET", b"k", value])
    parser = request_parser(kind)
    for i in range(0, len(stream), 16384):
        cmds = parser.parse(stream[i:i + 16384])
    assert cmds == [[b"SET", b"k", value]]


def encoded(value, resp3=False) -> bytes:
    out: list = []
    encode_reply(value, out, resp3)
    return b"".join(out)


def test_encoder_resp2_and_resp3_types():
    assert encoded(b"hi") == b"$2\r\nhi\r\n"
    assert encoded(None) == b"$-1\r\n" and encoded(None, True) == b"_\r\n"
    assert encoded(NULL_ARRAY) == b"*-1\r\n" and encoded(NULL_ARRAY, True) == b"_\r\n"
    assert encoded(5) == b":5\r\n"
    assert encoded(1.5) == b"$3\r\n1.5\r\n" and encoded(1.5, True) == b",1.5\r\n"
    assert encoded({b"a": 1}) == b"*2\r\n$1\r\na\r\n:1\r\n"
    assert encoded({b"a": 1}, True) == b"%1\r\n$1\r\na\r\n:1\r\n"
    assert encoded(RespSet([b"x"]), True) == b"~1\r\n$1\r\nx\r\n"
    assert encoded(Push([b"message"]), True) == b">1\r\n$7\r\nmessage\r\n"
    assert encoded(Status(b"OK")) == b"+OK\r\n"
    assert encoded(Verbatim(b"text"), True) == b"=8\r\ntxt:text\r\n"
    assert encoded(Verbatim(b"text")) == b"$4\r\ntext\r\n"
    assert encoded(ReplyError("ERR bad\r\nthing")) == b"-ERR bad  thing\r\n"


REPLY_KINDS = ["python"] + (["hiredis"] if HAVE_HIREDIS else [])


@pytest.mark.parametrize("kind", REPLY_KINDS)
def test_reply_parser_round_trips_every_type(kind):
    values = [b"bulk", 42, None, [b"a", [1, 2], None], Status(b"OK")]
    stream = b"".join(encoded(v) for v in values)
    stream += b"-ERR boom\r\n%2\r\n+k\r\n:1\r\n+k2\r\n,2.5\r\n~1\r\n:7\r\n>2\r\n+a\r\n+b\r\n#t\r\n"
    parser = reply_parser(kind)
    got = []
    for i in range(len(stream)):  # byte by byte: the hardest split
        parser.feed(stream[i:i + 1])
        while True:
            reply = parser.get()
            if reply is NOT_ENOUGH or reply is False:
                break
            got.append(reply)
    assert got[:4] == [b"bulk", 42, None, [b"a", [1, 2], None]]
    assert got[4] == b"OK"
    assert isinstance(got[5], ReplyError) and str(got[5]) == "ERR boom"
    assert got[6] == {b"k": 1, b"k2": 2.5}
    assert got[7] in ({7}, [7])
    assert list(got[8]) == [b"a", b"b"]
    if kind == "python":
        assert isinstance(got[8], PushMessage)
    assert got[9] is True


def test_reply_parser_caps_nesting_depth():
    parser = ReplyParser(max_depth=8)
    parser.feed(b"*1\r\n" * 20 + b":1\r\n")
    with pytest.raises(ProtocolError):
        parser.get()
