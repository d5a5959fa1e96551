"""PyPy only: the GC settings ``distcache server`` starts with (server/pypy_gc.py
says why), applied by re-executing the process before anything heavy is imported.

Outside ``distcache.server`` on purpose: importing that package costs PyPy about
0.6 s of CPU, which the re-executed process would pay a second time.
"""
from __future__ import annotations

import os
import sys
from typing import List

PYPY = sys.implementation.name == "pypy"
#: The GC settings distcache server starts PyPy with, unless set in the environment.
GC_DEFAULTS = {"PYPY_GC_NURSERY": "8MB"}


def reexec_with_gc_defaults(argv: List[str]) -> None:
    """On PyPy, re-execute this ``distcache`` command with ``GC_DEFAULTS`` in the
    environment when any is unset (PyPy reads them only at start); a no-op on
    CPython and when all are set. ``argv`` is sys.argv[1:]."""
    missing = {k: v for k, v in GC_DEFAULTS.items() if k not in os.environ}
    if not PYPY or not missing:
        return
    os.environ.update(missing)
    main = os.path.abspath(sys.argv[0])
    package = os.path.dirname(os.path.abspath(__file__))
    if main == os.path.join(package, "__main__.py"):  # python -m distcache
        command = [sys.executable, "-m", "distcache", *argv]
    else:  # the distcache script
        command = [sys.executable, sys.argv[0], *argv]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, command)
    except OSError as exc:  # run on with PyPy's own defaults
        import logging  # only here: before the exec it is ~20 ms of PyPy's CPU, paid twice
        logging.getLogger(__name__).warning("could not re-execute with %s: %s", missing, exc)
