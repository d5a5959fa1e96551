"""dramatiq with its Redis broker and result backend, pointed at a distcache server.

The broker runs its Lua script (dispatch.lua) for every enqueue, fetch, ack and
heartbeat, so this exercises EVALSHA, hashes, lists and sorted sets as a user's
worker would.
"""
from __future__ import annotations

import pytest

dramatiq = pytest.importorskip("dramatiq")
pytest.importorskip("lupa")

pytestmark = pytest.mark.timeout(120)


def test_a_message_is_sent_processed_and_its_result_stored(server):
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.results import Results
    from dramatiq.results.backends import RedisBackend

    broker = RedisBroker(host="127.0.0.1", port=server.port, namespace="compat")
    backend = RedisBackend(host="127.0.0.1", port=server.port)
    broker.add_middleware(Results(backend=backend))
    seen = []

    def add(x, y):
        seen.append((x, y))
        return x + y

    actor = dramatiq.actor(add, broker=broker, store_results=True, max_retries=0)
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        messages = [actor.send(i, i * 10) for i in range(5)]
        results = [m.get_result(backend=backend, block=True, timeout=20000) for m in messages]
        assert results == [i * 11 for i in range(5)]
        assert sorted(seen) == [(i, i * 10) for i in range(5)]
        broker.join(actor.queue_name, timeout=20000)  # acknowledged: nothing left queued
    finally:
        worker.stop()
        broker.close()


def test_a_delayed_message_waits_then_runs(server):
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.results import Results
    from dramatiq.results.backends import RedisBackend

    broker = RedisBroker(host="127.0.0.1", port=server.port, namespace="delayed")
    backend = RedisBackend(host="127.0.0.1", port=server.port)
    broker.add_middleware(Results(backend=backend))
    actor = dramatiq.actor(lambda text: text.upper(), actor_name="shout", broker=broker,
                           store_results=True, max_retries=0)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        message = actor.send_with_options(args=("later",), delay=200)
        assert message.get_result(backend=backend, block=True, timeout=20000) == "LATER"
    finally:
        worker.stop()
        broker.close()
