"""--shard K/N: every test file in exactly one shard, balanced, the kept ones in all."""
from __future__ import annotations

import subprocess
import sys

import pytest

import sharding


def test_shards_partition_the_files_and_balance_them():
    files = [f"tests/a/test_{i}.py" for i in range(40)]
    durations = {f: float(1 + (i * 7) % 23) for i, f in enumerate(files)}
    bins = sharding.split(files, 4, durations)
    assert sorted(f for b in bins for f in b) == sorted(files)
    loads = [sum(durations[f] for f in b) for b in bins]
    assert max(loads) - min(loads) <= max(durations.values())
    assert sharding.split(reversed(files), 4, durations) == bins  # order does not matter


def test_kept_files_run_in_every_shard():
    files = ["tests/p/test_a.py", "tests/p/test_b.py", "tests/q/test_c.py",
             "tests/q/test_d.py", "tests/pp/test_e.py"]
    seen = []
    for k in range(3):
        always, mine = sharding.shard_files(k, 3, ["tests/p/", "tests/q/test_c.py"],
                                            files, {})
        assert always == ["tests/p/test_a.py", "tests/p/test_b.py", "tests/q/test_c.py"]
        seen += mine
    assert sorted(seen) == ["tests/pp/test_e.py", "tests/q/test_d.py"]


@pytest.mark.parametrize("bad", ["1", "4/4", "-1/3", "a/b", "0/0"])
def test_bad_shard_is_refused(bad):
    with pytest.raises(ValueError):
        sharding.parse_shard(bad)


def test_durations_from_junit(tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text('<testsuites><testsuite>'
                   '<testcase classname="tests.a.test_x" name="t1" time="1.5"/>'
                   '<testcase classname="tests.a.test_x.TestK" name="t2" time="2"/>'
                   '<testcase classname="tests.b.test_y" name="t3" time="0.25"/>'
                   '</testsuite></testsuites>')
    assert sharding.durations_from_junit([str(xml)]) == {"tests/a/test_x.py": 3.5,
                                                         "tests/b/test_y.py": 0.2}


def _collected(*args):
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "--co", "-p", "no:cacheprovider",
                          "--shard", "1/5", "--shard-keep", "tests/test_sharding.py", *args,
                          "tests/test_sharding.py", "tests/protocol", "tests/types"],
                         cwd=sharding.ROOT, capture_output=True, text=True, timeout=600).stdout
    return {line.split("::")[0] for line in out.splitlines() if "::" in line}


def test_pytest_runs_only_its_shard():
    """Collection under --shard: the shard's files and the kept ones, nothing else."""
    always, mine = sharding.shard_files(1, 5, ["tests/test_sharding.py"])
    files = _collected()
    assert files and files <= set(always) | set(mine)
    assert "tests/test_sharding.py" in files


def test_shard_rest_only_leaves_out_the_kept_files():
    """CI's second shard in a run: the same split, without the files the first had."""
    _, mine = sharding.shard_files(1, 5, ["tests/test_sharding.py"])
    files = _collected("--shard-rest-only")
    assert files and files <= set(mine)
    assert "tests/test_sharding.py" not in files
