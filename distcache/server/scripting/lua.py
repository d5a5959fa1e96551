"""The Lua 5.1 runtime scripts run in: sandbox, the ``redis`` table, conversions.

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
refused, so a script cannot reach Python.
"""
from __future__ import annotations

import hashlib
import logging
import math
from typing import Any, Callable, Dict, List, Optional, Tuple

import lupa.lua51 as lupa

from ...protocol import ReplyError, Status
from ...protocol.resp import Raw, encode_reply, format_double

log = logging.getLogger("distcache.scripting")

#: An error Lua raised outside the script's protected call (out of memory in the
#: error handler...).
LuaError = lupa.LuaError

LLONG_MIN = -(1 << 63)
#: Nesting beyond this in a script's reply is refused, as Redis's Lua stack limit
#: refuses it (a table that holds itself would otherwise recurse forever).
MAX_REPLY_DEPTH = 200
#: Up to this many keys and arguments go to Lua as arguments (Lua's C stack holds
#: about 8000); more go as tables.
VARARGS = 64
#: Up to this many, to a runner with as many parameters (see the bootstrap).
FIXED = 8
#: Heap growth past the last full collection that triggers the next one (after a run).
COLLECT_SLACK = 32 << 20
#: Lua instructions between two calls of the count hook (about a millisecond).
HOOK_EVERY = 100_000

#: Redis's Lua bootstrap, in Lua: globals, proxies, the redis table and the runner.
_BOOTSTRAP = r"""
local api, py_error, py_hook, version, version_num, py_register, py_load_hook, FIXED = ...
local error, type, tostring, select, rawget, rawset, pairs, ipairs, next =
      error, type, tostring, select, rawget, rawset, pairs, ipairs, next
local setmetatable, getmetatable, setfenv, loadstring, load, xpcall =
      setmetatable, getmetatable, setfenv, loadstring, load, xpcall
local dbg = debug
-- Python callables are userdata with a metatable to Lua; to scripts they are functions,
-- as Redis's C ones are, through type and tostring. Not Lua wrappers: a script's
-- `return redis.call(...)` would tail-call one and lose its line for error texts.
local pyfuncs = setmetatable({}, {__mode = 'k'})   -- callable -> its tostring
local function mark(t)
  for _, v in pairs(t) do
    if type(v) == 'userdata' and getmetatable(v) ~= nil then
      pyfuncs[v] = 'function: ' .. tostring(function() end):sub(11)
    end
  end
  return t
end
local real = {}          -- what scripts see as globals
local proxies = setmetatable({}, {__mode = 'k'})   -- proxy -> real table
local READONLY = 'Attempt to modify a readonly table'

local function readonly(t, missing)
  local proxy = {}
  local index = t
  if missing then
    index = function(_, k)
      local v = t[k]
      if v == nil then missing(k) end
      return v
    end
  end
  setmetatable(proxy, {__index = index, __newindex = function() error(READONLY, 2) end})
  proxies[proxy] = t
  return proxy
end

for _, name in ipairs{'assert', 'collectgarbage', 'error', 'gcinfo', 'rawequal', 'select',
                      'tonumber', 'tostring', 'type', 'unpack', '_VERSION'} do
  real[name] = _G[name]
end
-- (A missing argument is the script's error, at its line, as from the C functions.)
real.type = function(...)
  if pyfuncs[...] then return 'function' end
  if select('#', ...) == 0 then error("bad argument #1 to 'type' (value expected)", 2) end
  return type(...)
end
real.tostring = function(...)
  local name = pyfuncs[...]
  if name then return name end
  if select('#', ...) == 0 then error("bad argument #1 to 'tostring' (value expected)", 2) end
  return tostring(...)
end
-- An error redis.call raised reaches Lua as a Python exception: scripts see its table.
local function lua_error(e)
  if type(e) == 'userdata' then return py_error(e) end
  return e
end
-- Redis's pcall gives a script the text of an error table, not the table.
local function caught(ok, ...)
  if ok then return ok, ... end
  local e = lua_error((...))
  if type(e) == 'table' then
    local text = e.err
    if type(text) == 'string' or type(text) == 'number' then e = text end
  end
  return ok, e
end
real.pcall = function(f, ...) return caught(pcall(f, ...)) end
real.xpcall = function(f, h) return xpcall(f, function(e) return h(lua_error(e)) end) end
local G
real.getmetatable = function(t)
  if t == G then return readonly({}) end
  if proxies[t] then return nil end
  return getmetatable(t)
end
real.setmetatable = function(t, mt)
  if proxies[t] then error(READONLY, 0) end
  return setmetatable(t, mt)
end
real.rawset = function(t, k, v)
  if proxies[t] then error(READONLY, 0) end
  return rawset(t, k, v)
end
real.rawget = function(t, k) return rawget(proxies[t] or t, k) end
real.next = function(t, k) return next(proxies[t] or t, k) end
real.pairs = function(t)
  local r = proxies[t]
  if r then return next, r, nil end
  return pairs(t)
end
real.ipairs = function(t) return ipairs(proxies[t] or t) end

-- A global read is a table lookup through the proxy (no Lua call per read); only a
-- missing one reaches real's __index, called from the script's frame (level 2).
G = readonly(real)
setmetatable(real, {__index = function(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end})
real._G = G
real.loadstring = function(s, name)
  local f, err = loadstring(s, name)
  if f then setfenv(f, G) end
  return f, err
end
real.load = function(f, name)
  local chunk, err = load(f, name)
  if chunk then setfenv(chunk, G) end
  return chunk, err
end
for _, name in ipairs{'string', 'table', 'math', 'coroutine'} do
  local lib = {}
  for k, v in pairs(_G[name]) do lib[k] = v end
  real[name] = readonly(lib)
end

local redis = {}
for name, f in pairs(mark(api)) do redis[name] = f end
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.REDIS_VERSION, redis.REDIS_VERSION_NUM = version, version_num
real.redis = readonly(redis)

local function libraries(libs)
  for name, lib in pairs(libs) do real[name] = readonly(mark(lib)) end
end

-- Where an error happened: the first Lua frame that is not this bootstrap.
local function handler(err)
  local level, where = 2, nil
  while true do
    local info = dbg.getinfo(level, 'Sl')
    if not info then break end
    if info.what ~= 'C' and info.source ~= '=distcache' then where = info break end
    level = level + 1
  end
  if type(err) == 'userdata' then
    err = py_error(err)
    if err.where then   -- a library's argument error: the script's line, then the text
      local at = where and (where.short_src .. ':' .. where.currentline .. ': ') or ''
      err = {err = 'ERR ' .. at .. err.err}
    end
  end
  if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
  if where then
    err.source = where.source
    err.line = where.currentline
  end
  return err
end

-- The count hook stays set between runs (setting it per run cost more than a short
-- script): py_hook answers false while no script runs. It is only replaced after a
-- kill (every instruction) or while a library loads, and put back afterwards.
local S = {killed = false}   -- a table: the runners below read it too
local every = 0
local function hook()
  if S.killed or py_hook() then
    S.killed = true
    -- Every instruction from now on, so a pcall in the script cannot outlive the
    -- kill; but never inside this chunk (the error handler, the runner).
    dbg.sethook(hook, '', 1)
    local info = dbg.getinfo(2, 'S')
    if info and info.source ~= '=distcache' then
      error({err = 'ERR Script killed by user with SCRIPT KILL...'})
    end
  end
end

local function arm(hook_every)
  every = hook_every
  dbg.sethook(hook, '', every)
end

local function unhook()
  dbg.sethook(hook, '', every)   -- first: until then the hook runs at every instruction,
  S.killed = false               -- and would call py_hook (which says kill) again
end

local function compile(body, name)
  local f, err = loadstring(body, name)
  if not f then return nil, err end
  setfenv(f, G)
  return f, false
end

local function run(f, keys, argv, as_args)
  if not as_args then
    rawset(real, 'KEYS', keys)
    rawset(real, 'ARGV', argv)
  end
  local ok, r = xpcall(f, handler)
  if S.killed then unhook() end
  return ok, r
end

local function unproxy(t) return proxies[t] or t end

-- Runners for scripts given n keys and arguments in all (n <= FIXED): KEYS and ARGV
-- made from fixed parameters (a vararg function costs more to call), the value
-- alone on success (one result is cheaper than two), false and the error table on
-- failure. Their chunk is '=distcache', so the error handler and the hook skip them.
local runners = {}
for n = 0, FIXED do
  local names = {}
  for i = 1, n do names[i] = 'a' .. i end
  local list = table.concat(names, ', ')
  local src = 'local real, xpcall, handler, S, unhook = ...\n' ..
    'return function(f, nkeys' .. (n > 0 and ', ' or '') .. list .. ')\n' ..
    '  local keys, argv = {' .. list .. '}, {}\n' ..
    '  for i = nkeys + 1, ' .. n .. ' do argv[i - nkeys] = keys[i]; keys[i] = nil end\n' ..
    '  real.KEYS, real.ARGV = keys, argv\n' ..
    '  local ok, r = xpcall(f, handler)\n' ..
    '  if S.killed then unhook() end\n' ..
    '  if ok then return r end\n' ..
    '  return false, r\n' ..
    'end\n'
  runners[n + 1] = loadstring(src, '=distcache')(real, xpcall, handler, S, unhook)
end

-- Binders: binders[n * 16 + nkeys + 1](f) makes a runner of script f alone for n keys
-- and arguments of which nkeys keys: the function and the key count are not passed
-- on each call (each argument lupa passes costs a few hundred instructions), KEYS and
-- ARGV are two table constructors.
local binders = {}
for n = 0, FIXED do
  local names = {}
  for i = 1, n do names[i] = 'a' .. i end
  for nkeys = 0, n do
    local src = 'local real, xpcall, handler, S, unhook = ...\n' ..
      'return function(f) return function(' .. table.concat(names, ', ') .. ')\n' ..
      '  real.KEYS, real.ARGV = {' .. table.concat(names, ', ', 1, nkeys) .. '}, {' ..
      table.concat(names, ', ', nkeys + 1, n) .. '}\n' ..
      '  local ok, r = xpcall(f, handler)\n' ..
      '  if S.killed then unhook() end\n' ..
      '  if ok then return r end\n' ..
      '  return false, r\n' ..
      'end end\n'
    binders[n * 16 + nkeys + 1] = loadstring(src, '=distcache')(real, xpcall, handler, S, unhook)
  end
end

-- run, with KEYS and ARGV given as arguments: cheaper than two tables made from Python
-- (and run inlined: a Lua call less per script).
local function run_args(f, nkeys, ...)
  local keys, argv = {...}, {}
  for i = nkeys + 1, select('#', ...) do
    argv[i - nkeys] = keys[i]
    keys[i] = nil
  end
  real.KEYS, real.ARGV = keys, argv   -- real has no __newindex: raw sets
  local ok, r = xpcall(f, handler)
  if S.killed then unhook() end
  return ok, r
end

-- Functions (Redis's function_lua.c): a library's code runs with only the load API
-- as globals (redis.register_function, redis.log, the versions); the callbacks it
-- registers run later with the same environment, which then reads the globals.
local loading = false
if py_register then mark({py_register}) end
local load_redis = {register_function = py_register, log = api.log,
                    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
                    REDIS_VERSION = version, REDIS_VERSION_NUM = version_num}
local function nonexistent(k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 3)
end
local load_api = {redis = readonly(load_redis, nonexistent)}
local FG = readonly({}, nil)
getmetatable(FG).__index = function(_, k)
  local v = rawget(loading and load_api or real, k)
  if v == nil then nonexistent(k) end
  return v
end

local timed_out = false
local function load_hook()
  if timed_out or py_load_hook() then
    timed_out = true
    dbg.sethook(load_hook, '', 1)   -- a pcall in the library cannot outlive it
    local info = dbg.getinfo(2, 'S')
    if info and info.source ~= '=distcache' then
      error({err = 'ERR FUNCTION LOAD timeout'})
    end
  end
end

local function load_library(body, hook_every)
  local f, err = loadstring(body, '@user_function')
  if not f then return nil, err end
  setfenv(f, FG)
  loading, timed_out = true, false
  dbg.sethook(load_hook, '', hook_every)
  local ok, r = xpcall(f, handler)
  dbg.sethook(hook, '', every)   -- the runs' hook again
  loading = false
  if ok then return true, nil end
  return false, r
end

local function call_function(f, keys, argv)
  return run(function() return f(keys, argv) end, keys, argv, true)
end

return compile, run, libraries, unhook, unproxy, load_library, call_function, run_args, mark,
       arm, runners, binders
"""


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
            _BOOTSTRAP.encode())
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
        f, err = self._compile(body, name)
        return f, (None if f is not None else err)

    def run(self, func: Any, keys: List[bytes], argv: List[bytes]) -> Tuple[bool, Any]:
        """Run a compiled script; (True, value) or (False, error table)."""
        try:
            if len(keys) + len(argv) <= VARARGS:
                return self._run_args(func, len(keys), *keys, *argv)
            return self._run(func, self.rt.table(*keys), self.rt.table(*argv))
        except lupa.LuaError as exc:  # an error in the error handler (out of memory...)
            self._unhook()
            return False, self.error(b"ERR " + str(exc).encode())

    def load_library(self, body: bytes, hook_every: int) -> Optional[Any]:
        """Run a library's code (FUNCTION LOAD); None, or the error table."""
        try:
            ok, err = self._load_library(body, hook_every)
        except lupa.LuaError as exc:
            self._unhook()  # the runs' hook again
            return self.error(b"ERR " + str(exc).encode())
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
            self._unhook()
            return False, self.error(b"ERR " + str(exc).encode())

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


def lua_tostring(value: Any) -> Optional[bytes]:
    """Lua's lua_tolstring: strings and numbers (``%.14g``), else None."""
    cls = value.__class__
    if cls is bytes:
        return value
    if cls is int or cls is float:
        return b"%.14g" % value
    return None


# -- Lua values into replies (a script's return value) -----------------------------

def to_integer(value: Any) -> int:
    """A Lua number as Redis returns it: C's (long long) cast."""
    if value.__class__ is int:
        return value if LLONG_MIN <= value < -LLONG_MIN else LLONG_MIN
    if math.isnan(value) or math.isinf(value) or not LLONG_MIN <= value < -LLONG_MIN:
        return LLONG_MIN
    return int(value)


def lua_to_reply(value: Any, resp3: bool, script_resp3: bool, depth: int = 0) -> Any:
    """A script's return value as the reply Redis 7.0 sends (luaReplyToRedisReply)."""
    cls = value.__class__
    if cls is bytes:
        return value
    if cls is int or cls is float:
        return to_integer(value)
    if cls is bool:
        if script_resp3:
            return value
        return 1 if value else None
    if value is None:
        return None
    if lupa.lua_type(value) != "table":
        return None
    if depth > MAX_REPLY_DEPTH:
        return ReplyError("ERR reached lua stack limit")
    err = value[b"err"]
    if err.__class__ is bytes:
        text = err.decode("utf-8", "replace")
        return ReplyError(text[1:] if text.startswith("-") else text)
    ok = value[b"ok"]
    if ok.__class__ is bytes:
        return Status(ok.replace(b"\r", b" ").replace(b"\n", b" "))
    double = value[b"double"]
    if double.__class__ is int or double.__class__ is float:
        return float(double)
    big = value[b"big_number"]
    if big.__class__ is bytes:
        big = big.replace(b"\r", b" ").replace(b"\n", b" ")
        return Raw(b"(%s\r\n" % big) if resp3 else big
    verbatim = value[b"verbatim_string"]
    if lupa.lua_type(verbatim) == "table":
        fmt, text = verbatim[b"format"], verbatim[b"string"]
        if fmt.__class__ is bytes and text.__class__ is bytes:
            if resp3:
                return Raw(b"=%d\r\n%s:%s\r\n" % (len(text) + 4, fmt[:3].ljust(3), text))
            return text
    depth += 1
    mapping = value[b"map"]
    if lupa.lua_type(mapping) == "table":
        pairs = []
        for k, v in mapping.items():
            pairs.append(lua_to_reply(k, resp3, script_resp3, depth))
            pairs.append(lua_to_reply(v, resp3, script_resp3, depth))
        return _Map(pairs)
    members = value[b"set"]
    if lupa.lua_type(members) == "table":
        items = [lua_to_reply(k, resp3, script_resp3, depth) for k in members.keys()]
        return _Set(items)
    out = []
    i = 1
    while True:
        item = value[i]
        if item is None:
            break
        out.append(lua_to_reply(item, resp3, script_resp3, depth))
        i += 1
    return out


class _Map(list):
    """A map reply as flat key, value pairs (keys may repeat or be unhashable)."""


class _Set(list):
    """A set reply in the script's order."""


def encode_script_reply(value: Any, out: List[bytes], resp3: bool) -> None:
    """encode_reply, plus maps and sets in the order the script's table gave them."""
    cls = value.__class__
    if cls is _Map:
        out.append(b"%%%d\r\n" % (len(value) // 2) if resp3 else b"*%d\r\n" % len(value))
    elif cls is _Set:
        out.append(b"~%d\r\n" % len(value) if resp3 else b"*%d\r\n" % len(value))
    elif cls is list:
        out.append(b"*%d\r\n" % len(value))
    elif cls is float and not resp3:
        text = format_double(value)
        out.append(b"$%d\r\n%s\r\n" % (len(text), text))
        return
    else:
        encode_reply(value, out, resp3)
        return
    for item in value:
        encode_script_reply(item, out, resp3)


def _no_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError("access to Python attributes is not allowed from scripts")


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
