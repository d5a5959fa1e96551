"""Celery with the Redis broker and result backend, pointed at a distcache server.

The broker (kombu) pushes and pops with LPUSH/BRPOP and keeps unacked messages in
a sorted set and a hash; the backend stores results with SETEX and announces them
on pub/sub, which ``AsyncResult.get`` waits on.
"""
from __future__ import annotations

import gc

import pytest

celery = pytest.importorskip("celery")

pytestmark = pytest.mark.timeout(120)


def test_tasks_run_by_a_worker_and_their_results_fetched(server):
    from celery.contrib.testing.worker import start_worker

    url = f"redis://127.0.0.1:{server.port}"
    app = celery.Celery("compat", broker=f"{url}/0", backend=f"{url}/1")
    app.conf.update(broker_connection_retry_on_startup=True, task_acks_late=True)

    @app.task
    def add(x, y):
        return x + y

    @app.task
    def fail():
        raise ValueError("no")

    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        assert add.delay(2, 3).get(timeout=30) == 5
        results = [add.delay(i, i) for i in range(5)]
        assert [r.get(timeout=30) for r in results] == [0, 2, 4, 6, 8]
        assert celery.group(add.s(i, 1) for i in range(3))().get(timeout=30) == [1, 2, 3]
        with pytest.raises(ValueError):
            fail.delay().get(timeout=30)
        # An AsyncResult's __del__ unsubscribes from its result channel. Left to
        # a later GC (PyPy's), that runs after this server is gone, in whatever
        # test comes next, and retries the connection 20 times a second apart:
        # it held a later test of the same worker for over 2 minutes.
        del results
        gc.collect()
        gc.collect()
    app.close()
