"""A stream as a durable work queue, with redis-py as an application uses it:
producers XADD, three worker processes XREADGROUP and XACK, one is SIGKILLed
holding messages, and the others XAUTOCLAIM what it left. Every message is
processed at least once and acknowledged exactly once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import redis

from servers import ROOT, wait_until

WORKER = textwrap.dedent("""
    import sys, time, redis
    port, name, stall = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "stall"
    r = redis.Redis(port=port, decode_responses=True)
    cursor = "0-0"
    while True:
        got = r.xreadgroup("jobs-group", name, {"jobs": ">"}, count=5, block=100)
        batch = [(mid, fields) for _, items in got for mid, fields in items]
        if not batch:  # the janitor's part: take over what a dead worker left
            cursor, claimed, _ = r.xautoclaim("jobs", "jobs-group", name, 300, cursor, count=10)
            batch = claimed
        for mid, fields in batch:
            r.rpush("processed", mid)
            if stall:
                r.rpush("stalled", mid)
                time.sleep(3600)  # dies here, holding its messages
            if r.xack("jobs", "jobs-group", mid) == 1:
                r.rpush("acked", mid)
        if r.get("stop") and not batch and cursor == "0-0":
            break
""")


def _worker(port: int, name: str, mode: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", WORKER, str(port), name, mode], env=env)


def test_work_queue_survives_a_killed_worker(shared_server):
    r = redis.Redis(port=shared_server.port, decode_responses=True)
    r.flushall()
    r.xgroup_create("jobs", "jobs-group", id="$", mkstream=True)
    victim = _worker(shared_server.port, "victim", "stall")
    workers = []
    try:
        wait_until(lambda: r.info("clients")["blocked_clients"], message="the victim waiting")
        total = 300
        for n in range(total):
            r.xadd("jobs", {"n": n})
            if n == 0:  # the victim takes the first batch and stalls on it
                wait_until(lambda: r.llen("stalled"), message="the victim to hold a message")
        workers = [_worker(shared_server.port, f"w{i}", "work") for i in range(2)]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        wait_until(lambda: r.llen("acked") == total, timeout=60,
                   message="every message acknowledged")
        r.set("stop", 1)
        for w in workers:
            w.wait(30)
    finally:
        for p in [victim, *workers]:
            if p.poll() is None:
                p.kill()
                p.wait()
    ids = [mid for _, items in r.xread({"jobs": "0"}, count=total * 2) for mid, _ in items]
    acked = r.lrange("acked", 0, -1)
    assert len(ids) == total
    assert sorted(acked) == sorted(ids)  # each acknowledged exactly once
    assert set(r.lrange("processed", 0, -1)) == set(ids)  # each processed at least once
    assert r.xpending("jobs", "jobs-group")["pending"] == 0
    stalled = r.lrange("stalled", 0, -1)
    # the victim's message was delivered twice: to it, then to a janitor
    assert r.lrange("processed", 0, -1).count(stalled[0]) >= 2
