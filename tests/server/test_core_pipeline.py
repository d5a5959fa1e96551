"""Pipelining, backpressure, concurrent counters and mass expiry."""
from __future__ import annotations

import select
import socket
import threading
import time

import pytest

from core_helpers import RawClient, encode, rss_kb
from servers import distcache_server


@pytest.fixture(scope="module")
def big_server(tmp_path_factory):
    with distcache_server(tmp_path_factory.mktemp("pipeline")) as proc:
        yield proc


def test_ten_thousand_commands_in_one_write(big_server):
    with RawClient(big_server.port) as raw:
        raw.call("DEL", "counter")
        payload = b"".join(encode("ECHO", str(i)) if i % 2 else encode("INCR", "counter")
                           for i in range(10_000))
        raw.send(payload)  # one write
        for i in range(10_000):
            reply = raw.read_reply()
            if i % 2:
                assert reply == b"$%d\r\n%d\r\n" % (len(str(i)), i)
            else:
                assert reply == b":%d\r\n" % (i // 2 + 1)
        assert raw.call("GET", "counter") == b"$4\r\n5000\r\n"


def test_inline_pipeline(big_server):
    with RawClient(big_server.port) as raw:
        raw.send(b"".join(b"ECHO inline%d\r\n" % i for i in range(2000)))
        for i in range(2000):
            assert raw.read_reply() == b"$%d\r\ninline%d\r\n" % (len(b"inline%d" % i), i)


def test_writer_that_does_not_read_loses_nothing(big_server):
    """20,000 ECHOs of 4 KB (80 MB each way) written without reading: the
    server stops reading (our writes block) instead of buffering it all, and
    once we read, every reply arrives, in order."""
    count, size = 20_000, 4_000
    pid = big_server.proc.pid
    with RawClient(big_server.port) as raw:
        rss_before = rss_kb(pid)
        payloads = [b"%08d" % i + b"p" * (size - 8) for i in range(count)]
        requests = b"".join(encode("ECHO", p) for p in payloads)
        sock = raw.sock
        sock.setblocking(False)
        sent = 0
        while sent < len(requests):  # write only, until the server stops taking bytes
            try:
                sent += sock.send(requests[sent:sent + 65536])
            except BlockingIOError:
                _, writable, _ = select.select([], [sock], [], 0.5)
                if not writable:
                    break
        assert sent < len(requests), "the server never applied backpressure"
        rss_peak = rss_kb(pid)
        received = 0
        buf = b""
        head = b"$%d\r\n" % size
        while received < count:
            readable, writable, _ = select.select([sock], [sock] if sent < len(requests)
                                                  else [], [], 30)
            assert readable or writable, "stalled"
            if writable:
                try:
                    sent += sock.send(requests[sent:sent + 65536])
                except BlockingIOError:
                    pass
            if readable:
                buf += sock.recv(1 << 20)
                rss_peak = max(rss_peak, rss_kb(pid))
                step = len(head) + size + 2
                whole = min(len(buf) // step, count - received)
                for j in range(whole):  # peel whole replies off the front
                    reply = buf[j * step:(j + 1) * step]
                    assert reply == head + payloads[received + j] + b"\r\n", \
                        f"reply {received + j} wrong or out of order"
                buf = buf[whole * step:]
                received += whole
        assert buf == b""
        sock.setblocking(True)
        assert raw.call("PING") == b"+PONG\r\n"
    growth_mb = (rss_peak - rss_before) / 1024
    print(f"server RSS growth while 160 MB were in flight: {growth_mb:.0f} MB")
    assert growth_mb < 100


def test_fifty_clients_incr_to_exactly_500000(big_server):
    clients, per_client, batch = 50, 10_000, 1_000
    with RawClient(big_server.port) as raw:
        raw.call("DEL", "hits")
    errors = []
    request = encode("INCR", "hits") * batch

    def worker() -> None:
        try:
            with RawClient(big_server.port, timeout=60) as raw:
                for _ in range(per_client // batch):
                    raw.send(request)
                    for _ in range(batch):
                        reply = raw.read_reply()
                        assert reply.startswith(b":"), reply
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors[:3]
    assert not any(t.is_alive() for t in threads)
    with RawClient(big_server.port) as raw:
        assert raw.call("GET", "hits") == b"$6\r\n500000\r\n"
    print(f"500,000 INCRs from 50 clients in {time.monotonic() - started:.1f}s")


def test_mass_expiry_without_reads_keeps_latency_low(tmp_path):
    keys = 200_000
    with distcache_server(tmp_path) as proc, RawClient(proc.port, timeout=60) as raw:
        batch = 5_000
        for start in range(0, keys, batch):
            raw.send(b"".join(encode("SET", f"exp:{i}", "x", "PX", "1000")
                              for i in range(start, start + batch)))
            for _ in range(batch):
                assert raw.read_reply() == b"+OK\r\n"
        last_set = time.monotonic()
        assert int(raw.call("DBSIZE")[1:-2]) > 0
        latencies = []
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as ping:
            ping.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                t0 = time.perf_counter()
                ping.sendall(b"*1\r\n$4\r\nPING\r\n")
                assert ping.recv(64) == b"+PONG\r\n"
                latencies.append(time.perf_counter() - t0)
                if raw.call("DBSIZE") == b":0\r\n":
                    break
                assert time.monotonic() - last_set < 5, "keys not expired within 5 s"
        gone_after = time.monotonic() - last_set
        info = raw.call("INFO", "stats").decode()
        assert f"expired_keys:{keys}\r\n" in info
        worst = max(latencies) * 1000
        print(f"200k keys gone {gone_after:.2f}s after the last SET; "
              f"PING max {worst:.1f} ms over {len(latencies)} pings")
        assert worst < 250


# -- runs of GET and SET (run handlers), seen from outside ----------------------------

def test_pipelined_runs_keep_stats_watch_and_client_list(big_server):
    """A read of many GETs or SETs takes the run handlers; what clients can see of
    the commands (hits, misses, call counts, WATCH, CLIENT LIST) stays exact."""
    import redis
    r = redis.Redis(port=big_server.port, socket_timeout=10)
    watcher = redis.Redis(port=big_server.port, socket_timeout=10)
    try:
        r.flushall()
        r.config_resetstat()
        with watcher.pipeline(transaction=True) as tx:
            tx.watch(b"run:7")
            pipe = r.pipeline(transaction=False)
            for i in range(20):
                pipe.set(b"run:%d" % i, b"v%d" % i)
            for i in range(30):  # 20 hits, 10 misses
                pipe.get(b"run:%d" % i)
            replies = pipe.execute()
            tx.multi()
            tx.set(b"run:7", b"lost")
            with pytest.raises(redis.WatchError):
                tx.execute()
        assert replies[:20] == [True] * 20
        assert replies[20:] == [b"v%d" % i for i in range(20)] + [None] * 10
        stats = r.info("stats")
        assert (stats["keyspace_hits"], stats["keyspace_misses"]) == (20, 10)
        commandstats = r.info("commandstats")
        assert commandstats["cmdstat_set"]["calls"] == 20
        assert commandstats["cmdstat_get"]["calls"] == 30
        r.execute_command("CLIENT", "SETNAME", "runner")
        pipe = r.pipeline(transaction=False)
        for i in range(5):
            pipe.get(b"run:%d" % i)
        pipe.execute()
        mine = [c for c in watcher.client_list() if c["name"] == "runner"]
        assert mine and mine[0]["cmd"] == "get"
        assert r.get(b"run:7") == b"v7"
    finally:
        r.close()
        watcher.close()


def test_pipelined_sets_stop_at_the_memory_limit(tmp_path):
    """Under noeviction, a run of SETs meets OOM where the general path would."""
    import redis
    with distcache_server(tmp_path, "--maxmemory", "1", "--maxmemory-policy",
                          "noeviction") as proc:
        r = redis.Redis(port=proc.port, socket_timeout=10)
        try:
            pipe = r.pipeline(transaction=False)
            for i in range(50):
                pipe.set(b"k%d" % i, b"v")
            for i in range(50):
                pipe.get(b"k%d" % i)
            replies = pipe.execute(raise_on_error=False)
            sets, gets = replies[:50], replies[50:]
            assert all(isinstance(reply, redis.exceptions.OutOfMemoryError)
                       for reply in sets), sets[:3]
            assert gets == [None] * 50  # reads keep working
            assert r.dbsize() == 0
        finally:
            r.close()
