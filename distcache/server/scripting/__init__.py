"""Lua scripting: a room of its own (Redis's script_lua.c and eval.c).

``lua.py`` holds the Lua runtime (lupa's Lua 5.1), ``lua_bootstrap.py`` its
sandbox and ``redis`` table (in Lua), ``replies.py`` the conversion of a
script's values into replies; ``eval.py`` holds the script
cache and runs one script for a client. The command handlers
(server/commands/scripting.py) only reach the engine through
:func:`engine`, so no Lua object ever reaches the rest of the server.

lupa is optional (``pip install 'distcache[lua]'``): without it the server
runs as before and the scripting commands answer :data:`MISSING`.
"""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

from ..errors import CommandError

NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
MISSING = ("ERR Lua scripting is not available: install the 'lupa' package "
           "(pip install 'distcache[lua]')")

_available: Optional[bool] = None


def available() -> bool:
    """Whether lupa (an optional extra) imports; tried by the first script, not at
    start-up."""
    global _available
    if _available is None:
        try:
            from lupa import lua51
            _available = lua51 is not None
        except ImportError:  # pragma: no cover - depends on the environment
            _available = False
    return _available


def engine(server: Any, create: bool = True) -> Optional[Any]:
    """The server's script engine, made on first use; CommandError without lupa."""
    eng = server.__dict__.get("_script_engine")
    if eng is None and create:
        if not available():
            raise CommandError(MISSING)
        from .eval import ScriptEngine
        eng = server.__dict__["_script_engine"] = ScriptEngine(server)
    return eng


def split_keys(args: List[bytes], bad_count: str) -> Tuple[List[bytes], List[bytes]]:
    """EVAL's and FCALL's keys and arguments (``args``: the whole command)."""
    try:
        numkeys = int(args[2])
    except ValueError:
        raise CommandError(bad_count) from None
    if b"%d" % numkeys != args[2] or not -(1 << 63) <= numkeys < 1 << 63:
        raise CommandError(bad_count)  # as string2ll: no sign +, spaces or leading zeros
    if numkeys > len(args) - 3:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise CommandError("ERR Number of keys can't be negative")
    return args[3:3 + numkeys], args[3 + numkeys:]


def install(server: Any) -> None:
    """INFO memory's script fields (Redis's names), zero until the first script."""
    def info() -> dict:
        eng = engine(server, create=False)
        lua = eng.runtime.memory() if eng is not None else 0
        scripts = eng.cache_bytes if eng is not None else 0
        count = len(eng.scripts) if eng is not None else 0
        store = eng.functions if eng is not None else None
        vm_functions = store.memory() if store is not None else 0
        codes = store.code_bytes() if store is not None else 0
        return {"used_memory_lua": lua, "used_memory_vm_eval": lua,
                "used_memory_lua_human": _human(lua), "used_memory_scripts_eval": scripts,
                "number_of_cached_scripts": count,
                "number_of_functions": len(store.functions) if store is not None else 0,
                "number_of_libraries": len(store.libraries) if store is not None else 0,
                "used_memory_vm_functions": vm_functions,
                "used_memory_vm_total": lua + vm_functions,
                "used_memory_vm_total_human": _human(lua + vm_functions),
                "used_memory_functions": codes, "used_memory_scripts": scripts + codes,
                "used_memory_scripts_human": _human(scripts + codes)}
    server.info_providers["memory"].append(info)

    def on_config(name: str) -> None:
        eng = engine(server, create=False)
        if name == "lua-max-memory" and eng is not None:
            eng.limit_memory(server.config[name])
    server.config_hooks.append(on_config)


def _human(n: int) -> str:
    from ..info import human
    return human(n)
