"""Split the suite into N shards by test file, balanced by measured duration.

``pytest --shard K/N`` runs shard K (0-based) of the test files; ``--shard-keep
PREFIX`` (repeatable) names files that every shard runs. CI runs PyPy's shard
``(git rev-list --count HEAD) mod N``, so N consecutive CI runs cover the whole
suite (docs/pypy.md). The split depends only on the file list and
tests/durations.json, never on the order of collection, so a file stays in its
shard from run to run until files are added or the durations are refreshed::

    pypy3 -m pytest -n 2 -p no:cacheprovider --junitxml=/tmp/all.xml
    python tests/sharding.py /tmp/all.xml > tests/durations.json
"""
from __future__ import annotations

import json
import statistics
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DURATIONS = TESTS / "durations.json"
#: A file not in durations.json (a new test file) counts as the median file there,
#: or as this many seconds without durations.
UNKNOWN_SECONDS = 10.0


def parse_shard(text: str) -> Tuple[int, int]:
    """``"K/N"`` -> (K, N) with 0 <= K < N; ValueError otherwise."""
    k_text, sep, n_text = text.partition("/")
    if not sep:
        raise ValueError(f"--shard takes K/N (e.g. 2/5), not {text!r}")
    k, n = int(k_text), int(n_text)
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"--shard {text}: need 0 <= K < N")
    return k, n


def test_files(root: Path = ROOT) -> List[str]:
    """Every test file under tests/, as a path relative to ``root`` with '/'."""
    return sorted(p.relative_to(root).as_posix() for p in (root / "tests").rglob("test_*.py"))


def load_durations(path: Path = DURATIONS) -> Dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError):
        return {}


def split(files: Iterable[str], n: int, durations: Dict[str, float]) -> List[List[str]]:
    """``files`` in ``n`` bins of near-equal total duration: longest first, each
    to the lightest bin so far (ties: the lower bin). Deterministic."""
    bins: List[List[str]] = [[] for _ in range(n)]
    load = [0.0] * n
    unknown = statistics.median(durations.values()) if durations else UNKNOWN_SECONDS
    weighted = sorted(((durations.get(f, unknown), f) for f in set(files)),
                      key=lambda item: (-item[0], item[1]))
    for seconds, name in weighted:
        i = min(range(n), key=lambda j: (load[j], j))
        bins[i].append(name)
        load[i] += seconds
    return [sorted(b) for b in bins]


def kept(name: str, keep: Sequence[str]) -> bool:
    return any(name == p or name.startswith(p.rstrip("/") + "/") for p in keep)


def shard_files(k: int, n: int, keep: Sequence[str] = (), files: Sequence[str] = (),
                durations: Optional[Dict[str, float]] = None) -> Tuple[List[str], List[str]]:
    """(files every shard runs, shard ``k``'s files of the rest)."""
    files = list(files) or test_files()
    durations = load_durations() if durations is None else durations
    always = [f for f in files if kept(f, keep)]
    rest = [f for f in files if not kept(f, keep)]
    return always, split(rest, n, durations)[k]


def durations_from_junit(paths: Iterable[str]) -> Dict[str, float]:
    """Seconds per test file (setup, call and teardown) from pytest's --junitxml."""
    totals: Dict[str, float] = {}
    for path in paths:
        for case in ET.parse(path).getroot().iter("testcase"):
            # classname is tests.area.test_x[.Class]: find the module part.
            parts = case.get("classname", "").split(".")
            while parts and not parts[-1].startswith("test_"):
                parts.pop()
            if not parts:
                continue
            name = "/".join(parts) + ".py"
            totals[name] = totals.get(name, 0.0) + float(case.get("time") or 0)
    return {k: round(v, 1) for k, v in sorted(totals.items())}


if __name__ == "__main__":
    json.dump(durations_from_junit(sys.argv[1:]), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
