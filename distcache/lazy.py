"""Modules imported on first use: start-up pays only for what a run needs."""
from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """Module ``name``, executed on its first attribute access instead of now.

    For modules whose import builds big tables (geo lookup tables...) that most
    runs never touch. Afterwards it is a plain module (importlib's LazyLoader
    restores the class), so hot code reads its attributes at full speed. Not for
    modules imported with ``from name import x`` elsewhere at import time (that
    executes them). The first access should come from one thread at a time (the
    event loop's): LazyLoader is not thread-safe before Python 3.12.
    """
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module
