"""Persistence wired into the server: the log writer, snapshots, recovery, INFO.

* Writes reach :meth:`Persistence.propagate` (a ``keyspace.propagators``
  entry), which only stages them. When a client's read has run,
  :meth:`Persistence.log_read` logs the read's own bytes if they were exactly
  the commands staged, and encodes the staged commands otherwise. One
  callback per event-loop batch (``loop.call_soon``) writes the batch as one
  record.
* ``appendfsync always``: client replies are deferred to that same callback,
  which writes the record, fsyncs once (group commit) and only then sends
  every reply of the batch. ``everysec``: a thread fsyncs once a second.
  ``no``: the OS flushes when it likes.
* Snapshots (SAVE rules, BGSAVE, BGREWRITEAOF) are written by a forked
  child; the cron polls it with ``waitpid(WNOHANG)``. Without ``os.fork``
  (Windows, or ``DISTCACHE_PERSISTENCE_NOFORK=1``) the dataset is captured
  at C speed (references and container copies) and encoded in short slices
  on the event loop.
* Startup loading runs in slices after the server listens; meanwhile clients
  get ``LOADING``.
* While persisting fails, writes and PING are refused with Redis's
  ``MISCONF`` errors (:meth:`Persistence._update_denial`): after a failed
  background save when save rules are set and ``stop-writes-on-bgsave-error``
  is yes, and while writing the log fails.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from ..server import errors
from ..server.replication import history
from . import aof, rdb_snapshot, snapshot
from .aof import LogFile, Manifest
from .background import ForkJob, SlicedJob, _unlink, can_fork, child_setup, fork, run_child
from .propagation import rewire
from .writer import LogWriter
from .loader import RecoveryError, RecoveryPlan, frozen_clock, paths, plan_recovery, run_plan

log = logging.getLogger("distcache.persistence")

SLICE_SECONDS = 0.01
BGSAVE_RETRY_DELAY = 5


class Persistence(LogWriter):
    def __init__(self, server: Any) -> None:
        self.server = server
        self.config = server.config
        self.keyspace = server.keyspace
        self.log: Optional[LogFile] = None
        self.manifest: Optional[Manifest] = None
        self.buf: List[bytes] = []
        self.buf_db = -1
        #: Single commands logged but not yet encoded (see propagate).
        self.staged: List[List[bytes]] = []
        server.keyspace.stage = self.staged  # the dispatcher's shortcut appends here
        self.scheduled = False
        self.unsynced = False
        self.deferred: List[Any] = []
        self.lock = threading.Lock()
        self.fsync_thread: Optional[threading.Thread] = None
        self.fsync_stop = threading.Event()
        self.fsync_always = False
        self.job: Any = None
        self.bgsave_scheduled = False
        self.rewrite_scheduled = False
        self.rewrite_incr: Optional[str] = None
        self.lastsave = int(time.time())
        self.last_bgsave_try = 0.0
        self.dirty_base = 0
        # rdb_status and write_status are properties: a change re-evaluates the
        # write denial (MISCONF).
        self._rdb_status = "ok"
        self.rewrite_status = "ok"
        self._write_status = "ok"
        #: strerror of the last log write error (the AOF MISCONF text).
        self.write_error = ""
        self.closed_incr_size = 0
        self.rewrite_base_size = 0
        self.base_size = 0
        self.load_started = 0.0
        self.load_total = 0
        self.load_done = 0
        self.loading_gen: Any = None
        self.saves = 0
        server.persistence = self
        rewire(server)  # the log's hooks, once its file is open
        server.loading = True
        server.gated = True
        # Nothing expires while loading (as in Redis): replay must meet the keys
        # the logged commands met. Restored in _after_load.
        server.expiry.cycle = _no_expiry
        server.on_started.append(self._on_started)
        server.cron_jobs.append(self._cron)
        server.shutdown_hooks.append(self._on_shutdown)
        server.flushall_hooks.append(self._on_flushall)
        server.info_providers["persistence"].append(self.info)
        server.config_hooks.append(self._on_config)
        server.before_reply_hooks.append(self._fsync_if_always)

    # -- startup ----------------------------------------------------------------

    def _on_started(self, server: Any) -> None:
        plan = plan_recovery(self.config)  # RecoveryError: the server refuses to start
        self.load_started = time.time()
        self.load_total = max(1, plan.total_bytes)
        if plan.snapshot is not None or plan.logs:
            log.info("loading the dataset from %s", plan.describe())
        self.loading_gen = self._load(plan)
        self._load_slice()

    def _load(self, plan: RecoveryPlan) -> Any:
        ks = self.keyspace
        hits, misses, expired = ks.hits, ks.misses, ks.expired_keys
        last_log = time.monotonic()
        keys = 0
        for done, keys in run_plan(plan, self.server):
            self.load_done = done
            now = time.monotonic()
            if now - last_log >= 1.0:
                last_log = now
                elapsed = max(1e-6, time.time() - self.load_started)
                log.info("loading: %d%% (%d keys/commands, %d of %d bytes, %.0f per second)",
                         100 * done // self.load_total, keys, done, self.load_total,
                         keys / elapsed)
            yield
        ks.hits, ks.misses, ks.expired_keys = hits, misses, expired
        self._after_load(plan)
        elapsed = time.time() - self.load_started
        if plan.snapshot is not None or plan.logs:
            log.info("DB loaded from disk: %.3f seconds (%d keys in memory)",
                     elapsed, ks.total_keys())

    def _load_slice(self) -> None:
        gen = self.loading_gen
        if gen is None:
            return
        deadline = time.perf_counter() + SLICE_SECONDS * 2
        try:
            with frozen_clock():
                while time.perf_counter() < deadline:
                    next(gen)
        except StopIteration:
            self.loading_gen = None
            return
        except RecoveryError as exc:  # a damaged file: the server refuses to go on
            log.error("%s", exc)
            self.loading_gen = None
            self.server.exit_code = 1
            self.server.shutdown(save=False)
            return
        except Exception:
            log.exception("loading failed; the server stops")
            self.loading_gen = None
            self.server.shutdown(save=False)
            return
        self.server.loop.call_soon(self._load_slice)

    def _after_load(self, plan: RecoveryPlan) -> None:
        server = self.server
        ks = self.keyspace
        if plan.truncate is not None:
            path, size = plan.truncate
            aof.truncate_file(path, size)
            log.warning("truncated %s to %d bytes (its last good record)", path, size)
        self.dirty_base = ks.dirty
        self.lastsave = int(time.time())
        if self.config["appendonly"]:
            self._open_log(plan)
        server.loading = False
        self._update_denial()  # clears ``gated`` unless the memory limit needs it
        if server.expiry.__dict__.get("cycle") is _no_expiry:
            del server.expiry.cycle

    def _open_log(self, plan: RecoveryPlan) -> None:
        dump_path, aofdir, manifest_path = paths(self.config)
        os.makedirs(aofdir, exist_ok=True)
        manifest = plan.manifest
        if manifest is not None and manifest.incrs:
            path = os.path.join(aofdir, manifest.incrs[-1])
            self.log = LogFile(path, create=False)
            self.closed_incr_size = sum(_size(os.path.join(aofdir, n))
                                        for n in manifest.incrs[:-1])
            self.base_size = _size(os.path.join(aofdir, manifest.base)) if manifest.base else 0
        else:
            seq = (manifest.seq if manifest else 0) + 1
            name = f"{self.config['appendfilename']}.{seq}.incr.aof"
            base = manifest.base if manifest else None
            if plan.snapshot is not None and (manifest is None or base is None):
                # The dataset came from a snapshot: it becomes the log's base.
                ext = "rdb" if plan.snapshot.format == "rdb" else "dcs"
                base = f"{self.config['appendfilename']}.{seq}.base.{ext}"
                _copy_durably(plan.snapshot.path, os.path.join(aofdir, base))
            self.log = LogFile(os.path.join(aofdir, name), create=True)
            manifest = Manifest(base, [name], seq)
            aof.write_manifest(manifest_path, manifest)
            self.closed_incr_size = 0
            self.base_size = _size(os.path.join(aofdir, base)) if base else 0
        self.manifest = manifest
        self.rewrite_base_size = self.aof_size()
        self._attach()

    def _attach(self) -> None:
        if self.propagate not in self.keyspace.propagators:
            self.keyspace.add_propagator(self.propagate)
        self._apply_fsync_mode()

    def _apply_fsync_mode(self) -> None:
        mode = self.config["appendfsync"]
        self.fsync_always = mode == "always" and self.log is not None
        # Replies wait for their batch's record to be written (and, with
        # always, fsynced): a SIGKILL never loses an acknowledged write.
        # (The replication stream may take each read's end too: rewire decides.)
        rewire(self.server)
        if mode == "everysec" and self.log is not None and self.fsync_thread is None:
            self.fsync_stop.clear()
            self.fsync_thread = threading.Thread(target=self._fsync_loop,
                                                 name="distcache-fsync", daemon=True)
            self.fsync_thread.start()

    def aof_size(self) -> int:
        return self.base_size + self.closed_incr_size + (self.log.size if self.log else 0)

    # -- snapshots ----------------------------------------------------------------

    def _flush_for_snapshot(self) -> None:
        """Write the pending batch before a snapshot records its log position.

        If it can't be written (the log's disk is full...), no snapshot: it
        would hold writes that the log, once the retry succeeds, repeats after
        the recorded position, and a restart would apply them twice.
        """
        self.flush_log()
        if self.buf:
            raise OSError("the append only file can't be written: no snapshot until it can")

    def save(self) -> None:
        """SAVE: a synchronous snapshot (raises on failure)."""
        self._flush_for_snapshot()
        dump_path = paths(self.config)[0]
        os.makedirs(os.path.dirname(os.path.abspath(dump_path)), exist_ok=True)
        log_id, offset = self.log_position()
        dirty = self.keyspace.dirty
        repl = history.capture(self.server)
        try:
            if rdb_snapshot.is_rdb_name(dump_path):
                rdb_snapshot.write_rdb(dump_path, self.keyspace.dbs, log_id, offset,
                                       bool(self.config["rdbcompression"]),
                                       checksum=bool(self.config["rdbchecksum"]))
            else:
                snapshot.write_snapshot(dump_path, self.keyspace.dbs, log_id, offset)
        except Exception as exc:
            # As Redis: a failed SAVE leaves rdb_last_bgsave_status (and so the
            # write denial) alone; a successful one clears it.
            log.error("error saving the snapshot %s: %s", dump_path, exc)
            raise
        history.saved(dump_path, repl)
        self._saved(dirty)
        log.info("DB saved on disk")

    def _saved(self, dirty: int) -> None:
        self.dirty_base = dirty
        self.lastsave = int(time.time())
        self.rdb_status = "ok"
        self.saves += 1

    def bgsave(self) -> bool:
        """Start a background snapshot; False if another child is running."""
        if self.job is not None:
            return False
        self.bgsave_scheduled = False
        self.last_bgsave_try = time.time()
        dump_path = paths(self.config)[0]
        os.makedirs(os.path.dirname(os.path.abspath(dump_path)), exist_ok=True)
        try:
            self._flush_for_snapshot()
        except OSError:
            self.rdb_status = "err"  # retried after BGSAVE_RETRY_DELAY, as a failed save
            raise
        log_id, offset = self.log_position()
        dirty = self.keyspace.dirty
        repl = history.capture(self.server)  # the replication offset the data matches

        def done(ok: bool) -> None:
            if ok:
                history.saved(dump_path, repl)
                self._saved(dirty)
                log.info("Background saving terminated with success")
            else:
                self.rdb_status = "err"
                log.warning("Background saving error")

        self.job = self._spawn("rdb", dump_path, log_id, offset, True, done)
        log.info("Background saving started")
        return True

    def _spawn(self, kind: str, path: str, log_id: bytes, offset: int, rename: bool,
               on_done: Callable[[bool], None]) -> Any:
        directory = os.path.dirname(os.path.abspath(path))
        rdb = rdb_snapshot.is_rdb_name(path)
        ext = "rdb" if rdb else "dcs"
        compress = bool(self.config["rdbcompression"])
        checksum = bool(self.config["rdbchecksum"])
        if not can_fork():
            tmp = os.path.join(directory, f"temp-{kind}-{os.getpid()}-{time.time_ns()}.{ext}")
            return SlicedJob(kind, self.server.loop, self.keyspace.dbs, path, tmp, log_id,
                             offset, rename, on_done, compress if rdb else None, checksum)
        parent = os.getpid()
        pid = fork()
        if pid == 0:  # the child: serialize the copy-on-write keyspace and exit
            def work() -> None:
                child_setup()
                tmp = os.path.join(directory, f"temp-{kind}-{os.getpid()}.{ext}")
                if rdb:
                    rdb_snapshot.write_rdb(path, self.keyspace.dbs, log_id, offset, compress,
                                           tmp, rename, lambda: os.getppid() == parent,
                                           checksum)
                    return
                writer = snapshot.SnapshotWriter(path, tmp)
                for chunk in snapshot.iter_chunks(self.keyspace.dbs, log_id, offset):
                    if os.getppid() != parent:  # the server died: do not publish
                        raise SystemExit(2)
                    writer.write(chunk)
                writer.commit(rename)
            run_child(work)
        return ForkJob(kind, pid, os.path.join(directory, f"temp-{kind}-{pid}.{ext}"), on_done)

    # -- log rewrite ----------------------------------------------------------------

    def rewrite(self) -> str:
        """BGREWRITEAOF: 'started', 'scheduled' or 'in progress'."""
        if self.job is not None:
            if self.job.kind == "aof":
                return "in progress"
            self.rewrite_scheduled = True
            return "scheduled"
        self._start_rewrite(fresh=self.log is None)
        return "started"

    def _start_rewrite(self, fresh: bool) -> None:
        """New writes go to a new log; a child writes the base they follow."""
        self.rewrite_scheduled = False
        _, aofdir, manifest_path = paths(self.config)
        os.makedirs(aofdir, exist_ok=True)
        self._flush_for_snapshot()
        manifest = self.manifest or Manifest()
        if fresh:
            old = aof.read_manifest(manifest_path)
            manifest.seq = max(manifest.seq, old.seq if old else 0)
        seq = manifest.seq + 1
        name = f"{self.config['appendfilename']}.{seq}.incr.aof"
        new_log = LogFile(os.path.join(aofdir, name), create=True)
        with self.lock:
            old_log, self.log = self.log, new_log
            if old_log is not None:
                self.closed_incr_size += old_log.size
                old_log.close()
        manifest.seq = seq
        if not fresh:
            manifest.incrs.append(name)
            aof.write_manifest(manifest_path, manifest)
        self.manifest = manifest
        self.rewrite_incr = name
        if fresh:
            self._attach()
        base_name = f"{self.config['appendfilename']}.{seq}.base.dcs"
        base_path = os.path.join(aofdir, base_name)
        self.job = self._spawn("aof", base_path, new_log.log_id, aof.FILE_HEADER_SIZE,
                               False, lambda ok: self._rewrite_done(ok, base_name))
        log.info("Background append only file rewriting started")

    def _rewrite_done(self, ok: bool, base_name: str) -> None:
        _, aofdir, manifest_path = paths(self.config)
        job = self.job
        if not ok:
            self.rewrite_status = "err"
            log.warning("Background append only file rewriting failed")
            return
        os.replace(job.tmp_path, os.path.join(aofdir, base_name))
        snapshot.fsync_dir(aofdir)
        manifest = self.manifest
        assert manifest is not None
        old_files = ([manifest.base] if manifest.base else []) + list(manifest.incrs)
        incrs = manifest.incrs
        keep = incrs[incrs.index(self.rewrite_incr):] if self.rewrite_incr in incrs \
            else [self.rewrite_incr]
        new = Manifest(base_name, keep, manifest.seq)
        aof.write_manifest(manifest_path, new)
        self.manifest = new
        for name in old_files:
            if name and name != base_name and name not in keep:
                _unlink(os.path.join(aofdir, name))
        self.base_size = _size(os.path.join(aofdir, base_name))
        self.closed_incr_size = sum(_size(os.path.join(aofdir, n)) for n in keep[:-1])
        self.rewrite_base_size = self.aof_size()
        self.rewrite_status = "ok"
        log.info("Background AOF rewrite finished successfully")

    # -- cron, shutdown, config -------------------------------------------------------

    def _cron(self) -> None:
        if self.server.loading:
            return
        if (self.buf or self.staged) and not self.scheduled:
            self._write_buffer()
        job = self.job
        if job is not None:
            if job.poll():
                self.job = None
            else:
                return
        config = self.config
        now = time.time()
        if self.rewrite_scheduled:
            self._start_rewrite(fresh=self.log is None)
            return
        if self.bgsave_scheduled:
            self.bgsave()
            return
        changes = self.keyspace.dirty - self.dirty_base
        for seconds, needed in config["save"]:
            if changes >= needed and now - self.lastsave > seconds and \
                    (self.rdb_status == "ok" or now - self.last_bgsave_try > BGSAVE_RETRY_DELAY):
                log.info("%d changes in %d seconds. Saving...", needed, seconds)
                self.bgsave()
                return
        pct = config["auto-aof-rewrite-percentage"]
        if self.log is not None and pct and self.write_status == "ok":
            size = self.aof_size()
            base = self.rewrite_base_size or 1
            if size > config["auto-aof-rewrite-min-size"] and (size - base) * 100 >= pct * base:
                log.info("Starting automatic rewriting of AOF on %d%% growth",
                         (size - base) * 100 // base)
                self._start_rewrite(fresh=False)

    def _kill_job(self) -> None:
        if self.job is not None:
            self.job.kill()
            self.job = None

    def _on_shutdown(self, save: Optional[bool]) -> None:
        if self.server.loading:
            log.warning("shutting down while loading: nothing is saved")
            self.loading_gen = None
            return
        self._kill_job()
        self.flush_log(fsync=True)
        do_save = save if save is not None else bool(self.config["save"])
        if do_save:
            log.info("Saving the final snapshot before exiting")
            self.save()
        self.flush_log(fsync=True)
        self.fsync_stop.set()

    def close(self) -> None:
        """Write and close the log (embedded servers, tests)."""
        self.flush_log()
        with self.lock:
            if self.log is not None:
                self.log.close()
                self.log = None
        self.fsync_stop.set()

    def _on_flushall(self) -> None:
        if self.server.loading or not self.config["save"]:
            return
        self._kill_job()
        try:
            self.save()
        except Exception:
            pass

    def _on_config(self, name: str) -> None:
        if name == "appendfsync":
            self._apply_fsync_mode()
        elif name == "appendonly":
            if self.config["appendonly"] and self.log is None and not self.server.loading:
                self._kill_job()
                self._start_rewrite(fresh=True)
                self.write_status = "ok"  # as Redis: a new log forgets an old write error
            elif not self.config["appendonly"] and self.log is not None:
                if self.job is not None and self.job.kind == "aof":
                    self._kill_job()
                self.close()
                if self.propagate in self.keyspace.propagators:
                    self.keyspace.remove_propagator(self.propagate)
                self._apply_fsync_mode()
        # After any change: save rules, stop-writes-on-bgsave-error and appendonly
        # decide the denial, and the memory limit's hook may have reset ``gated``.
        self._update_denial()

    # -- write denial (MISCONF) --------------------------------------------------------

    @property
    def rdb_status(self) -> str:
        return self._rdb_status

    @rdb_status.setter
    def rdb_status(self, value: str) -> None:
        self._rdb_status = value
        self._update_denial()

    @property
    def write_status(self) -> str:
        return self._write_status

    @write_status.setter
    def write_status(self, value: str) -> None:
        self._write_status = value
        self._update_denial()

    def _update_denial(self) -> None:
        """Refuse writes and PING while persisting fails, as Redis's processCommand.

        The denial is ``server.write_denied`` (the error text), checked by the
        dispatcher's gate, so ``server.gated`` stays set while it lasts (and
        while loading or a memory limit needs the gate too).
        """
        server = self.server
        config = self.config
        denied: Optional[str] = None
        if self._rdb_status == "err" and config["save"] \
                and config["stop-writes-on-bgsave-error"]:
            denied = errors.MISCONF_RDB
        elif self._write_status == "err" and self.log is not None:
            denied = errors.misconf_aof(self.write_error)
        if denied != server.write_denied:
            if denied is None:
                log.warning("persistence works again: writes are accepted")
            else:
                log.warning("refusing writes until persistence works again: %s", denied)
        server.write_denied = denied
        server.gated = bool(server.loading or server.oom_check is not None
                            or denied is not None)

    # -- INFO ------------------------------------------------------------------------

    def info(self) -> Dict[str, Any]:
        job = self.job
        now = time.time()
        fields: Dict[str, Any] = {
            "loading": int(self.server.loading),
            "rdb_changes_since_last_save": self.keyspace.dirty - self.dirty_base,
            "rdb_bgsave_in_progress": int(job is not None and job.kind == "rdb"),
            "rdb_last_save_time": self.lastsave,
            "rdb_last_bgsave_status": self.rdb_status,
            "rdb_saves": self.saves,
            "rdb_current_bgsave_time_sec": int(now - job.started)
            if job is not None and job.kind == "rdb" else -1,
            "aof_enabled": int(self.log is not None),
            "aof_rewrite_in_progress": int(job is not None and job.kind == "aof"),
            "aof_rewrite_scheduled": int(self.rewrite_scheduled),
            "aof_last_bgrewrite_status": self.rewrite_status,
            "aof_last_write_status": self.write_status,
        }
        if self.log is not None:
            fields["aof_current_size"] = self.aof_size()
            fields["aof_base_size"] = self.rewrite_base_size
            fields["aof_buffer_length"] = sum(map(len, self.buf))
        if self.server.loading:
            elapsed = max(1e-6, now - self.load_started) if self.load_started else 0
            perc = 100.0 * self.load_done / max(1, self.load_total)
            fields.update({
                "loading_start_time": int(self.load_started),
                "loading_total_bytes": self.load_total,
                "loading_loaded_bytes": self.load_done,
                "loading_loaded_perc": f"{perc:.2f}",
                "loading_eta_seconds": int(elapsed * (100 - perc) / perc) if perc > 0 else 1,
            })
        return fields


def _no_expiry() -> bool:
    return False


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _copy_durably(src: str, dst: str) -> None:
    tmp = dst + ".tmp"
    shutil.copyfile(src, tmp)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dst)
    snapshot.fsync_dir(os.path.dirname(os.path.abspath(dst)))


def install(server: Any) -> Persistence:
    """Attach persistence to a CacheServer (called from its constructor)."""
    return Persistence(server)
