"""Lua scripting: a room of its own (Redis's script_lua.c and eval.c).

``lua.py`` holds the Lua runtime (lupa's Lua 5.1), the sandbox and the
conversions between Lua values and replies; ``eval.py`` holds the script
cache and runs one script for a client. The command handlers
(server/commands/scripting.py) only reach the engine through
:func:`engine`, so no Lua object ever reaches the rest of the server.

lupa is optional (``pip install 'distcache[lua]'``): without it the server
runs as before and the scripting commands answer :data:`MISSING`.
"""
from __future__ import annotations

from typing import Any, Optional

from ..errors import CommandError

NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
MISSING = ("ERR Lua scripting is not available: install the 'lupa' package "
           "(pip install 'distcache[lua]')")

try:  # lupa is an optional extra
    import lupa.lua51 as _lupa  # noqa: F401
    AVAILABLE = True
except ImportError:  # pragma: no cover - depends on the environment
    AVAILABLE = False


def engine(server: Any, create: bool = True) -> Optional[Any]:
    """The server's script engine, made on first use; CommandError without lupa."""
    eng = server.__dict__.get("_script_engine")
    if eng is None and create:
        if not AVAILABLE:
            raise CommandError(MISSING)
        from .eval import ScriptEngine
        eng = server.__dict__["_script_engine"] = ScriptEngine(server)
    return eng
