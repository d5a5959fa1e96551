"""Writes refused while persisting fails, as Redis 7.0's MISCONF errors.

* ``stop-writes-on-bgsave-error yes`` with save rules: after a failed
  background save, write commands and PING are refused until a save succeeds
  (or the option / the save rules are turned off); reads still work.
* A log write error refuses them until a write succeeds.

A background save is made to fail by putting a directory where the snapshot
is renamed to (rename(2) then fails with EISDIR, even for root); a log write
error by lowering the server's RLIMIT_FSIZE (Python ignores SIGXFSZ, so the
write fails with EFBIG). The expected replies are Redis's: the same
transcript is checked against redis-server when it is installed.
"""
from __future__ import annotations

import shutil
import socket
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest
import redis

from persistence_helpers import client, crash_restart, incr_files, info, poll, start
from servers import REDIS_SERVER, redis_server

from distcache.protocol import NOT_ENOUGH, ReplyParser

MISCONF = (b"-MISCONF Redis is configured to save RDB snapshots, but it's currently unable to "
           b"persist to disk. Commands that may modify the data set are disabled, because this "
           b"instance is configured to report errors during writes if RDB snapshotting fails "
           b"(stop-writes-on-bgsave-error option). Please check the Redis logs for details "
           b"about the RDB error.\r\n")
EXECABORT_MISCONF = b"-EXECABORT Transaction discarded because of: " + MISCONF[1:]
EXECABORT = b"-EXECABORT Transaction discarded because of previous errors.\r\n"
PUBSUB_GET = (b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
              b"QUIT / RESET are allowed in this context\r\n")
OK = b"+OK\r\n"
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs prlimit (Linux)")
QUEUED = b"+QUEUED\r\n"


class Wire:
    """A raw connection: send one command, get its reply's exact bytes."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)

    def __call__(self, *args: Any) -> bytes:
        parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        self.sock.sendall(b"*%d\r\n" % len(parts) +
                          b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
        parser = ReplyParser()
        data = b""
        while True:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk
            parser.feed(chunk)
            if parser.get() is not NOT_ENOUGH:
                return data

    def close(self) -> None:
        self.sock.close()


def _block_saves(dump: Path) -> None:
    if dump.is_dir():
        return
    if dump.exists():
        dump.unlink()
    dump.mkdir(parents=True)


def _allow_saves(dump: Path) -> None:
    if dump.is_dir():
        shutil.rmtree(dump)


def _bgsave(ctl: redis.Redis, dump: Path, ok: bool) -> None:
    """A background save that fails (``ok`` False) or succeeds; waits for its end."""
    (_allow_saves if ok else _block_saves)(dump)
    saves = info(ctl).get("rdb_saves")
    ctl.bgsave()
    want = "ok" if ok else "err"

    def done() -> bool:
        fields = info(ctl)
        if fields["rdb_bgsave_in_progress"] or fields["rdb_last_bgsave_status"] != want:
            return False
        return not ok or saves is None or fields["rdb_saves"] > saves
    poll(done, timeout=30, what=f"a background save ending with {want}")


def _transcript(port: int, dump: Path) -> List[Tuple[str, bytes]]:
    """The replies to a scripted session (the same for Redis and distcache)."""
    ctl = redis.Redis(port=port, socket_timeout=20, decode_responses=True)
    w = Wire(port)
    out: List[Tuple[str, bytes]] = []

    def say(*args: Any) -> None:
        out.append((" ".join(map(str, args)), w(*args)))
    try:
        say("SET", "a", "1")
        _bgsave(ctl, dump, ok=False)
        for cmd in (("SET", "b", "1"), ("PING",), ("PING", "hi"), ("INCR", "n"), ("DEL", "a"),
                    ("GET", "a"), ("EXISTS", "a", "b"), ("ECHO", "x")):
            say(*cmd)
        # Inside MULTI a write or PING is refused, not queued; EXEC then aborts.
        for cmd in (("MULTI",), ("GET", "a"), ("SET", "q", "1"), ("PING",), ("EXEC",)):
            say(*cmd)
        # A write queued before the failure: EXEC is refused and the transaction discarded.
        _bgsave(ctl, dump, ok=True)
        say("MULTI")
        say("INCR", "n")
        _bgsave(ctl, dump, ok=False)
        say("EXEC")
        say("GET", "n")
        # Reads and PING queued before the failure: EXEC runs them (PING included).
        _bgsave(ctl, dump, ok=True)
        say("MULTI")
        say("GET", "a")
        say("PING")
        _bgsave(ctl, dump, ok=False)
        say("EXEC")
        # CONFIG SET lifts the denial while it is set; the status stays err.
        ctl.config_set("stop-writes-on-bgsave-error", "no")
        say("SET", "c", "1")
        ctl.config_set("stop-writes-on-bgsave-error", "yes")
        say("SET", "c", "2")
        ctl.config_set("save", "")
        say("SET", "c", "3")
        ctl.config_set("save", "3600 1")
        say("SET", "c", "4")
        assert info(ctl)["rdb_last_bgsave_status"] == "err"
        # A subscribed RESP2 client: PING and writes get MISCONF before the pub/sub error.
        sub = Wire(port)
        try:
            sub("SUBSCRIBE", "ch")
            for cmd in (("PING",), ("SET", "x", "1"), ("GET", "x")):
                out.append((" ".join(cmd), sub(*cmd)))
        finally:
            sub.close()
        # A successful save lifts it.
        _bgsave(ctl, dump, ok=True)
        say("SET", "d", "1")
        say("PING")
    finally:
        w.close()
        ctl.close()
    return out


EXPECTED = [
    ("SET a 1", OK),
    ("SET b 1", MISCONF), ("PING", MISCONF), ("PING hi", MISCONF), ("INCR n", MISCONF),
    ("DEL a", MISCONF), ("GET a", b"$1\r\n1\r\n"), ("EXISTS a b", b":1\r\n"),
    ("ECHO x", b"$1\r\nx\r\n"),
    ("MULTI", OK), ("GET a", QUEUED), ("SET q 1", MISCONF), ("PING", MISCONF),
    ("EXEC", EXECABORT),
    ("MULTI", OK), ("INCR n", QUEUED), ("EXEC", EXECABORT_MISCONF), ("GET n", b"$-1\r\n"),
    ("MULTI", OK), ("GET a", QUEUED), ("PING", QUEUED), ("EXEC", b"*2\r\n$1\r\n1\r\n+PONG\r\n"),
    ("SET c 1", OK), ("SET c 2", MISCONF), ("SET c 3", OK), ("SET c 4", MISCONF),
    ("PING", MISCONF), ("SET x 1", MISCONF), ("GET x", PUBSUB_GET),
    ("SET d 1", OK), ("PING", b"+PONG\r\n"),
]


def _assert_transcript(got: List[Tuple[str, bytes]]) -> None:
    assert [cmd for cmd, _ in got] == [cmd for cmd, _ in EXPECTED]
    for (cmd, reply), (_, want) in zip(got, EXPECTED):
        assert reply == want, cmd


@pytest.mark.parametrize("nofork", [False, True])
def test_failed_bgsave_refuses_writes_and_ping(tmp_path, nofork):
    env = {"DISTCACHE_PERSISTENCE_NOFORK": "1"} if nofork else None
    proc = start(tmp_path, "--save", "3600 1", env=env)
    try:
        _assert_transcript(_transcript(proc.port, tmp_path / "data" / "dump.dcs"))
        assert "refusing writes" in proc.log()
    finally:
        proc.stop()


@pytest.mark.skipif(not REDIS_SERVER, reason="redis-server is not installed")
def test_redis_gives_the_same_replies(tmp_path):
    with redis_server(tmp_path, "--save", "3600 1") as proc:
        ctl = redis.Redis(port=proc.port, decode_responses=True)
        assert ctl.config_get("save")["save"] == "3600 1"
        ctl.close()
        _assert_transcript(_transcript(proc.port, tmp_path / "dump.rdb"))


def test_failed_save_command_does_not_refuse_writes(tmp_path):
    """As Redis: a failed SAVE leaves rdb_last_bgsave_status alone; a good one clears it."""
    proc = start(tmp_path, "--save", "3600 1", "--appendonly", "no")
    dump = tmp_path / "data" / "dump.dcs"
    try:
        r = client(proc)
        r.set("a", 1)
        _block_saves(dump)
        with pytest.raises(redis.ResponseError):
            r.save()
        assert info(r)["rdb_last_bgsave_status"] == "ok"
        assert r.set("a", 2) and r.ping()
        _bgsave(r, dump, ok=False)
        with pytest.raises(redis.ResponseError, match="^MISCONF Redis is configured"):
            r.set("a", 3)
        _allow_saves(dump)
        assert r.save()
        assert info(r)["rdb_last_bgsave_status"] == "ok"
        assert r.set("a", 4) and r.ping() and r.get("a") == b"4"
    finally:
        proc.stop()


def test_no_save_rules_no_denial(tmp_path):
    """Without save rules a failed BGSAVE refuses nothing (Redis: saveparamslen > 0)."""
    proc = start(tmp_path, "--save", "", "--appendonly", "no")
    dump = tmp_path / "data" / "dump.dcs"
    try:
        r = client(proc)
        _bgsave(r, dump, ok=False)
        assert r.set("a", 1) and r.ping()
        r.config_set("save", "100 1")
        with pytest.raises(redis.ResponseError, match="^MISCONF Redis is configured"):
            r.set("a", 2)
        r.config_set("save", "")
        assert r.set("a", 3)
    finally:
        proc.stop()


def test_denial_outlives_memory_limit_changes(tmp_path):
    """The memory limit also uses the dispatcher's gate: turning it off (or on)
    while writes are refused keeps them refused, and lifting the denial keeps
    the memory limit working."""
    proc = start(tmp_path, "--save", "3600 1", "--maxmemory", "100mb")
    dump = tmp_path / "data" / "dump.dcs"
    try:
        r = client(proc)
        r.set("a", 1)
        _bgsave(r, dump, ok=False)
        for value in ("0", "200mb", "0"):
            r.config_set("maxmemory", value)
            with pytest.raises(redis.ResponseError, match="^MISCONF"):
                r.set("a", 2)
            with pytest.raises(redis.ResponseError, match="^MISCONF"):
                r.ping()
        _bgsave(r, dump, ok=True)
        assert r.set("a", 3) and r.ping()
        r.config_set("maxmemory", "2mb")  # the memory limit still applies
        with pytest.raises(redis.ResponseError, match="used memory > 'maxmemory'"):
            for i in range(5000):
                r.set(f"k{i}", b"x" * 1000)
        r.config_set("maxmemory", "0")
        assert r.set("b", 1) and r.ping() and r.get("a") == b"3"
    finally:
        proc.stop()


@contextmanager
def _log_writes_failing(tmp_path: Path, proc: Any, r: redis.Redis) -> Iterator[None]:
    """Lower the server's file size limit to just above the log, write past it."""
    import resource
    pid = proc.proc.pid
    old = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    size = sum(p.stat().st_size for p in incr_files(tmp_path))
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (size + 4096, old[1]))
    try:
        # The reply follows the (failed) write, as in Redis with everysec.
        assert r.set("big", b"x" * 65536)
        yield
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, old)


def _accepted(r: redis.Redis) -> bool:
    try:
        r.set("probe", 1)
    except redis.ResponseError:
        return False
    return True


@LINUX
def test_log_write_error_refuses_writes_until_a_write_succeeds(tmp_path):
    proc = start(tmp_path, "--save", "")
    try:
        r = client(proc)
        r.set("a", 1)
        with _log_writes_failing(tmp_path, proc, r):
            assert info(r)["aof_last_write_status"] == "err"
            text = "MISCONF Errors writing to the AOF file: File too large"
            with pytest.raises(redis.ResponseError) as exc:
                r.set("b", 1)
            assert str(exc.value) == text
            with pytest.raises(redis.ResponseError) as exc:
                r.ping()
            assert str(exc.value) == text
            assert r.get("a") == b"1" and len(r.get("big")) == 65536
            # Inside MULTI too.
            pipe = r.pipeline(transaction=True)
            pipe.get("a").incr("n")
            with pytest.raises(redis.ResponseError):
                pipe.execute()
        # The cron retries the pending record; once written, writes are accepted.
        poll(lambda: _accepted(r), timeout=20, what="writes accepted again")
        assert info(r)["aof_last_write_status"] == "ok"
        assert r.ping()
        assert "log write error recovered" in proc.log()
        # Nothing acknowledged was lost: the retried record made it to the log.
        proc = crash_restart(tmp_path, proc)
        assert len(client(proc).get("big")) == 65536
    finally:
        proc.stop()


@LINUX
def test_log_write_error_forgotten_when_the_log_is_turned_off(tmp_path):
    """appendonly no ends a log write error's denial (Redis: aof_state off), and a
    new log starts without the old error."""
    proc = start(tmp_path, "--save", "")
    try:
        r = client(proc)
        with _log_writes_failing(tmp_path, proc, r):
            with pytest.raises(redis.ResponseError, match="^MISCONF Errors writing"):
                r.set("b", 1)
            r.config_set("appendonly", "no")
            assert r.set("b", 1) and r.ping()
            assert info(r)["aof_last_write_status"] == "err"  # as Redis, until the log restarts
        r.config_set("appendonly", "yes")
        assert r.set("c", 1) and r.ping()
        poll(lambda: not info(r)["aof_rewrite_in_progress"], what="the rewrite to end")
        assert info(r)["aof_last_write_status"] == "ok"
    finally:
        proc.stop()


@LINUX
def test_no_snapshot_while_the_log_cannot_be_written(tmp_path):
    """A snapshot taken while a log record is pending would also be repeated by
    the log once the retry succeeds: a restart would apply INCR twice."""
    proc = start(tmp_path, "--save", "")
    try:
        r = client(proc)
        r.set("n", 1)
        with _log_writes_failing(tmp_path, proc, r):
            with pytest.raises(redis.ResponseError):
                r.incr("n")  # refused (MISCONF): the pending record is "big"
            with pytest.raises(redis.ResponseError, match="Failed to save"):
                r.save()
            r.bgsave()
            poll(lambda: info(r)["rdb_last_bgsave_status"] == "err", what="BGSAVE refused")
            r.bgrewriteaof()
            poll(lambda: info(r)["aof_last_bgrewrite_status"] == "err",
                 what="BGREWRITEAOF refused")
        poll(lambda: _accepted(r), timeout=20, what="writes accepted again")
        assert r.incr("n") == 2
        proc = crash_restart(tmp_path, proc)
        r = client(proc)
        assert r.get("n") == b"2" and len(r.get("big")) == 65536
    finally:
        proc.stop()
