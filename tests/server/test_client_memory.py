"""Per-client memory (CLIENT LIST / INFO fields) and client eviction
(maxmemory-clients, CLIENT NO-EVICT), against redis-server 7.0 where values
are deterministic."""
from __future__ import annotations

import socket
from typing import Dict, List

import pytest
import redis

from servers import REDIS_SERVER, distcache_server, redis_server, wait_until

pytestmark = pytest.mark.timeout(120)

KINDS = ["distcache"] + (["redis"] if REDIS_SERVER else [])


@pytest.fixture(params=KINDS)
def any_server(request, tmp_path):
    """A fresh server of each kind: distcache, and redis-server as the reference."""
    start = distcache_server if request.param == "distcache" else redis_server
    with start(tmp_path) as proc:
        yield proc


def command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def connect(port: int, name: bytes, rcvbuf: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:  # before connecting, so the window stays small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(command(b"CLIENT", b"SETNAME", name))
    assert sock.recv(100) == b"+OK\r\n"
    return sock


def lines(r: redis.Redis) -> Dict[str, Dict[str, str]]:
    """CLIENT LIST by client name: each line's fields."""
    text = r.execute_command("CLIENT", "LIST")
    text = text.decode() if isinstance(text, bytes) else text
    out = {}
    for line in text.strip().split("\n"):
        fields = dict(f.split("=", 1) for f in line.strip().split(" "))
        out[fields["name"]] = fields
    return out


def read_all(sock: socket.socket, until: bytes) -> None:
    data = b""
    while not data.endswith(until):
        chunk = sock.recv(1 << 16)
        assert chunk
        data += chunk


def test_client_list_memory_fields(any_server):
    port = any_server.port
    r = redis.Redis(port=port, socket_timeout=10)
    multi = connect(port, b"multi")
    multi.sendall(command(b"MULTI") + b"".join(command(b"SET", b"k%d" % i, b"v" * 1000)
                                              for i in range(3)))
    read_all(multi, b"+OK\r\n" + b"+QUEUED\r\n" * 3)
    half = connect(port, b"half")
    half.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n" + b"x" * 50000)
    sub = connect(port, b"sub", rcvbuf=4096)
    sub.sendall(command(b"SUBSCRIBE", b"ch"))
    for _ in range(20):  # 6 MB the subscriber never reads: more than the sockets hold
        r.execute_command("EVAL", "for i = 1, 30 do redis.call('PUBLISH', 'ch', "
                          "string.rep('m', 10000)) end", 0)

    def settled():
        found = lines(r)
        return found if int(found["half"]["qbuf"]) > 0 \
            and int(found["sub"]["omem"]) > 0 else None
    found = wait_until(settled, message="qbuf and omem")
    mine = found[""]
    # As Redis: the queue's argument bytes plus a pointer each (3 x (3+2+1000+3*8)).
    assert found["multi"]["multi"] == "3" and found["multi"]["multi-mem"] == "3087"
    assert found["multi"]["flags"] == "x"
    assert int(found["half"]["qbuf"]) >= 50000
    assert int(found["half"]["tot-mem"]) > 50000
    assert int(found["sub"]["oll"]) > 0 and "w" in found["sub"]["events"]
    assert int(found["sub"]["tot-mem"]) > int(found["sub"]["omem"]) > 1_000_000
    assert mine["argv-mem"] == "10" and mine["events"] == "r"  # "client" + "list"
    assert mine["multi-mem"] == "0" and mine["multi"] == "-1"
    for fields in found.values():
        assert int(fields["fd"]) > 2
        assert int(fields["tot-mem"]) >= int(fields["qbuf"]) + int(fields["omem"]) \
            + int(fields["multi-mem"])
    # Redis's peaks come from its cron's visits (every client once a second).
    wait_until(lambda: r.info("clients")["client_recent_max_input_buffer"] >= 50000
               and r.info("clients")["client_recent_max_output_buffer"] > 1_000_000,
               message="recent input/output buffer peaks")
    memory = r.info("memory")
    assert memory["mem_clients_normal"] > 1_000_000 and memory["mem_clients_slaves"] == 0
    assert memory["used_memory"] > memory["mem_clients_normal"]
    # DISCARD frees the queue: multi-mem goes back to 0.
    multi.sendall(command(b"DISCARD"))
    read_all(multi, b"+OK\r\n")
    assert lines(r)["multi"]["multi-mem"] == "0"
    for sock in (multi, half, sub):
        sock.close()


def test_maxmemory_clients_config(any_server):
    r = redis.Redis(port=any_server.port, socket_timeout=10, decode_responses=True)
    for value, shown in (("10%", "10%"), ("1kb", "1024"), ("100%", "100%"), ("0", "0"),
                         ("2mb", "2097152")):
        assert r.config_set("maxmemory-clients", value)
        assert r.config_get("maxmemory-clients") == {"maxmemory-clients": shown}
    for value, reason in (("101%", "percentage argument must be less or equal to 100"),
                          ("-1", "argument must be a memory or percent value"),
                          ("abc", "argument must be a memory or percent value")):
        with pytest.raises(redis.ResponseError) as err:
            r.config_set("maxmemory-clients", value)
        assert str(err.value).endswith(reason)
    assert r.config_get("maxmemory-clients") == {"maxmemory-clients": "2097152"}
    assert r.info("stats")["evicted_clients"] == 0


def _clients(r: redis.Redis) -> List[str]:
    return list(lines(r))


def test_client_eviction(any_server):
    port = any_server.port
    r = redis.Redis(port=port, socket_timeout=10)
    r.execute_command("CLIENT", "NO-EVICT", "on")
    r.client_setname("admin")
    normal = redis.Redis(port=port, socket_timeout=10, client_name="normal")
    normal.set("a", "1")
    r.config_set("maxmemory-clients", "2mb")
    # A MULTI queue of big commands: evicted once the clients pass 2 MB.
    big = connect(port, b"bigmulti")
    big.sendall(command(b"MULTI"))
    read_all(big, b"+OK\r\n")
    queued = 0
    try:
        for _ in range(100):  # 10 MB queued if nothing stops it
            big.sendall(command(b"SET", b"k", b"x" * 100_000))
            read_all(big, b"+QUEUED\r\n")
            queued += 1
    except (OSError, AssertionError):  # closed: a reset, or the end of the stream
        pass
    assert 10 <= queued < 30
    wait_until(lambda: "bigmulti" not in _clients(r), message="MULTI client evicted")
    assert r.info("stats")["evicted_clients"] == 1
    assert "normal" in _clients(r) and normal.get("a") == b"1"
    # A subscriber that never reads, and one protected by CLIENT NO-EVICT.
    kept = connect(port, b"kept", rcvbuf=4096)
    kept.sendall(command(b"CLIENT", b"NO-EVICT", b"on"))
    read_all(kept, b"+OK\r\n")
    kept.sendall(command(b"SUBSCRIBE", b"ch"))
    slow = connect(port, b"slow", rcvbuf=4096)
    slow.sendall(command(b"SUBSCRIBE", b"ch"))
    wait_until(lambda: r.pubsub_numsub("ch")[0][1] == 2, message="two subscribers")
    for _ in range(20):  # 6 MB each: more than the sockets hold
        if "slow" not in _clients(r):
            break
        r.execute_command("EVAL", "for i = 1, 30 do redis.call('PUBLISH', 'ch', "
                          "string.rep('m', 10000)) end", 0)
    wait_until(lambda: "slow" not in _clients(r), message="subscriber evicted")
    names = _clients(r)
    assert "kept" in names and "admin" in names
    # (If the protected subscriber alone holds more than the limit, eviction goes on
    # with the small clients, "normal" too, as Redis's does: so no claim on it here.)
    evicted = r.info("stats")["evicted_clients"]
    assert evicted >= 2
    assert r.info("stats").get("client_output_buffer_limit_disconnections", 0) == 0
    kept.close()
    wait_until(lambda: "kept" not in _clients(r), message="protected subscriber gone")
    # A half-sent request bigger than the limit goes too; a normal client stays.
    other = redis.Redis(port=port, socket_timeout=10, client_name="other")
    other.set("b", "2")
    half = connect(port, b"half")
    try:  # the eviction may come before the last byte is sent: a reset then
        half.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10000000\r\n" + b"x" * 3_000_000)
    except OSError:
        pass
    wait_until(lambda: "half" not in _clients(r), message="half-sent request evicted")
    assert r.info("stats")["evicted_clients"] == evicted + 1
    assert "other" in _clients(r) and other.get("b") == b"2"
    assert r.ping()
    for sock in (big, slow, half):
        sock.close()


def test_percentage_of_maxmemory(any_server):
    """maxmemory-clients N% is of maxmemory; without maxmemory it is off."""
    port = any_server.port
    r = redis.Redis(port=port, socket_timeout=10)
    r.execute_command("CLIENT", "NO-EVICT", "on")
    r.config_set("maxmemory-clients", "1%")  # of no maxmemory: no limit
    big = connect(port, b"bigmulti")
    big.sendall(command(b"MULTI"))
    read_all(big, b"+OK\r\n")
    for _ in range(30):
        big.sendall(command(b"SET", b"k", b"x" * 100_000))
        read_all(big, b"+QUEUED\r\n")
    assert int(lines(r)["bigmulti"]["multi-mem"]) > 3_000_000
    r.config_set("maxmemory", "200mb")  # 1% = 2 MB: the queue's 3 MB is too much
    wait_until(lambda: "bigmulti" not in _clients(r), message="evicted at 1% of maxmemory")
    assert r.info("stats")["evicted_clients"] == 1
    big.close()


def test_cron_visits_a_bounded_slice(tmp_path):
    """10,000 clients: each cron tick measures about clients/hz of them, and every
    client is measured within hz ticks."""
    from distcache.server import client_memory
    from distcache.server.app import CacheServer
    from distcache.server.connection import Client

    server = CacheServer("127.0.0.1", 0, hz=10)
    for _ in range(10_000):
        c = Client(server)
        server.clients[c.id] = c
    tracker = server.client_memory
    visits = []
    real = client_memory.usage

    def counting(c):
        visits.append(c)
        return real(c)
    client_memory.usage = counting
    try:
        for _ in range(10):
            before = len(visits)
            tracker.cron()
            assert len(visits) - before <= 1001
    finally:
        client_memory.usage = real
    assert {c.id for c in visits} == set(server.clients)
    assert tracker.totals()[0] == client_memory.CLIENT_MEMORY * 10_000
