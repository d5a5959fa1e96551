"""TLS: redis-cli, redis-py and distcache's client over TLS; client certificates;
certificate reloads; hostile clients on the TLS port (plain text, stalled
handshakes); Redis's error texts. Certificates are made at run time (trustme).
"""
from __future__ import annotations

import asyncio
import importlib.util
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import pytest
import redis

from core_helpers import RawClient
from servers import REDIS_CLI, REDIS_SERVER, ROOT, distcache_server, free_ports, \
    redis_server, wait_until

trustme = pytest.importorskip("trustme")

PING = b"*1\r\n$4\r\nPING\r\n"


def _cli_has_tls() -> bool:
    if not REDIS_CLI:
        return False
    out = subprocess.run([REDIS_CLI, "--help"], capture_output=True, text=True)
    return "--tls" in out.stdout + out.stderr


needs_tls_cli = pytest.mark.skipif(not _cli_has_tls(),
                                   reason="redis-cli is not installed or built without TLS")


@dataclass
class Pair:
    cert: str
    key: str


@dataclass
class Certs:
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""

    dir: Path
    ca: "trustme.CA"
    ca_file: str
    server: Pair
    client: Pair

    def context(self, client_cert: bool = True, ca: Optional["trustme.CA"] = None,
                pair: Optional[Pair] = None) -> ssl.SSLContext:
        """A client context trusting ``ca`` (ours), presenting ``pair`` (ours)."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        (ca or self.ca).configure_trust(ctx)
        if client_cert:
            pair = pair or self.client
            ctx.load_cert_chain(pair.cert, pair.key)
        return ctx


def write_pair(directory: Path, name: str, leaf: "trustme.LeafCert") -> Pair:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return Pair(str(cert), str(key))


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    directory = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    ca_file = directory / "ca.crt"
    ca.cert_pem.write_to_path(str(ca_file))
    return Certs(directory, ca, str(ca_file),
                 write_pair(directory, "server", ca.issue_cert("127.0.0.1", "localhost")),
                 write_pair(directory, "client", ca.issue_cert("client@example.test")))


def tls_flags(certs: Certs, tls_port: int, *extra: str) -> List[str]:
    return ["--tls-port", str(tls_port), "--tls-cert-file", certs.server.cert,
            "--tls-key-file", certs.server.key, "--tls-ca-cert-file", certs.ca_file, *extra]


def start_tls_server(workdir: Path, certs: Certs, *extra: str):
    """A distcache server with a plain and a TLS port (``.tls_port``), debug log."""
    port, tls_port = free_ports(2)
    proc = distcache_server(workdir, *tls_flags(certs, tls_port, "--loglevel", "debug", *extra),
                            port=port).start()
    proc.tls_port = tls_port
    return proc


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, certs):
    proc = start_tls_server(tmp_path_factory.mktemp("tls"), certs)
    yield proc
    proc.stop()


@pytest.fixture
def fresh_tls_server(tmp_path, certs):
    procs = []

    def start(*extra: str):
        procs.append(start_tls_server(tmp_path / str(len(procs)), certs, *extra))
        return procs[-1]
    yield start
    for proc in procs:
        proc.stop()


def tls_redis(port: int, certs: Certs, **kwargs) -> redis.Redis:
    return redis.Redis(port=port, ssl=True, ssl_ca_certs=certs.ca_file,
                       ssl_certfile=certs.client.cert, ssl_keyfile=certs.client.key,
                       socket_timeout=10, **kwargs)


def tls_ping(port: int, ctx: ssl.SSLContext) -> bytes:
    """PING over a new TLS connection: the reply, b"" if closed; raises on a
    refused handshake (with TLSv1.3 the refusal may only show on the read)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(PING)
            return sock.recv(64)


def refused(port: int, ctx: ssl.SSLContext) -> bool:
    try:
        return tls_ping(port, ctx) == b""
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True


def cli(port: int, certs: Certs, *args: str, client_cert: bool = True):
    tls = ["--tls", "--cacert", certs.ca_file]
    if client_cert:
        tls += ["--cert", certs.client.cert, "--key", certs.client.key]
    return subprocess.run([REDIS_CLI, "-p", str(port), *tls, *args], capture_output=True,
                          text=True, timeout=30)


# -- clients ----------------------------------------------------------------------------


@needs_tls_cli
def test_redis_cli_over_tls_and_the_plain_port_beside_it(tls_server, certs):
    assert cli(tls_server.tls_port, certs, "SET", "cli:k", "over tls").stdout == "OK\n"
    assert cli(tls_server.tls_port, certs, "GET", "cli:k").stdout == "over tls\n"
    # Both ports serve the same server.
    plain = redis.Redis(port=tls_server.port, socket_timeout=10)
    assert plain.get("cli:k") == b"over tls"
    plain.close()
    # No client certificate while tls-auth-clients is yes: no reply.
    result = cli(tls_server.tls_port, certs, "PING", client_cert=False)
    assert "PONG" not in result.stdout


def test_redis_py_over_tls(tls_server, certs):
    r = tls_redis(tls_server.tls_port, certs)
    big = bytes(range(256)) * (12 * 1024)  # 3 MB: many TLS records each way
    assert r.set("py:big", big) is True
    assert r.get("py:big") == big
    pipe = r.pipeline(transaction=False)
    for _ in range(2000):
        pipe.incr("py:n")
    assert pipe.execute() == list(range(1, 2001))
    assert r.client_info()["addr"].startswith("127.0.0.1:")
    r3 = tls_redis(tls_server.tls_port, certs, protocol=3)
    assert r3.hgetall("missing") == {} and r3.ping() is True
    r3.close()
    r.close()


def test_distcache_client_over_tls(tls_server, certs):
    from distcache import AsyncCacheClient, CacheClient
    from distcache.client.errors import ConnectionError as CacheConnectionError

    url = f"rediss://127.0.0.1:{tls_server.tls_port}"
    client = CacheClient(url, ssl=certs.context(), health_interval=None)
    client.set("dc:v", {"tags": {"a"}, "n": 1})
    assert client.get("dc:v") == {"tags": {"a"}, "n": 1}
    client.close()

    async def run_async() -> object:
        aclient = AsyncCacheClient(url, ssl=certs.context(), health_interval=None)
        try:
            return await aclient.get("dc:v")
        finally:
            await aclient.close()
    assert asyncio.run(run_async()) == {"tags": {"a"}, "n": 1}
    # rediss:// alone means TLS verified against the system's CAs, which do not
    # know the test CA: the handshake fails (a plain connection would not).
    bare = CacheClient(url, health_interval=None, retries=0)
    with pytest.raises(CacheConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        bare.get("dc:v")
    bare.close()


# -- client certificates ------------------------------------------------------------------


def test_client_certificates_yes_optional_no(tls_server, certs):
    port = tls_server.tls_port
    stranger_ca = trustme.CA()
    stranger = write_pair(certs.dir, "stranger", stranger_ca.issue_cert("stranger@example"))
    assert tls_ping(port, certs.context()) == b"+PONG\r\n"
    assert refused(port, certs.context(client_cert=False))  # none: refused
    assert refused(port, certs.context(pair=stranger))  # another CA's: refused
    admin = redis.Redis(port=tls_server.port, socket_timeout=10)
    try:
        assert admin.config_set("tls-auth-clients", "optional") is True
        assert tls_ping(port, certs.context(client_cert=False)) == b"+PONG\r\n"
        assert refused(port, certs.context(pair=stranger))  # one sent is still checked
        assert admin.config_set("tls-auth-clients", "no") is True
        assert tls_ping(port, certs.context(pair=stranger)) == b"+PONG\r\n"
    finally:
        admin.config_set("tls-auth-clients", "yes")
        admin.close()
    assert refused(port, certs.context(client_cert=False))


def _connect(port: int, ctx: ssl.SSLContext, session: Optional[ssl.SSLSession] = None):
    """A TLS connection that has answered one PING (so TLSv1.3 tickets arrived)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
    sock.sendall(PING)
    assert sock.recv(64) == b"+PONG\r\n"
    return sock


def test_protocols_ciphers_and_session_caching_apply(tls_server, certs):
    port = tls_server.tls_port
    admin = redis.Redis(port=tls_server.port, socket_timeout=10)
    tls12 = certs.context()
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        with _connect(port, certs.context()) as sock:
            assert sock.version() == "TLSv1.3"  # the default: TLSv1.2 and TLSv1.3
        with _connect(port, tls12) as sock:
            assert sock.version() == "TLSv1.2"
        assert admin.config_set("tls-protocols", "TLSv1.3") is True
        assert refused(port, tls12)
        assert admin.config_set("tls-protocols", "TLSv1.2") is True
        with _connect(port, certs.context()) as sock:
            assert sock.version() == "TLSv1.2"
        # trustme keys are ECDSA
        assert admin.config_set("tls-ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256") is True
        with _connect(port, certs.context()) as sock:
            assert sock.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
        admin.config_set("tls-protocols", "")
        admin.config_set("tls-ciphers", "")
        # Session caching: a TLSv1.3 session resumes; with caching off no
        # ticket is issued, so there is nothing to resume.
        ctx = certs.context()  # a session resumes only with the context that made it
        with _connect(port, ctx) as first:
            session = first.session
        with _connect(port, ctx, session) as again:
            assert again.session_reused
        assert admin.config_set("tls-session-caching", "no") is True
        with _connect(port, ctx) as first:
            session = first.session
        with _connect(port, ctx, session) as again:
            assert not again.session_reused
    finally:
        admin.config_set("tls-protocols", "", "tls-ciphers", "", "tls-session-caching", "yes")
        admin.close()


# -- reload ---------------------------------------------------------------------------------


def test_config_set_reloads_the_certificate_for_new_connections(fresh_tls_server, certs,
                                                               tmp_path):
    proc = fresh_tls_server()
    admin = RawClient(proc.port)
    kept = tls_redis(proc.tls_port, certs)
    assert kept.set("k", "v") is True
    # A reload that fails changes nothing (Redis's reply; see the differential test).
    assert admin.call("CONFIG", "SET", "tls-cert-file", str(tmp_path / "missing.crt")) \
        .startswith(b"-ERR CONFIG SET failed (possibly related to argument 'tls-cert-file')")
    assert admin.call("CONFIG", "GET", "tls-cert-file") == \
        b"*2\r\n$13\r\ntls-cert-file\r\n$%d\r\n%s\r\n" % (len(certs.server.cert),
                                                           certs.server.cert.encode())
    assert tls_ping(proc.tls_port, certs.context()) == b"+PONG\r\n"
    # A certificate from another CA, at new paths.
    ca2 = trustme.CA()
    new = write_pair(tmp_path, "rotated", ca2.issue_cert("127.0.0.1"))
    assert admin.call("CONFIG", "SET", "tls-cert-file", new.cert, "tls-key-file", new.key) \
        == b"+OK\r\n"
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_ping(proc.tls_port, certs.context())  # trusts only the old CA
    assert tls_ping(proc.tls_port, certs.context(ca=ca2)) == b"+PONG\r\n"
    assert kept.get("k") == b"v"  # an open connection keeps its session
    # Rotation in place: new files at the same paths, CONFIG SET the same names.
    ca3 = trustme.CA()
    write_pair(tmp_path, "rotated", ca3.issue_cert("127.0.0.1"))
    assert admin.call("CONFIG", "SET", "tls-cert-file", new.cert) == b"+OK\r\n"
    assert tls_ping(proc.tls_port, certs.context(ca=ca3)) == b"+PONG\r\n"
    kept.close()
    admin.close()


# -- hostile clients on the TLS port ----------------------------------------------------------


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_plain_text_client_on_the_tls_port_is_dropped_without_harm(fresh_tls_server, certs,
                                                                  loop):
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    # maxclients 3: a handshake that failed must not keep counting against it.
    proc = fresh_tls_server("--maxclients", "3", "--event-loop", loop)
    for attempt in range(30):
        with RawClient(proc.tls_port) as plain:
            plain.send(PING if attempt % 2 else b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert plain.read_until_closed(timeout=5) == b""
    assert tls_ping(proc.tls_port, certs.context()) == b"+PONG\r\n"
    r = tls_redis(proc.tls_port, certs)
    value = b"x" * (1 << 20)
    assert r.set("k", value) is True and r.get("k") == value
    r.close()
    info = redis.Redis(port=proc.port, socket_timeout=10)
    wait_until(lambda: info.info("clients")["connected_clients"] == 1,
               message="only this client left")
    info.close()
    log = wait_until(lambda: proc.log().count("TLS handshake with") >= 30 and proc.log(),
                     message="the failed handshakes logged")
    assert "DEBUG distcache.server: TLS handshake with 127.0.0.1:" in log
    for word in ("Traceback", " WARNING ", " ERROR "):
        assert word not in log


def test_unfinished_handshakes_count_against_maxclients(fresh_tls_server, certs):
    proc = fresh_tls_server("--maxclients", "2")
    stalled = [RawClient(proc.tls_port) for _ in range(2)]  # connect, never say hello
    try:
        with RawClient(proc.tls_port) as third:
            assert third.read_until_closed(timeout=5) == b""
        stalled[0].sock.setblocking(False)
        with pytest.raises(BlockingIOError):  # still open: refused for the count
            stalled[0].sock.recv(1)
    finally:
        for sock in stalled:
            sock.close()
    wait_until(lambda: tls_ping(proc.tls_port, certs.context()) == b"+PONG\r\n",
               message="a TLS client served once the stalled ones left")


def test_a_stalled_handshake_times_out(fresh_tls_server, certs):
    proc = fresh_tls_server("--tls-handshake-timeout", "1")
    with RawClient(proc.tls_port) as silent, RawClient(proc.tls_port) as partial:
        partial.send(b"\x16\x03\x01")  # the start of a ClientHello record
        assert silent.read_until_closed(timeout=10) == b""
        assert partial.read_until_closed(timeout=10) == b""
    assert tls_ping(proc.tls_port, certs.context()) == b"+PONG\r\n"


# -- the record path (server/tls_stream.py) ---------------------------------------------------


def tls_socket(port: int, certs: Certs) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return certs.context().wrap_socket(raw, server_hostname="127.0.0.1")


def read_exactly(sock: ssl.SSLSocket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"closed after {len(data)} of {size} bytes"
        data += chunk
    return data


def connected_clients(port: int) -> int:
    with RawClient(port) as admin:
        info = admin.call("INFO", "clients").decode()
    return int(info.split("connected_clients:")[1].split()[0]) - 1  # not this one


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_burst_of_records_is_answered_in_order(fresh_tls_server, certs, loop):
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    proc = fresh_tls_server("--event-loop", loop)
    # 5000 commands (more than one read's fair share, so the server pauses
    # reading between shares) in records of up to 16 KB, some split across TCP
    # reads; then values that each span several records.
    words = [str(i).encode() * (1 + i % 7) for i in range(5000)]
    with tls_socket(proc.tls_port, certs) as sock:
        sock.sendall(b"".join(b"*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n" % (len(w), w)
                              for w in words))
        expected = b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)
        assert read_exactly(sock, len(expected)) == expected
        big = bytes(range(256)) * 4096  # 1 MB
        sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n" % (len(big), big)
                     + b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n" * 3)
        reply = b"$%d\r\n%s\r\n" % (len(big), big)
        assert read_exactly(sock, 5 + 3 * len(reply)) == b"+OK\r\n" + reply * 3


def test_close_notify_ends_the_connection_after_the_requests_before_it(tls_server, certs):
    sock = tls_socket(tls_server.tls_port, certs)
    sock.sendall(b"*3\r\n$3\r\nSET\r\n$6\r\nnotify\r\n$1\r\nv\r\n")
    assert read_exactly(sock, 5) == b"+OK\r\n"
    raw = sock.unwrap()  # sends close_notify and waits for the server's
    try:
        assert raw.recv(1) == b""  # and then the TCP connection ends
    finally:
        raw.close()
    wait_until(lambda: connected_clients(tls_server.port) == 0, message="the client gone")
    with tls_socket(tls_server.tls_port, certs) as sock:
        sock.sendall(b"*2\r\n$3\r\nGET\r\n$6\r\nnotify\r\n")
        assert read_exactly(sock, 7) == b"$1\r\nv\r\n"


def test_quit_over_tls_answers_then_closes_cleanly(tls_server, certs):
    with tls_socket(tls_server.tls_port, certs) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n")
        assert read_exactly(sock, 12) == b"+PONG\r\n+OK\r\n"
        assert sock.recv(64) == b""  # the server's close_notify: no PONG after QUIT
    wait_until(lambda: connected_clients(tls_server.port) == 0, message="the client gone")


def test_replies_written_outside_a_read_reach_tls_clients(tls_server, certs):
    # A TLS client's replies are encrypted at the end of a loop turn; these come
    # from another (plain-text) client's commands, not from the TLS client's read.
    with tls_socket(tls_server.tls_port, certs) as sub, \
            tls_socket(tls_server.tls_port, certs) as blocked:
        sub.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n")
        assert read_exactly(sub, 33) == b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
        blocked.sendall(b"*3\r\n$5\r\nBLPOP\r\n$7\r\nqueue:t\r\n$2\r\n10\r\n")
        r = redis.Redis(port=tls_server.port, socket_timeout=10)
        wait_until(lambda: r.info("clients")["blocked_clients"] == 1, message="BLPOP waits")
        assert r.publish("news", "hi") == 1
        r.rpush("queue:t", "x")
        r.close()
        assert read_exactly(sub, 35) == b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        assert read_exactly(blocked, 24) == b"*2\r\n$7\r\nqueue:t\r\n$1\r\nx\r\n"


# -- ports ----------------------------------------------------------------------------------


def test_port_0_with_tls_leaves_only_the_tls_port(tmp_path, certs):
    (tls_port,) = free_ports(1)
    proc = distcache_server(tmp_path, *tls_flags(certs, tls_port), "--port", "0",
                            port=tls_port, ssl_context=certs.context())
    with proc:
        r = tls_redis(tls_port, certs)
        assert r.info("server")["tcp_port"] == 0
        r.close()
        assert "ready: port 0, tls-port %d" % tls_port in proc.log()


def test_embedded_server_picks_a_free_tls_port(certs):
    from distcache import CacheServer
    with CacheServer("127.0.0.1", 0, tls_port="auto", tls_cert_file=certs.server.cert,
                     tls_key_file=certs.server.key, tls_ca_cert_file=certs.ca_file,
                     appendonly="no", save="") as server:
        assert server.port == 0 and server.tls_port > 0
        listening = [s.sockets[0].getsockname()[1] for s in server._servers]
        assert listening == [server.tls_port]
        r = tls_redis(server.tls_port, certs)
        assert r.ping() is True
        r.close()


def test_tls_port_without_a_certificate_does_not_start(tmp_path):
    (tls_port,) = free_ports(1)
    done = subprocess.run([sys.executable, "-m", "distcache", "server", "--port", "0",
                           "--tls-port", str(tls_port), "--appendonly", "no", "--save", "",
                           "--dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert done.returncode == 1
    assert "No tls-cert-file configured!" in done.stderr


# -- Redis's texts and defaults ------------------------------------------------------------------


def test_config_get_tls_defaults_match_redis(reference_redis, tmp_path):
    with distcache_server(tmp_path) as proc:
        ours = redis.Redis(port=proc.port, decode_responses=True).config_get("tls-*")
    theirs = redis.Redis(port=reference_redis.port, decode_responses=True).config_get("tls-*")
    assert ours.pop("tls-handshake-timeout") == "10"  # distcache's own
    assert ours == theirs


@pytest.mark.skipif(not REDIS_SERVER, reason="redis-server is not installed")
def test_failed_reloads_reply_as_redis_does(tls_server, certs, tmp_path):
    port, tls_port = free_ports(2)
    with redis_server(tmp_path, *tls_flags(certs, tls_port), port=port) as reference:
        for args in [("tls-cert-file", str(tmp_path / "missing.crt")),
                     ("tls-protocols", "TLSv9"),
                     ("tls-ciphers", "NO-SUCH-CIPHER"),
                     ("tls-auth-clients", "maybe"),
                     ("tls-session-cache-size", "-1"),
                     ("maxclients", "50", "tls-ca-cert-file", str(tmp_path / "none.pem"))]:
            with RawClient(reference.port) as theirs, RawClient(tls_server.port) as ours:
                expected = theirs.call("CONFIG", "SET", *args)
                assert expected.startswith(b"-ERR"), args
                assert ours.call("CONFIG", "SET", *args) == expected, args
                assert ours.call("CONFIG", "GET", "maxclients") == \
                    theirs.call("CONFIG", "GET", "maxclients")
    assert tls_ping(tls_server.tls_port, certs.context()) == b"+PONG\r\n"


@pytest.mark.skipif(importlib.util.find_spec("lupa") is None, reason="needs lupa")
def test_a_tls_client_waits_out_a_busy_script_and_stays_connected(fresh_tls_server, certs):
    """While a long script runs the server answers plain-text clients itself
    (-BUSY); a TLS client's bytes need the TLS layer, so it waits for the end."""
    proc = fresh_tls_server("--busy-reply-threshold", "50")
    ctx = certs.context()
    with socket.create_connection(("127.0.0.1", proc.tls_port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(PING)
            assert tls.recv(64) == b"+PONG\r\n"
            runner = socket.create_connection(("127.0.0.1", proc.port), timeout=20)
            runner.sendall(b"*3\r\n$4\r\nEVAL\r\n$17\r\nwhile 1 do end   \r\n$1\r\n0\r\n")
            plain = redis.Redis(port=proc.port, socket_timeout=10)
            wait_until(lambda: _busy(plain), 10)
            tls.sendall(PING)  # arrives while the script runs
            plain.script_kill()
            assert tls.recv(64) == b"+PONG\r\n"
            assert runner.recv(256).startswith(b"-ERR Script killed by user")
            runner.close()


def _busy(client: redis.Redis) -> bool:
    try:
        client.ping()
    except redis.exceptions.BusyLoadingError:
        return True
    except redis.ResponseError as exc:
        return str(exc).startswith("BUSY")
    return False
