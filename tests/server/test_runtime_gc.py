"""PyPy's GC defaults for servers (distcache/runtime.py): who sets them, who wins."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict

import pytest

from distcache import runtime
from servers import distcache_server

VAR = "PYPY_GC_MAJOR_COLLECT"


def _environ(pid: int) -> Dict[str, str]:
    """The environment a process was exec'ed with (after a re-exec: the new one)."""
    with open(f"/proc/{pid}/environ", "rb") as fh:
        items = fh.read().decode().split("\0")
    return dict(item.split("=", 1) for item in items if "=" in item)


def test_missing_settings_leave_the_users_own() -> None:
    assert runtime.missing_gc_settings({}) == runtime.PYPY_GC_DEFAULTS
    assert runtime.missing_gc_settings({VAR: "1.82"}) == {}
    env = {VAR: "1.5"}
    assert not runtime.apply_gc_defaults(env)
    assert env == {VAR: "1.5"}
    env = {}
    assert runtime.apply_gc_defaults(env)
    assert env == runtime.PYPY_GC_DEFAULTS


def test_reexec_argv_runs_the_same_command() -> None:
    main = os.path.join("site", "distcache", "__main__.py")
    assert runtime.reexec_argv([main, "server", "--port", "1"], "/py") == \
        ["/py", "-m", "distcache", "server", "--port", "1"]
    assert runtime.reexec_argv(["/venv/bin/distcache", "server"], "/py") == \
        ["/py", "/venv/bin/distcache", "server"]


def test_factors_per_runtime() -> None:
    if runtime.PYPY:
        assert runtime.major_collect({}) == runtime.PYPY_MAJOR_COLLECT
        assert runtime.major_collect({VAR: "1.5"}) == 1.5
        assert runtime.major_collect({VAR: "junk"}) == runtime.PYPY_MAJOR_COLLECT
        assert runtime.server_major_collect({}) == float(runtime.PYPY_GC_DEFAULTS[VAR])
        assert runtime.server_major_collect({VAR: "1.5"}) == 1.5
    else:  # CPython frees at once: nothing to scale
        assert runtime.major_collect({VAR: "1.5"}) == 1.0
        assert runtime.server_major_collect({}) == 1.0


@pytest.mark.skipif(not os.path.exists("/proc/self/environ"), reason="needs /proc")
@pytest.mark.parametrize("own", [None, "1.5"])
def test_a_server_runs_with_the_defaults_unless_the_user_set_them(tmp_path: Path,
                                                                  own: str) -> None:
    env = {} if own is None else {VAR: own}
    server = distcache_server(tmp_path, env=env)
    if own is None:
        server.env.pop(VAR, None)
    with server:
        got = _environ(server.proc.pid).get(VAR)
    if not runtime.PYPY:
        assert got == own  # CPython: never re-executed, nothing added
    elif own is None:
        assert got == runtime.PYPY_GC_DEFAULTS[VAR]
    else:
        assert got == own
