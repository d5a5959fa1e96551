"""The Lua 5.1 runtime scripts run in: its sandbox, the ``redis`` table, the runs.

One :class:`LuaRuntime` per server (a new one after SCRIPT FLUSH, as Redis
makes a new interpreter). Scripts see Redis 7.0's globals and nothing else:
no ``os``, ``io``, ``debug``, ``print``, ``require``, ``loadfile``,
``dofile``, ``setfenv``/``getfenv`` or lupa's ``python``. Each script
function (and each chunk it makes with ``loadstring``/``load``) runs with an
environment that is a read-only proxy of those globals: reading a missing
global and writing any global are errors with Redis's texts, and the library
tables (``redis``, ``string``, ``table``...) are read-only proxies too.
``rawset``, ``setmetatable``, ``getmetatable``, ``rawget``, ``next``,
``pairs`` and ``ipairs`` see through the proxies, so iterating ``_G`` or
``string`` works and modifying them fails, as with Redis's read-only tables
(stock Lua 5.1 has no read-only tables, hence the proxies).

Python functions are reached only through upvalues of the bootstrap chunk,
never through a global, and lupa's attribute access on Python objects is
refused, so a script cannot reach Python. The Lua side of all this is
lua_bootstrap.py; replies.py turns a script's values into replies.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any, Callable, Dict, List, Optional, Tuple

import lupa.lua51 as lupa

from .lua_bootstrap import BOOTSTRAP
from .replies import lua_tostring

log = logging.getLogger("distcache.scripting")

#: An error Lua raised outside the script's protected call (out of memory in the
#: error handler...).
LuaError = lupa.LuaError

#: Up to this many keys and arguments go to Lua as arguments (Lua's C stack holds
#: about 8000); more go as tables.
VARARGS = 64
#: Up to this many, to a runner with as many parameters (see the bootstrap).
FIXED = 8
#: Heap growth past the last full collection that triggers the next one (after a run).
COLLECT_SLACK = 32 << 20
#: Lua instructions between two calls of the count hook (about a millisecond).
HOOK_EVERY = 100_000


class LuaRuntime:
    """One Lua state with Redis's sandbox; calls back into ``host`` for redis.*."""

    def __init__(self, host: Any, version: str, libraries: Optional[Callable] = None,
                 register: Optional[Callable] = None, load_hook: Optional[Callable] = None
                 ) -> None:
        """``register`` and ``load_hook``: redis.register_function and the FUNCTION LOAD
        timeout check, for the functions' runtime (None: an EVAL runtime)."""
        self.host = host
        rt = self.rt = lupa.LuaRuntime(encoding=None, unpack_returned_tuples=True,
                                       register_eval=False, register_builtins=False,
                                       max_memory=0,  # 0: no limit, but memory is counted
                                       attribute_filter=_no_attributes)
        self.limit = 0
        self.collect_at = 0
        # Chunk name "=distcache": the error handler skips this chunk's frames.
        boot, err = rt.eval("function(s) local f, e = loadstring(s, '=distcache') return f, e end")(
            BOOTSTRAP.encode())
        if boot is None:
            raise RuntimeError(err)
        major, minor, patch = (int(p) for p in version.split("."))
        (self._compile, self._run, add_libraries, self._unhook, self.unproxy, self._load_library,
         self._call_function, self._run_args, self._mark, arm, runners, binders) = boot(
            rt.table_from(host.lua_api()), self._error_table, host.lua_hook,
            version.encode(), (major << 16) | (minor << 8) | patch, register, load_hook, FIXED)
        #: runners[n](func, nkeys, *keys, *argv) for n keys and arguments in all: the
        #: script's value, or (False, error table).
        self.runners: List[Any] = [runners[n + 1] for n in range(FIXED + 1)]
        #: binders[shape](func): a runner of that script alone for calls of that shape
        #: (n keys and arguments, nkeys of them keys: n * 16 + nkeys), called with the
        #: keys and arguments only.
        self.binders: List[Any] = [binders[i + 1] for i in range(16 * (FIXED + 1))]
        self.table = rt.table
        self.table_from = rt.table_from
        #: Bytes the Lua state holds (counted: max_memory is given, if 0).
        self.memory_used: Callable[[], int] = rt.get_memory_used
        if libraries is not None:
            add_libraries(rt.table_from(libraries(self)))
        arm(HOOK_EVERY)  # from now on, for good: host.lua_hook is False between runs
        self.limit_memory(host.server.config["lua-max-memory"])

    def run_first(self, script: Any, shape: int, nkeys: int, args: List[bytes]) -> Any:
        """A plain run of a script whose bound runner is not for this shape: the script
        gets one for it if it has none yet (its first plain run), else the shared
        runner runs it. The value, or (False, error table); LuaError as a runner."""
        if script.runner is None:
            script.runner = self.binders[shape](script.func)
            script.shape = shape
            return script.runner(*args[3:])
        return self.runners[len(args) - 3](script.func, nkeys, *args[3:])

    def library(self, functions: Dict[bytes, Any]) -> Any:
        """A Lua table of a library's members; its Python callables are functions to
        the scripts' type and tostring."""
        return self._mark(self.table_from(functions))

    def _error_table(self, exc: Any) -> Any:
        """The Lua error table for an exception a Python callback raised."""
        if isinstance(exc, ScriptError):
            return self.table_from({b"err": exc.text})
        if isinstance(exc, ArgumentError):
            return self.table_from({b"err": str(exc).encode(), b"where": True})
        log.error("error in a scripting callback: %r", exc)
        return self.table_from({b"err": b"ERR %s" % str(exc).encode()})

    def outside_error(self, exc: Exception) -> Any:
        """The error table for a LuaError raised outside a run's protected call (out
        of memory in the error handler...), with the runs' count hook back."""
        self._unhook()
        return self.error(b"ERR " + str(exc).encode())

    def error(self, text: bytes) -> Any:
        """An error table ({err=text}), as redis.pcall returns it."""
        return self.table_from({b"err": text})

    def memory(self) -> int:
        """Bytes the Lua state holds (INFO used_memory_lua)."""
        return self.rt.get_memory_used() or 0

    def limit_memory(self, limit: int) -> None:
        """Cap the bytes this state may hold beyond its libraries (0: no cap)."""
        self.limit = limit
        self.rt.set_max_memory(limit)
        self.collect()

    def collect(self) -> None:
        """A full garbage collection, and the heap size that calls for the next.

        Scripts keep no globals, so what a script allocated is garbage once it
        returns; Lua 5.1 only collects as it allocates, so a big script's garbage
        would otherwise stay (in INFO, and against the cap) until much later."""
        self.rt.gccollect()
        live = self.memory()
        self.collect_at = live + COLLECT_SLACK
        if self.limit:
            self.collect_at = min(self.collect_at, live + max(0, self.limit - live) // 2)

    def compile(self, body: bytes, name: bytes = b"@user_script") -> Tuple[Any, Optional[bytes]]:
        """(function, None) or (None, Lua's error text)."""
        f, err = self._compile(pieces(body), name)
        return f, (None if f is not None else err)

    def run(self, func: Any, keys: List[bytes], argv: List[bytes]) -> Tuple[bool, Any]:
        """Run a compiled script; (True, value) or (False, error table)."""
        try:
            if len(keys) + len(argv) <= VARARGS:
                return self._run_args(func, len(keys), *keys, *argv)
            return self._run(func, self.rt.table(*keys), self.rt.table(*argv))
        except lupa.LuaError as exc:  # an error in the error handler (out of memory...)
            return False, self.outside_error(exc)

    def load_library(self, body: bytes, hook_every: int) -> Optional[Any]:
        """Run a library's code (FUNCTION LOAD); None, or the error table."""
        try:
            ok, err = self._load_library(pieces(body), hook_every)
        except lupa.LuaError as exc:
            return self.outside_error(exc)
        finally:
            if len(body) > PIECE:
                self.collect()  # the pieces read (the functions' state runs no scripts)
        if ok:
            return None
        if ok is None:  # a compile error: Lua's text
            return self.table_from({b"compile": err})
        return err

    def call_function(self, func: Any, keys: List[bytes], argv: List[bytes]
                      ) -> Tuple[bool, Any]:
        """Call a registered function with (keys, args); as :meth:`run`."""
        try:
            return self._call_function(func, self.rt.table(*keys), self.rt.table(*argv))
        except lupa.LuaError as exc:
            return False, self.outside_error(exc)

    # -- replies into Lua values (redis.call's return) -----------------------------

    def reply_to_lua(self, buf: bytes) -> Tuple[Any, bool]:
        """Parse one RESP reply; (Lua value, is_error)."""
        kind = buf[0]
        if kind == 36:  # a bulk string, the most common reply: no general parse
            nl = buf.index(b"\r\n")
            n = int(buf[1:nl])
            return (buf[nl + 2:nl + 2 + n] if n >= 0 else False), False
        if kind == 58:  # an integer
            return int(buf[1:buf.index(b"\r\n")]), False
        value, _ = self._parse(buf, 0)
        return value, buf[:1] == b"-"

    def _parse(self, buf: bytes, pos: int) -> Tuple[Any, int]:
        kind = buf[pos]
        nl = buf.index(b"\r\n", pos)
        line = buf[pos + 1:nl]
        pos = nl + 2
        if kind == 36:  # $ bulk
            n = int(line)
            if n < 0:
                return False, pos
            return buf[pos:pos + n], pos + n + 2
        if kind == 58:  # : integer
            return int(line), pos
        if kind == 43:  # + status
            return self.table_from({b"ok": line}), pos
        if kind == 45:  # - error
            return self.table_from({b"err": line}), pos
        if kind == 42 or kind == 126 or kind == 37 or kind == 62:  # * ~ % >
            n = int(line)
            if n < 0:
                return False, pos
            t = self.table()
            if kind == 37:
                for _ in range(n):
                    k, pos = self._parse(buf, pos)
                    v, pos = self._parse(buf, pos)
                    t[k] = v
                return self.table_from({b"map": t}), pos
            if kind == 126:
                for _ in range(n):
                    k, pos = self._parse(buf, pos)
                    t[k] = True
                return self.table_from({b"set": t}), pos
            for i in range(1, n + 1):
                v, pos = self._parse(buf, pos)
                if v is not None:
                    t[i] = v
            return t, pos
        if kind == 95:  # _ null
            return None, pos
        if kind == 35:  # # boolean
            return line == b"t", pos
        if kind == 44:  # , double
            return self.table_from({b"double": float(line)}), pos
        if kind == 40:  # ( big number
            return self.table_from({b"big_number": line}), pos
        if kind == 61:  # = verbatim
            n = int(line)
            text = buf[pos:pos + n]
            verbatim = self.table_from({b"format": text[:3], b"string": text[4:]})
            return self.table_from({b"verbatim_string": verbatim}), pos + n + 2
        raise ValueError("unexpected reply type %r" % chr(kind))


class ScriptError(Exception):
    """Raised by a redis.* callback: a Lua error whose value is {err=text}."""

    def __init__(self, text: bytes) -> None:
        super().__init__(text)
        self.text = text


class ArgumentError(Exception):
    """Raised by a library function: a Lua error naming the script's line
    (``user_script:1: bad argument #1 to 'band' ...``), as luaL_argerror's."""


def _no_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError("access to Python attributes is not allowed from scripts")


#: Bodies longer than this reach Lua a piece at a time (see :func:`pieces`).
PIECE = 1 << 20


def pieces(body: bytes) -> Any:
    """``body`` itself, or when long a function returning its pieces in turn (then
    None): Lua compiles it from them, so it never holds the whole body as a string
    (a 100 MB SCRIPT LOAD held 300 MB); each piece is garbage once read."""
    if len(body) <= PIECE:
        return body
    view = memoryview(body)
    offsets = iter(range(0, len(body), PIECE))

    def next_piece() -> Optional[bytes]:
        start = next(offsets, None)
        return None if start is None else view[start:start + PIECE].tobytes()
    return next_piece


def sha1hex(*args: Any) -> bytes:
    """redis.sha1hex."""
    if len(args) != 1:
        raise ScriptError(b"ERR wrong number of arguments")
    return hashlib.sha1(lua_tostring(args[0]) or b"").hexdigest().encode()


_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING}


def lua_log(*args: Any) -> None:
    """redis.log: the level, then strings and numbers joined by spaces."""
    if len(args) < 2:
        raise ScriptError(b"ERR redis.log() requires two arguments or more.")
    level = args[0]
    if level.__class__ is not int and level.__class__ is not float:
        raise ScriptError(b"ERR First argument must be a number (log level).")
    if not 0 <= level <= 3:
        raise ScriptError(b"ERR Invalid debug level.")
    parts = [text for text in map(lua_tostring, args[1:]) if text is not None]
    log.log(_LEVELS[int(level)], "%s", b" ".join(parts).decode("utf-8", "replace"))
