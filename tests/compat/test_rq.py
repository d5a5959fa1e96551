"""rq: a job enqueued, run by a SimpleWorker in burst mode, its result fetched.

rq (1.12 and later) keeps job results in Redis streams (XADD, XREVRANGE, XLEN,
XREAD), so this also exercises distcache's streams as a library uses them.
"""
from __future__ import annotations

import operator

import pytest
import redis

rq = pytest.importorskip("rq")

pytestmark = pytest.mark.timeout(120)


def test_a_job_runs_in_a_burst_worker_and_its_result_is_fetched(server):
    connection = redis.Redis(port=server.port)
    queue = rq.Queue("compat", connection=connection)
    job = queue.enqueue(operator.add, 2, 3)
    worker = rq.SimpleWorker([queue], connection=connection)
    assert worker.work(burst=True)
    job.refresh()
    assert job.get_status() == "finished"
    assert job.return_value() == 5


def test_reference_redis_runs_the_same_job(reference_redis):
    """The same flow against redis-server: what distcache must match."""
    connection = redis.Redis(port=reference_redis.port)
    queue = rq.Queue("compat", connection=connection)
    job = queue.enqueue(operator.add, 2, 3)
    assert rq.SimpleWorker([queue], connection=connection).work(burst=True)
    job.refresh()
    assert job.get_status() == "finished" and job.return_value() == 5
