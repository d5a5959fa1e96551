"""Request headers at the edges of Redis's 64-bit length parsing (issue #12):
both request parsers, through both entry points, give Redis's verdicts."""
from __future__ import annotations

import pytest

from distcache.protocol import ProtocolError, UnauthenticatedLimit

from test_protocol_codec import APIS, REQUEST_KINDS, request_parser, take

PING = b"*1\r\n$4\r\nPING\r\n"


@pytest.mark.parametrize("kind", REQUEST_KINDS)
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("header", [b"*-9223372036854775809", b"*-99999999999999999999",
                                    b"*-184467440737095516160"])
def test_a_multibulk_count_below_llong_min_is_invalid(kind, api, header):
    """string2ll fails below LLONG_MIN, so Redis answers "invalid multibulk
    length"; such a header used to be taken as an empty request and skipped."""
    with pytest.raises(ProtocolError, match="invalid multibulk length"):
        take(request_parser(kind), header + b"\r\n" + PING, api)


@pytest.mark.parametrize("kind", REQUEST_KINDS)
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("header", [b"*0", b"*-1", b"*-5", b"*-9223372036854775808"])
def test_a_count_from_zero_down_to_llong_min_is_an_empty_request(kind, api, header):
    """Redis skips them (``*-5`` included, which hiredis's reader refuses), at a
    request boundary and after a request split across reads."""
    assert take(request_parser(kind), header + b"\r\n" + PING, api) == [[b"PING"]]
    parser = request_parser(kind)
    assert take(parser, PING + PING[:7], api) == [[b"PING"]]
    assert take(parser, PING[7:] + header + b"\r\n" + PING, api) == [[b"PING"], [b"PING"]]


def _request(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


@pytest.mark.parametrize("kind", REQUEST_KINDS)
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("big", [_request(b"ECHO", *[b"a"] * 10),
                                 _request(b"ECHO", b"y" * 20000)], ids=["11-args", "20kb-bulk"])
def test_unauthenticated_limits_stop_where_parsing_can_resume(kind, api, big):
    """AUTH pipelined with a request over the unauthenticated limits: the error
    (an UnauthenticatedLimit) carries the AUTH, and once the client is
    authenticated the parser resumes at the big request, which Redis runs."""
    parser = request_parser(kind)
    parser.authenticated = False
    with pytest.raises(UnauthenticatedLimit) as caught:
        take(parser, _request(b"AUTH", b"pw") + big + PING, api)
    assert caught.value.commands == [[b"AUTH", b"pw"]]
    parser.authenticated = True
    assert parser.get_commands() == [take(request_parser("python"), big, "parse")[0], [b"PING"]]
