"""Scripts that run too long: -BUSY, SCRIPT KILL, SHUTDOWN NOSAVE and SIGTERM.

The same steps run against redis-server 7.0 and against distcache on asyncio
and on uvloop, and every reply text is compared.
"""
from __future__ import annotations

import select
import signal
import socket
import time

import pytest
import redis

from scripting_helpers import Background, error_text
from servers import REDIS_SERVER, distcache_server, recv_until, redis_server, wait_until

pytest.importorskip("lupa")

THRESHOLD = ["--busy-reply-threshold", "200"]
KINDS = ["redis", "asyncio", "uvloop"]


def _start(kind, tmp_path, *flags):
    if kind == "redis":
        if not REDIS_SERVER:
            pytest.skip("redis-server is not installed")
        return redis_server(tmp_path, *THRESHOLD, *flags).start()
    if kind == "uvloop":
        pytest.importorskip("uvloop")
    return distcache_server(tmp_path, "--event-loop", kind, *THRESHOLD, *flags).start()


def _busy_story(kind, tmp_path):
    proc = _start(kind, tmp_path)
    try:
        before = redis.Redis(host="127.0.0.1", port=proc.port, socket_timeout=30)  # connected before the script
        before.ping()
        script = Background(proc.port, "EVAL", "local i = 0 while true do i = i + 1 end", 0)
        wait_until(lambda: "BUSY" in str(error_text(before.ping)), message="BUSY")
        story = [error_text(before.ping)]
        after = redis.Redis(host="127.0.0.1", port=proc.port, socket_timeout=30)  # connects during the script
        story.append(error_text(after.ping))
        story.append(error_text(lambda: after.execute_command("FUNCTION", "KILL")))
        story.append(error_text(lambda: after.execute_command("SHUTDOWN")))
        story.append(error_text(before.script_kill))
        script.join(10)
        story.append(script.outcome)
        killed = time.monotonic()
        story.append(after.ping())
        assert time.monotonic() - killed < 1.0
        # Commands pipelined behind SCRIPT KILL still get BUSY: the script has not ended.
        script = Background(proc.port, "EVAL", "while true do end", 0)
        wait_until(lambda: "BUSY" in str(error_text(after.ping)), message="BUSY")
        pipe = before.pipeline(transaction=False)
        pipe.script_kill().set("after", "kill").get("after")
        story.append([str(reply) for reply in pipe.execute(raise_on_error=False)])
        script.join(10)
        story.append(script.outcome)
        return story
    finally:
        proc.stop()


def _same_story_as_redis(story, tmp_path, busy):
    """``story`` on redis-server and on distcache over each loop: the same replies."""
    stories = {kind: story(kind, tmp_path / kind) for kind in KINDS
               if kind != "uvloop" or _has_uvloop()}
    reference = stories.pop("redis")
    assert reference[0].startswith(busy)
    for kind, told in stories.items():
        assert told == reference, kind


def test_busy_script_kill_matches_redis(tmp_path):
    _same_story_as_redis(_busy_story, tmp_path, "BUSY Redis is busy running a script.")


def _has_uvloop():
    try:
        import uvloop  # noqa: F401
        return True
    except ImportError:
        return False


def _unkillable_story(kind, tmp_path):
    proc = _start(kind, tmp_path)
    try:
        other = redis.Redis(host="127.0.0.1", port=proc.port, socket_timeout=30)
        script = Background(proc.port, "EVAL", "redis.call('set', 'written', 1) while true do end", 0)
        wait_until(lambda: "BUSY" in str(error_text(other.ping)), message="BUSY")
        story = [error_text(other.script_kill)]
        try:
            other.shutdown(nosave=True)
        except redis.ConnectionError:
            pass
        assert proc.proc.wait(10) is not None
        script.join(10)
        story.append(script.outcome.split(":")[0])
        return story
    finally:
        proc.stop()


@pytest.mark.parametrize("kind", ["asyncio", "uvloop"])
def test_unkillable_script_then_shutdown_nosave(tmp_path, kind):
    reference = _unkillable_story("redis", tmp_path / "redis")
    assert reference[0].startswith("UNKILLABLE Sorry the script already executed write")
    if kind == "uvloop":
        pytest.importorskip("uvloop")
    ours = _unkillable_story(kind, tmp_path / kind)
    assert ours[0] == reference[0]


def test_sigterm_ends_a_script_that_has_not_written(tmp_path):
    # A long deadline: the process must stop because the script was ended, not
    # because shutdown-deadline ran out.
    with distcache_server(tmp_path, "--shutdown-deadline", "60", *THRESHOLD) as proc:
        client = redis.Redis(host="127.0.0.1", port=proc.port, socket_timeout=30)
        script = Background(proc.port, "EVAL", "while true do end", 0)
        wait_until(lambda: "BUSY" in str(error_text(client.ping)), message="BUSY")
        started = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.proc.wait(20) == 0
        assert time.monotonic() - started < 10
        script.join(10)
        assert "Script killed" in script.outcome or "ConnectionError" in script.outcome


#: Holds the loop for 800 ms (below the threshold, so not busy itself): what
#: arrives meanwhile is read in one loop turn once it returns.
_HOLD = ("local t = redis.call('TIME') local start = t[1] * 1000000 + t[2] "
         "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start > 800000 "
         "return {start, t[1] * 1000000 + t[2]}")
_PING = b"*1\r\n$4\r\nPING\r\n"


def _hold_loop(port: int) -> Background:
    """Start the hold; return once the server's loop seems to be in it (a PING goes
    unanswered for 0.2 s: the caller checks the hold's times afterwards)."""
    holder = Background(port, "EVAL", _HOLD, 0)
    deadline = time.monotonic() + 10
    with socket.create_connection(("127.0.0.1", port), timeout=10) as probe:
        while True:
            probe.sendall(_PING)
            if not select.select([probe], [], [], 0.2)[0]:
                return holder
            assert recv_until(probe) == b"+PONG\r\n"
            assert time.monotonic() < deadline, "the hold never started"


def _accept_window_story(kind, tmp_path):
    """Clients that connect in the loop turn where a long script starts (a fresh
    server per try: a try whose connections fell outside the hold, on a stalled
    host, does not count)."""
    for attempt in range(3):
        proc = _start(kind, tmp_path / str(attempt), "--busy-reply-threshold", "1000")
        try:
            story = _accept_window_try(proc.port)
        finally:
            proc.stop()
        if story is not None:
            return story
    pytest.fail("three tries and the connections never fell within the hold")


def _accept_window_try(port):
    runner = socket.create_connection(("127.0.0.1", port), timeout=20)
    runner.sendall(_PING)
    assert recv_until(runner) == b"+PONG\r\n"
    holder = _hold_loop(port)
    # While the loop is held: three clients connect and send a PING, then the runner
    # sends a long script. The loop's next turn accepts the three and starts it.
    before = time.time()
    clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
    for sock in clients:
        sock.sendall(_PING)
    runner.sendall(b"*3\r\n$4\r\nEVAL\r\n$17\r\nwhile 1 do end   \r\n$1\r\n0\r\n")
    sent = time.time()
    holder.join(10)
    held_from, held_to = (t / 1e6 for t in holder.outcome)
    try:
        if not (held_from < before and sent < held_to):
            return None
        story = [recv_until(sock) for sock in clients]  # timed out before the fix
        clients[0].sendall(b"*2\r\n$6\r\nSCRIPT\r\n$4\r\nKILL\r\n")
        story.append(recv_until(clients[0]))
        story.append(recv_until(runner))
        for sock in clients:
            sock.sendall(_PING)
            story.append(recv_until(sock))
        return story
    finally:
        for sock in clients + [runner]:
            sock.close()


def test_clients_accepted_as_a_script_starts_get_busy_like_redis(tmp_path):
    _same_story_as_redis(_accept_window_story, tmp_path, b"-BUSY Redis is busy running a script.")
