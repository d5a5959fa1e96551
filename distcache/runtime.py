"""Per-runtime settings: PyPy's garbage collector parameters for the server.

PyPy reads its ``PYPY_GC_*`` environment variables once, at interpreter start,
so a server that wants a setting must be started with it. ``distcache server``
run from the command line under PyPy re-executes itself once (same pid, same
arguments) with :data:`PYPY_GC_DEFAULTS` added to the environment for the
variables the user did not set; ``distcache cluster`` passes them to its
servers. A user's own value always wins (``PYPY_GC_MAJOR_COLLECT=1.82``
restores PyPy's default). docs/pypy.md has the measurements behind the value.
"""
from __future__ import annotations

import os
import sys
from typing import Dict, List, Mapping, MutableMapping, Optional

PYPY = sys.implementation.name == "pypy"

#: PyPy collects its old generation when it has grown to this factor times what
#: survived the last major collection (PyPy's default: 1.82). Lower keeps fewer
#: dead objects around: more keys in the same RSS under maxmemory.
PYPY_GC_DEFAULTS: Dict[str, str] = {"PYPY_GC_MAJOR_COLLECT": "1.2"}
#: PyPy's own default for PYPY_GC_MAJOR_COLLECT.
PYPY_MAJOR_COLLECT = 1.82


def missing_gc_settings(environ: Mapping[str, str]) -> Dict[str, str]:
    """The defaults of :data:`PYPY_GC_DEFAULTS` that ``environ`` does not set."""
    return {name: value for name, value in PYPY_GC_DEFAULTS.items() if name not in environ}


def apply_gc_defaults(environ: MutableMapping[str, str]) -> bool:
    """Add the missing defaults to ``environ`` (for child processes); True if any was."""
    missing = missing_gc_settings(environ)
    environ.update(missing)
    return bool(missing)


def reexec_argv(argv: List[str], executable: str) -> List[str]:
    """The command line that runs this ``distcache`` invocation again.

    ``argv`` is ``sys.argv``: under ``python -m distcache`` its first item is
    the path of ``__main__.py``, which must be run as a module again."""
    script = argv[0] if argv else ""
    if not script or os.path.basename(script) == "__main__.py":
        return [executable, "-m", "distcache", *argv[1:]]
    return [executable, script, *argv[1:]]


def ensure_gc_settings() -> None:
    """Under PyPy, re-execute the server once with the GC defaults it lacks.

    A no-op on CPython and when the user set every variable, so also in the
    re-executed process. If the exec fails, the server runs on with PyPy's own
    defaults (and major_collect() says so)."""
    missing = missing_gc_settings(os.environ)
    if not PYPY or not missing:
        return
    os.environ.update(missing)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, reexec_argv(sys.argv, sys.executable))
    except OSError:
        for name in missing:
            del os.environ[name]


def major_collect(environ: Optional[Mapping[str, str]] = None) -> float:
    """The PYPY_GC_MAJOR_COLLECT this PyPy process runs with (1.0 on CPython)."""
    if not PYPY:
        return 1.0
    env = os.environ if environ is None else environ
    try:
        return max(1.0, float(env.get("PYPY_GC_MAJOR_COLLECT", PYPY_MAJOR_COLLECT)))
    except ValueError:
        return PYPY_MAJOR_COLLECT


def server_major_collect(environ: Optional[Mapping[str, str]] = None) -> float:
    """The PYPY_GC_MAJOR_COLLECT of a ``distcache server`` started from ``environ``
    (default: this process's) by this interpreter: the user's value or ours."""
    env = os.environ if environ is None else environ
    return major_collect({**PYPY_GC_DEFAULTS, **env})
