"""Security and limits: requirepass, maxclients, protected mode, idle timeout.

Password and maxclients behaviour is checked on distcache and on a real
redis-server. Protected mode is checked without sending traffic to any
non-loopback address: ``admission_error`` gets a fake peer address.
"""
from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from core_helpers import RawClient, start_target, wait_until
from distcache import CacheServer
from distcache.server.errors import MAX_CLIENTS, PROTECTED_MODE
from servers import distcache_server

NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"


@pytest.fixture(scope="module", params=["distcache", "redis"])
def locked(request, tmp_path_factory):
    proc = start_target(request.param, tmp_path_factory.mktemp(f"auth-{request.param}"),
                        "--requirepass", "s3cret")
    yield proc
    proc.stop()


@pytest.mark.parametrize("args", [
    ("PING",), ("GET", "k"), ("SET", "k", "v"), ("SELECT", "1"), ("CLIENT", "ID"),
    ("CONFIG", "GET", "port"), ("INFO",), ("DBSIZE",), ("FLUSHALL",), ("KEYS", "*"),
    ("ECHO", "x"), ("COMMAND", "COUNT"), ("SHUTDOWN", "NOSAVE"),
])
def test_commands_need_auth(locked, args):
    with RawClient(locked.port) as raw:
        assert raw.call(*args) == NOAUTH
        assert raw.call("PING") == NOAUTH


def test_auth_flow(locked):
    with RawClient(locked.port) as raw:
        # Unknown commands and wrong arity are reported before authentication.
        assert raw.call("NOSUCH", "x") == \
            b"-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n"
        assert raw.call("GET") == b"-ERR wrong number of arguments for 'get' command\r\n"
        assert raw.call("AUTH", "wrong") == WRONGPASS
        assert raw.call("AUTH", "default", "wrong") == WRONGPASS
        assert raw.call("AUTH", "other", "s3cret") == WRONGPASS
        assert raw.call("HELLO", "3").startswith(
            b"-NOAUTH HELLO must be called with the client already authenticated, otherwise "
            b"the HELLO AUTH <user> <pass> option can be used to authenticate the client and "
            b"select the RESP protocol version at the same time")
        assert raw.call("HELLO", "3", "AUTH", "default", "wrong") == WRONGPASS
        assert raw.call("GET", "k") == NOAUTH
        assert raw.call("AUTH", "s3cret") == b"+OK\r\n"
        assert raw.call("SET", "k", "v") == b"+OK\r\n"
        assert raw.call("GET", "k") == b"$1\r\nv\r\n"
        assert raw.call("RESET") == b"+RESET\r\n"
        assert raw.call("GET", "k") == NOAUTH  # RESET forgets the authentication
    with RawClient(locked.port) as raw:
        assert raw.call("HELLO", "3", "AUTH", "default", "s3cret").startswith(b"%")
        assert raw.call("GET", "k") == b"$1\r\nv\r\n"
    with RawClient(locked.port) as raw:
        raw.send(b"*1\r\n$4\r\nQUIT\r\n")
        assert raw.read_until_closed() == b"+OK\r\n"


def test_redis_py_with_password(locked):
    no_retry = Retry(NoBackoff(), 0)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=locked.port, password="wrong", retry=no_retry).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=locked.port, retry=no_retry).ping()
    client = redis.Redis(port=locked.port, password="s3cret", protocol=3)
    try:
        assert client.ping() is True
    finally:
        client.close()


def _admitted(port: int) -> RawClient:
    """A client the server admitted. Start-up's readiness probe has closed, but the
    server may not have read its EOF yet (seen under PyPy in CI): a refused client
    is closed and tried again."""
    admitted: list = []

    def attempt() -> bool:
        client = RawClient(port)
        if client.call("PING") == b"+PONG\r\n":
            admitted.append(client)
            return True
        client.close()
        return False
    wait_until(attempt, 10, message="a client admitted")
    return admitted[0]


@pytest.mark.parametrize("kind", ["distcache", "redis"])
def test_maxclients_refuses_the_third_client(tmp_path, kind):
    proc = start_target(kind, tmp_path, "--maxclients", "2")
    try:
        with _admitted(proc.port) as one, _admitted(proc.port) as two:
            assert one.call("PING") == b"+PONG\r\n"
            assert two.call("PING") == b"+PONG\r\n"
            with RawClient(proc.port) as three:
                three.send(b"*1\r\n$4\r\nPING\r\n")
                assert three.read_until_closed() == b"-ERR max number of clients reached\r\n"
            assert one.call("PING") == b"+PONG\r\n"
        # Slots free up when clients leave.
        def third_ok() -> bool:
            with RawClient(proc.port) as a, RawClient(proc.port) as b:
                return a.call("PING") == b.call("PING") == b"+PONG\r\n"
        wait_until(third_ok, 10, message="slots freed")
    finally:
        proc.stop()


def test_maxclients_config_set(server):
    with RawClient(server.port) as admin:
        assert admin.call("CONFIG", "SET", "maxclients", "1") == b"+OK\r\n"
        with RawClient(server.port) as extra:
            extra.send(b"PING\r\n")
            assert extra.read_until_closed() == b"-ERR max number of clients reached\r\n"
        assert admin.call("CONFIG", "SET", "maxclients", "100") == b"+OK\r\n"
        assert admin.call("INFO", "stats").count(b"rejected_connections:1\r\n") == 1


class _Peer:
    """Stands in for a connection: admission_error only needs the peer address."""


@pytest.mark.parametrize("peer, refused", [
    (("203.0.113.5", 40000), True),
    (("10.1.2.3", 40000), True),
    (("2001:db8::1", 40000, 0, 0), True),
    (("127.0.0.1", 40000), False),
    (("127.8.9.10", 40000), False),
    (("::1", 40000, 0, 0), False),
])
def test_protected_mode_admission(peer, refused):
    server = CacheServer("0.0.0.0", 0, appendonly="no", save="")
    assert server.admission_error(_Peer(), peer) == (PROTECTED_MODE if refused else None)
    with_password = CacheServer("0.0.0.0", 0, appendonly="no", save="", requirepass="pw")
    assert with_password.admission_error(_Peer(), peer) is None
    unprotected = CacheServer("0.0.0.0", 0, appendonly="no", save="", protected_mode="no")
    assert unprotected.admission_error(_Peer(), peer) is None


def test_admission_checks_maxclients_first():
    server = CacheServer("127.0.0.1", 0, appendonly="no", save="", maxclients=1)
    server.clients[1] = object()
    assert server.admission_error(_Peer(), ("127.0.0.1", 1)) == MAX_CLIENTS
    assert server.admission_error(_Peer(), ("203.0.113.5", 1)) == MAX_CLIENTS


def test_protected_mode_accepts_loopback_when_bound_to_all(tmp_path):
    with distcache_server(tmp_path, "--bind", "0.0.0.0", "--protected-mode", "yes") as proc:
        with RawClient(proc.port) as raw:  # 127.0.0.1 only: no outside traffic
            assert raw.call("PING") == b"+PONG\r\n"
            assert raw.call("CONFIG", "GET", "protected-mode") == \
                b"*2\r\n$14\r\nprotected-mode\r\n$3\r\nyes\r\n"
            assert raw.call("CONFIG", "GET", "bind") == b"*2\r\n$4\r\nbind\r\n$7\r\n0.0.0.0\r\n"


def test_idle_clients_time_out(tmp_path):
    with distcache_server(tmp_path, "--timeout", "1") as proc:
        idle = RawClient(proc.port)
        try:
            assert idle.call("PING") == b"+PONG\r\n"
            assert idle.read_until_closed(15) == b""  # closed by the server, no reply
        finally:
            idle.close()
        with RawClient(proc.port) as fresh:
            assert fresh.call("CONFIG", "GET", "timeout") == \
                b"*2\r\n$7\r\ntimeout\r\n$1\r\n1\r\n"
            assert fresh.call("CONFIG", "SET", "timeout", "0") == b"+OK\r\n"


# -- enable-protected-configs: CONFIG SET dir / dbfilename -------------------------------

@pytest.mark.parametrize("kind", ["distcache", "redis"])
def test_dir_and_dbfilename_are_protected_by_default(tmp_path, kind):
    """CONFIG SET dir + dbfilename + SAVE would write a file anywhere: refused, as Redis 7.0."""
    proc = start_target(kind, tmp_path)
    try:
        r = redis.Redis(port=proc.port)
        for name, value in (("dir", str(tmp_path)), ("dbfilename", "authorized_keys")):
            with pytest.raises(redis.ResponseError) as refused:
                r.config_set(name, value)
            assert str(refused.value) == (f"CONFIG SET failed (possibly related to argument "
                                          f"'{name}') - can't set protected config")
        assert r.config_get("dbfilename")["dbfilename"] != "authorized_keys"
        assert r.config_get("enable-protected-configs") == {"enable-protected-configs": "no"}
        with pytest.raises(redis.ResponseError, match="can't set immutable config"):
            r.config_set("enable-protected-configs", "yes")
    finally:
        proc.stop()


@pytest.mark.parametrize("kind", ["distcache", "redis"])
@pytest.mark.parametrize("mode", ["yes", "local"])
def test_protected_configs_can_be_allowed(tmp_path, kind, mode):
    proc = start_target(kind, tmp_path, "--enable-protected-configs", mode)
    try:
        r = redis.Redis(port=proc.port)
        assert r.config_set("dbfilename", "other.rdb")  # a loopback client: local allows it
        assert r.config_get("dbfilename") == {"dbfilename": "other.rdb"}
    finally:
        proc.stop()


def test_protected_configs_local_means_loopback():
    from distcache.server.client_info import is_local_address
    assert is_local_address("127.0.0.1:5000") and is_local_address("[::1]:5000")
    assert is_local_address("")  # a Unix socket
    assert not is_local_address("10.0.0.2:5000") and not is_local_address("[fe80::1]:80")
