"""Torn logs load as an exact prefix; corruption refuses startup until check-log --fix."""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from persistence_helpers import (check_log, client, incr_files, start,
                                 start_expecting_failure)

from distcache.config import build_config
from distcache.persistence import aof
from distcache.persistence.loader import RecoveryError, load_into
from distcache.server.app import CacheServer

N = 60  # SET + INCR pairs: 120 records


def _make_log(tmp_path: Path) -> Path:
    """A data dir whose log holds N x (SET k<i> <i>, INCR ctr), one record each."""
    proc = start(tmp_path, "--save", "", "--appendfsync", "no")
    r = client(proc)
    for i in range(N):
        r.set(f"k{i}", i)
        r.incr("ctr")
    proc.kill()
    return tmp_path / "data"


def _load(data_dir: Path, **overrides):
    config = build_config(["--dir", str(data_dir), "--save", ""], environ={},
                          overrides=overrides)
    server = CacheServer(config=config)
    load_into(server, config)
    return server.keyspace.dbs[0].data


def _expected(records: int) -> dict:
    data = {b"k%d" % i: b"%d" % i for i in range((records + 1) // 2)}
    if records // 2:
        data[b"ctr"] = b"%d" % (records // 2)
    return data


def test_truncation_at_200_offsets_loads_exact_prefix(tmp_path):
    data_dir = _make_log(tmp_path)
    log_path = incr_files(tmp_path)[0]
    full = log_path.read_bytes()
    scan = aof.scan_bytes(full)
    assert scan.torn is None and scan.corrupt is None and len(scan.records) == 2 * N
    ends = [end for _, end in scan.records]
    rng = random.Random(1234)
    offsets = sorted({rng.randrange(0, len(full) + 1) for _ in range(400)})[:200]
    offsets[:3] = [0, 5, aof.FILE_HEADER_SIZE]
    work = tmp_path / "work"
    shutil.copytree(data_dir, work)
    wlog = work / "appendonlydir" / log_path.name
    for off in offsets:  # the in-process loader reads, and never changes, the files
        wlog.write_bytes(full[:off])
        complete = sum(1 for e in ends if e <= off)
        assert _load(work) == _expected(complete), off


def test_truncated_log_starts_real_server_and_keeps_appending(tmp_path):
    data_dir = _make_log(tmp_path)
    log_path = incr_files(tmp_path)[0]
    full = log_path.read_bytes()
    ends = [end for _, end in aof.scan_bytes(full).records]
    rng = random.Random(99)
    for off in [rng.randrange(aof.FILE_HEADER_SIZE, len(full)), 3]:
        log_path.write_bytes(full[:off])
        complete = sum(1 for e in ends if e <= off)
        proc = start(tmp_path, "--save", "")
        r = client(proc)
        got = {k: r.get(k) for k in r.keys("*")}
        assert got == _expected(complete)
        assert "torn" in proc.log() or "cut short" in proc.log() or off == 3
        r.set("after", "repair")
        proc.kill()
        proc = start(tmp_path, "--save", "")
        assert client(proc).get("after") == b"repair"
        proc.stop()


def test_truncated_log_refused_when_aof_load_truncated_no(tmp_path):
    _make_log(tmp_path)
    log_path = incr_files(tmp_path)[0]
    full = log_path.read_bytes()
    log_path.write_bytes(full[:-3])
    out = start_expecting_failure(tmp_path, "--save", "", "--aof-load-truncated", "no")
    assert "aof-load-truncated is no" in out
    with pytest.raises(RecoveryError):
        _load(tmp_path / "data", **{"aof-load-truncated": "no"})


@pytest.mark.parametrize("where", ["payload", "length"])
def test_corruption_refuses_start_then_check_log_fixes(tmp_path, where):
    _make_log(tmp_path)
    log_path = incr_files(tmp_path)[0]
    full = bytearray(log_path.read_bytes())
    scan = aof.scan_bytes(bytes(full))
    start_, end = scan.records[len(scan.records) // 2]
    record_offset = start_ - aof.REC_HEADER_SIZE
    pos = (start_ + end) // 2 if where == "payload" else record_offset + 2
    full[pos] ^= 0x20
    log_path.write_bytes(bytes(full))

    out = start_expecting_failure(tmp_path, "--save", "")
    assert f"byte offset {record_offset}" in out
    assert "check-log" in out and str(log_path) in out

    report = check_log(log_path)
    assert report.returncode == 1
    assert f"byte offset {record_offset}" in report.stdout

    fixed = check_log(log_path, "--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert log_path.stat().st_size == record_offset
    assert check_log(log_path).returncode == 0

    proc = start(tmp_path, "--save", "")
    r = client(proc)
    complete = len(scan.records) // 2
    assert {k: r.get(k) for k in r.keys("*")} == _expected(complete)
    proc.stop()


def test_check_log_on_manifest_and_snapshot(tmp_path):
    proc = start(tmp_path, "--save", "")
    r = client(proc)
    r.set("a", "b")
    r.save()
    r.bgrewriteaof()
    from persistence_helpers import wait_child_done
    wait_child_done(r)
    proc.stop()
    manifest = tmp_path / "data" / "appendonlydir" / "appendonly.aof.manifest"
    res = check_log(manifest)
    assert res.returncode == 0 and "snapshot OK" in res.stdout
    dump = tmp_path / "data" / "dump.dcs"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 1
    dump.write_bytes(bytes(data))
    bad = check_log(dump)
    assert bad.returncode == 1 and "checksum" in bad.stdout
