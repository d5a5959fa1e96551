"""redis-cli against distcache: one-shot commands, --no-raw replies, piped
commands, RESP3, and inline commands sent as ``printf 'PING\\r\\n' | nc`` would."""
from __future__ import annotations

import subprocess

import pytest

from core_helpers import RawClient
from servers import REDIS_CLI

needs_cli = pytest.mark.skipif(not REDIS_CLI, reason="redis-cli is not installed")


def cli(port: int, *args: str, stdin: str = "") -> str:
    result = subprocess.run([REDIS_CLI, "-p", str(port), *args], input=stdin,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def port(shared_server):
    with RawClient(shared_server.port) as raw:
        raw.call("FLUSHALL")
    return shared_server.port


@needs_cli
def test_one_shot_commands(port):
    assert cli(port, "PING") == "PONG\n"
    assert cli(port, "SET", "greeting", "hello world") == "OK\n"
    assert cli(port, "GET", "greeting") == "hello world\n"
    assert cli(port, "INCRBY", "n", "5") == "5\n"
    assert cli(port, "DBSIZE") == "2\n"


@needs_cli
def test_no_raw_replies(port):
    assert cli(port, "--no-raw", "GET", "missing") == "(nil)\n"
    assert cli(port, "--no-raw", "INCR", "c") == "(integer) 1\n"
    assert cli(port, "--no-raw", "SET", "a", "x y") == "OK\n"
    assert cli(port, "--no-raw", "GET", "a") == '"x y"\n'
    assert cli(port, "--no-raw", "MGET", "a", "missing") == '1) "x y"\n2) (nil)\n'
    assert cli(port, "--no-raw", "NOSUCHCMD") == \
        "(error) ERR unknown command 'NOSUCHCMD', with args beginning with: \n"
    assert cli(port, "--no-raw", "INCR", "a") == \
        "(error) ERR value is not an integer or out of range\n"


@needs_cli
def test_commands_from_stdin(port):
    assert cli(port, stdin="SET k 1\nINCR k\nGET k\n") == "OK\n2\n2\n"


@needs_cli
def test_resp3_hello(port):
    out = cli(port, "-3", "--no-raw", "HELLO", "3")
    assert '"version" => "7.0.15"' in out and '"proto" => (integer) 3' in out
    assert cli(port, "-3", "--no-raw", "GET", "missing") == "(nil)\n"


@needs_cli
def test_info_and_config(port):
    assert "redis_version:7.0.15" in cli(port, "INFO", "server")
    assert cli(port, "CONFIG", "GET", "maxclients") == "maxclients\n10000\n"


def test_inline_commands_like_nc(port):
    """``printf 'PING\\r\\n' | nc host port``: inline commands over a raw socket."""
    with RawClient(port) as raw:
        raw.send(b"PING\r\n")
        assert raw.read_reply() == b"+PONG\r\n"
        raw.send(b"SET inline \"quoted value\"\r\nGET inline\r\n")
        assert raw.read_reply() == b"+OK\r\n"
        assert raw.read_reply() == b"$12\r\nquoted value\r\n"
        raw.send(b"ECHO 'single \\' quote'\nECHO \"\\x41\\n\"\n")  # bare \n ends a line too
        assert raw.read_reply() == b"$14\r\nsingle ' quote\r\n"
        assert raw.read_reply() == b"$2\r\nA\n\r\n"
        raw.send(b"\r\n  \r\nEXISTS inline\r\n")  # empty lines are ignored
        assert raw.read_reply() == b":1\r\n"
        raw.send(b"QUIT\r\n")
        assert raw.read_until_closed() == b"+OK\r\n"
