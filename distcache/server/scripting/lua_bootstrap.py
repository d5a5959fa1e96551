"""Redis's Lua bootstrap: the chunk each :class:`~.lua.LuaRuntime` runs first.

It builds the sandbox (read-only proxies of the globals and library tables),
the ``redis`` table over the Python callbacks it is given, the count hook
and the runners that call a script under ``pcall``, and returns the
functions the runtime keeps: Python is reached only through its upvalues.
"""

#: Redis's Lua bootstrap, in Lua: globals, proxies, the redis table and the runner.
BOOTSTRAP = r"""
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

-- A long body comes as a Python function returning its pieces (lua.py's pieces):
-- compiled from them, it is never one Lua string (a second copy of the body).
local function parse(body, name)
  if type(body) == 'string' then return loadstring(body, name) end
  return load(function() return body() end, name)
end

local function compile(body, name)
  local f, err = parse(body, name)
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
  local f, err = parse(body, '@user_function')
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
