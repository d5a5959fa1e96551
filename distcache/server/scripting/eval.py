"""EVAL and the script cache: one script run for one client (Redis's eval.c).

A script runs in the event-loop thread, start to end, so no other client's
command runs inside it. Its ``redis.call`` goes through the ordinary
dispatcher on a private client (``deny_blocking``: blocking commands answer
as on timeout), after Redis's checks for calls from scripts. While it runs,
the keyspace's propagators are swapped for a collector: its writes reach the
log (and later replicas) as its effects, wrapped in MULTI/EXEC when there
are two or more (as Redis 7.0), never as the EVAL itself, so replaying the
log needs no Lua. Writes go through ``Database.modified``, so WATCH sees them.
"""
from __future__ import annotations

import hashlib
import logging
from functools import partial
from time import perf_counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ...protocol.resp import Raw, encode_reply, error_text
from ..errors import OOM, CommandError
from ..stats import count_error
from ..types.blocking import serve_ready
from . import NOSCRIPT, split_keys
from .busy import BusyServer
from .lua import FIXED, LuaError, LuaRuntime, ScriptError, lua_log, sha1hex
from .replies import encode_script_reply, lua_to_reply

log = logging.getLogger("distcache.scripting")

#: What a cached script costs beyond its body (the entry, the compiled function).
SCRIPT_OVERHEAD = 512
#: The Lua state's memory is read after one run in ACCOUNT_MASK + 1 (a call to Lua's
#: allocator count each time costs more than a short script does).
ACCOUNT_MASK = 15
#: Seconds between two polls of the other clients while a script is busy.
POLL_EVERY = 0.005
#: Command names (as scripts spell them) remembered for redis.call's direct path.
PLAIN_NAMES = 1024

SHEBANG_FLAGS = ("no-writes", "allow-oom", "allow-stale", "no-cluster",
                 "allow-cross-slot-keys")


class Script:
    """A cached script: its body, compiled function and shebang flags (None: no shebang);
    and the runner bound to it for the shape (keys and arguments) of its first plain
    EVALSHA (``shape`` -1: none yet), see LuaRuntime.run_first."""

    __slots__ = ("sha", "body", "func", "flags", "shape", "runner")

    def __init__(self, sha: bytes, body: bytes, func: Any, flags: Optional[frozenset]) -> None:
        self.sha = sha
        self.body = body
        self.func = func
        self.flags = flags
        self.shape = -1
        self.runner: Any = None


class _Run:
    """The state of the script being run (Redis's scriptRunCtx).

    No __slots__: what most runs never change is a class attribute, so making
    one per EVAL sets four attributes rather than sixteen; and no ``__init__``:
    its callers set ``caller``, ``script``, ``keys`` (the keys it declared, for
    its caller's tracking) and ``start`` (perf_counter(), the clock of the
    hook's busy timer) themselves, a Python frame less per script."""

    caller: Any
    script: Any
    keys: List[bytes]
    start: float

    function = False  # FCALL: FUNCTION KILL, not SCRIPT KILL, ends it
    argv: Sequence[bytes] = ()  # the FCALL, for FUNCTION STATS
    allow_oom = False
    wrote = False
    resp3 = False
    repl = 3  # REPL_ALL
    kill = False  # SCRIPT KILL, SHUTDOWN NOSAVE or SIGTERM: the hook raises
    shutdown = False  # SHUTDOWN NOSAVE: the effects are dropped, the server stops
    busy: Optional[BusyServer] = None  # past busy-reply-threshold
    next_poll = 0.0

    readonly = False  # EVAL_RO, or a no-writes shebang
    pre_oom = False  # over maxmemory as it started


def _check_flags(server: Any, run: _Run, flags: frozenset, readonly: bool) -> None:
    """A shebang's flags on the run, and its refusals before it runs (scriptPrepareForRun)."""
    run.readonly = readonly or "no-writes" in flags
    run.allow_oom = "allow-oom" in flags
    refusal = server.replicas_refusal  # min-replicas-to-write
    if refusal is not None and "no-writes" not in flags:
        raise CommandError(refusal)
    if run.pre_oom and not run.allow_oom and not run.readonly:
        raise CommandError(OOM)  # a script that declared it may write, out of memory
    if readonly and "no-writes" not in flags:
        raise CommandError("ERR Can not execute a script with write flag using *_ro command.")


def parse_shebang(body: bytes) -> Tuple[Optional[frozenset], int]:
    """Shebang flags and the shebang's length (the newline stays, so lines count alike)."""
    if not body.startswith(b"#!"):
        return None, 0
    end = body.find(b"\n")
    line = body if end < 0 else body[:end]
    parts = line.decode("utf-8", "replace").split(" ")
    if parts[0] != "#!lua":
        raise CommandError(f"ERR Unexpected engine in script shebang: {parts[0]}")
    flags = set()
    for part in parts[1:]:
        if not part:
            continue
        if not part.startswith("flags="):
            raise CommandError(f"ERR Unknown lua shebang option: {part}")
        for flag in part[6:].split(","):
            if not flag:
                continue
            if flag not in SHEBANG_FLAGS:
                raise CommandError(f"ERR Unexpected flag in script shebang: {flag}")
            flags.add(flag)
    return frozenset(flags), len(line)


class ScriptEngine:
    """The server's Lua runtime, its script cache and the script running now."""

    def __init__(self, server: Any) -> None:
        from ..connection import Client
        from ..info import REDIS_VERSION
        self.server = server
        self.version = REDIS_VERSION
        self.scripts: Dict[bytes, Script] = {}
        self.running: Optional[_Run] = None
        #: redis.call's names -> plain specs, or False (see _plain_spec).
        self._plain: Dict[bytes, Any] = {}
        #: Bytes of the cached scripts' bodies (and their cache entries).
        self.cache_bytes = 0
        self.runtime = self._new_runtime()
        #: The runtime of the script running now (the EVAL one, or the functions').
        self.active = self.runtime
        from .functions import FunctionStore
        self.functions = FunctionStore(self)
        client = self.client = Client(server)  # never connected, never listed
        client.authenticated = True
        client.restricted = False
        client.in_exec = True  # blocked clients are served after the script, not inside
        client.deny_blocking = True  # type: ignore[attr-defined]
        client.name = b"lua"
        self.runs = 0  # scripts run: the Lua state's memory is read every few
        from .evalsha import evalsha, run_many
        #: EVALSHA's handler and run handler (evalsha.py), without a frame between.
        self.evalsha = partial(evalsha, self)
        self.run_many = partial(run_many, self)

    def _new_runtime(self) -> LuaRuntime:
        from .libs import libraries
        return LuaRuntime(self, self.version, libraries)

    # -- the cache ----------------------------------------------------------------

    def load(self, body: bytes) -> Script:
        """Compile ``body`` into the cache (SCRIPT LOAD, EVAL) and return it."""
        sha = hashlib.sha1(body).hexdigest().encode()
        script = self.scripts.get(sha)
        if script is not None:
            return script
        flags, skip = parse_shebang(body)
        func, err = self.runtime.compile(body[skip:])
        if func is None:
            text = err.decode("utf-8", "replace")
            raise CommandError(f"ERR Error compiling script (new function): {text}")
        script = self.scripts[sha] = Script(sha, body, func, flags)
        self.cache_bytes += len(body) + SCRIPT_OVERHEAD
        self.account()
        return script

    def get(self, sha: bytes) -> Optional[Script]:
        return self.scripts.get(sha.lower()) if len(sha) == 40 else None

    def eval(self, c: Any, args: List[bytes], by_sha: bool, readonly: bool) -> Any:
        """EVAL, EVALSHA and their _RO forms (``args``: the whole command)."""
        keys, argv = split_keys(args, "ERR value is not an integer or out of range")
        if by_sha:
            script = self.scripts.get(args[1]) or self.get(args[1])  # as sent, else any case
            if script is None:
                raise CommandError(NOSCRIPT)
        else:
            script = self.load(args[1])
        return self.run(c, script, keys, argv, readonly)

    def flush(self) -> None:
        """SCRIPT FLUSH: forget every script, in a fresh Lua state (as Redis)."""
        self.scripts = {}
        self.cache_bytes = 0
        self.runtime = self.active = self._new_runtime()
        self.runtime.rt.gccollect()
        self.account()

    def account(self) -> None:
        """Update what scripts add to used_memory: the cached bodies and function
        codes, as Redis counts them (the Lua states are INFO's used_memory_vm_*, not
        data, so they never make the server evict)."""
        self.server.script_memory = self.cache_bytes + self.functions.code_bytes()

    def limit_memory(self, limit: int) -> None:
        """CONFIG SET lua-max-memory: the new cap for both Lua states."""
        for runtime in (self.runtime, self.functions.runtime):
            if runtime is not None:
                runtime.limit_memory(limit)

    # -- running ------------------------------------------------------------------

    def run(self, c: Any, script: Any, keys: List[bytes], argv: List[bytes],
            readonly: bool, runtime: Optional[LuaRuntime] = None,
            command: Optional[List[bytes]] = None) -> Any:
        """Run ``script`` for client ``c``; returns the reply (Raw) or raises CommandError.

        ``runtime``: the functions' runtime for FCALL (``script`` is then a
        registered function, called with its keys and arguments)."""
        if self.running is not None:  # a script calling EVAL is refused by the noscript flag
            raise CommandError("ERR a script is already running")
        server = self.server
        oom_check = server.oom_check
        pre_oom = False
        if oom_check is not None and not c.in_exec:
            try:
                oom_check(c)  # evicts first, as processCommand does before EVAL
            except CommandError:
                pre_oom = True
        run = _Run()
        run.caller = c
        run.script = script
        run.keys = keys
        run.start = perf_counter()
        if readonly:
            run.readonly = True
        if pre_oom:
            run.pre_oom = True
        if script.flags is not None:
            _check_flags(server, run, script.flags, readonly)
        function = runtime is not None
        if function:
            run.function = True
            run.argv = command or ()
        else:
            runtime = self.runtime
        sclient = self.client
        sclient.db = c.db
        sclient.resp3 = False
        keyspace = server.keyspace
        propagators = keyspace.propagators
        keyspace.stage_db = None  # every write goes to the collector below
        collected: List[Tuple[int, List[List[bytes]]]] = []
        if propagators:
            keyspace.propagators = [self.collector(collected)]
        server.oom_check = None  # checked per call below, as Redis's scriptVerifyOOM
        self.running = run
        self.active = runtime
        try:
            n = len(keys) + len(argv)
            if function:
                ok, value = runtime.call_function(script.func, keys, argv)
            elif n <= FIXED:  # runtime.run, without its frame
                value = runtime.runners[n](script.func, len(keys), *keys, *argv)
                ok = value.__class__ is not tuple  # (False, error table): no Lua value is one
                if not ok:
                    value = value[1]
            else:
                ok, value = runtime.run(script.func, keys, argv)
        except LuaError as exc:  # an error in the error handler (out of memory...)
            ok, value = False, runtime.outside_error(exc)
        finally:
            self.running = None
            self.active = self.runtime
            server.oom_check = oom_check
            if propagators:
                keyspace.propagators = propagators
            if run.busy is not None:
                run.busy.finish()
        runs = self.runs = self.runs + 1
        if runtime.memory_used() > runtime.collect_at or not runs & ACCOUNT_MASK:
            self.tidy(runtime)
        if ok and value.__class__ is bytes and not (collected or run.shutdown
                                                    or server.ready_keys):
            return value  # the common reply, without a call
        return self.reply(c, run, ok, value, collected)

    def collector(self, collected: List[Tuple[int, List[List[bytes]]]]) -> Any:
        """The propagator a script's writes go to while it runs: its effects, kept
        for after the run unless redis.set_repl left out AOF and replicas."""
        def collect(db_id: int, cmds: List[List[bytes]]) -> None:
            run = self.running
            if run is None or run.repl & 1:
                collected.append((db_id, cmds))
        return collect

    def tidy(self, runtime: LuaRuntime) -> None:
        """After a run, every ACCOUNT_MASK + 1 runs or near the Lua state's cap (the
        caller checks): collect its garbage near the cap, and read its memory."""
        if runtime.memory_used() > runtime.collect_at:
            runtime.collect()  # Lua 5.1 has no emergency collection: a script's garbage
        self.account()         # left near the cap would fail the next allocation

    def reply(self, c: Any, run: _Run, ok: bool, value: Any,
              collected: List[Tuple[int, List[List[bytes]]]]) -> Any:
        """A finished run's effects (propagated, waiters served) and its reply: bytes
        or an int for the dispatcher to encode, else Raw; CommandError for an error."""
        server = self.server
        if run.shutdown:  # SHUTDOWN NOSAVE: as Redis, the script's effects are not kept
            server.shutdown(save=False)
            raise CommandError(self._error_text(run.script, value))
        if collected:
            self._propagate(c, collected)
        if server.ready_keys and not c.in_exec:
            serve_ready(server)  # the script's pushes serve waiters now
        if not ok:
            raise CommandError(self._error_text(run.script, value))
        cls = value.__class__
        if cls is bytes or (cls is int and -(1 << 63) <= value < 1 << 63):
            return value  # the common replies: the dispatcher encodes them
        reply = lua_to_reply(value, c.resp3, run.resp3)
        if reply.__class__.__name__ == "ReplyError":
            raise CommandError(str(reply.args[0]))
        out: List[bytes] = []
        encode_script_reply(reply, out, c.resp3)
        return Raw(b"".join(out))

    def _propagate(self, c: Any, collected: List[Tuple[int, List[List[bytes]]]]) -> None:
        keyspace = self.server.keyspace
        commands = [cmd for _, cmds in collected for cmd in cmds]
        wrap = len(commands) > 1 and not c.in_exec  # inside EXEC, EXEC wraps it all
        if wrap:
            keyspace.propagate(collected[0][0], [[b"MULTI"]])
        for db_id, cmds in collected:
            keyspace.propagate(db_id, cmds)
        if wrap:
            keyspace.propagate(collected[-1][0], [[b"EXEC"]])

    @staticmethod
    def _error_text(script: Any, err: Any) -> str:
        """Redis's text for an error that ended a script: where it happened and which."""
        sha = script.sha.decode()
        if not hasattr(err, "keys"):  # not an error table: Lua's own (out of memory)
            msg = err.decode("utf-8", "replace") if isinstance(err, bytes) else "execution failure"
            return f"ERR Error running script f_{sha}, {msg[:100]}"
        text, source, line = err[b"err"], err[b"source"], err[b"line"]
        msg = text.decode("utf-8", "replace") if isinstance(text, bytes) else "ERR unknown error"
        if source is None:
            return f"{msg} script: {sha}"
        return f"{msg} script: {sha}, on {source.decode('utf-8', 'replace')}:{line}."

    # -- callbacks from Lua: the redis table ---------------------------------------

    def lua_api(self) -> Dict[bytes, Any]:
        # partial objects: Lua calls them without a Python frame of their own
        call = ScriptEngine._call  # not a bound method: one call less a redis.call
        return {b"call": partial(call, self, True), b"pcall": partial(call, self, False),
                b"sha1hex": sha1hex, b"error_reply": self.lua_error_reply,
                b"status_reply": self.lua_status_reply, b"log": lua_log,
                b"setresp": self.lua_setresp, b"set_repl": self.lua_set_repl,
                b"acl_check_cmd": self.lua_acl}

    def _call(self, raising: bool, *args: Any) -> Any:
        """redis.call (``raising``: an error reply is a Lua error with its error
        table) and redis.pcall (the error table is returned).

        A read whose name is a plain command (see :meth:`_plain_spec`) goes
        straight to its handler, and its bytes, integer or nil reply straight to
        Lua; anything else takes :meth:`_dispatch`, the private client's
        dispatcher and a parse of its reply."""
        run = self.running
        try:
            spec = self._plain[args[0]]
        except KeyError:
            spec = self._plain_spec(args[0]) if args[0].__class__ is bytes else False
        except (IndexError, TypeError):  # no arguments, or a table for a name
            spec = False
        if spec and run is not None:
            arity = spec.arity
            argc = len(args)
            if (argc == arity) if arity > 0 else (argc >= -arity):
                for arg in args:
                    if arg.__class__ is not bytes:
                        break  # numbers and the rest: the general path (_arguments)
                else:
                    if run.caller.tracking is not None and spec.readonly:
                        # As Redis 7.0 (call() with the script's caller): a read inside a
                        # script makes its caller track the keys the script declared.
                        self.server.tracking.remember_keys(run.caller, run.keys)
                    argv = [*args]
                    sclient = self.client
                    sclient.last_command = spec
                    try:
                        reply = spec.handler(sclient, argv)
                    except Exception as exc:  # noqa: BLE001 - the dispatcher's error reply
                        return self._failed(spec, argv, exc, raising)
                    spec.calls += 1
                    cls = reply.__class__
                    if cls is bytes or cls is int:
                        return reply
                    if reply is None:  # RESP2's nil bulk is false, RESP3's null is nil
                        return None if sclient.resp3 else False
                    out: List[bytes] = []
                    if cls is Raw:
                        out.append(reply)
                    else:
                        encode_reply(reply, out, sclient.resp3)
                    return self._lua_value(self.active.reply_to_lua(b"".join(out)), raising)
        return self._lua_value(self._dispatch(run, args), raising)

    @staticmethod
    def _lua_value(parsed: Tuple[Any, bool], raising: bool) -> Any:
        """A reply parsed for Lua: the value, or its error raised (redis.call)."""
        value, failed = parsed
        if failed and raising:
            raise ScriptError(value[b"err"])
        return value

    def _plain_spec(self, name: bytes) -> Any:
        """The spec of ``name`` if it may skip the dispatcher from a script, else False.

        Plain: a read with neither subcommands nor a blocking form, that no
        check of :meth:`_check` or gate of the dispatcher (OOM, MISCONF: writes,
        denyoom commands and PING) can refuse. Remembered for the next call."""
        table = self.server.command_table
        spec = table.get(name) or table.get(name.lower())
        plain = (spec is not None and not spec.subcommands and not spec.write
                 and not spec.denyoom and spec.name != "ping"
                 and not {"noscript", "blocking"} & spec.flags and spec)
        if len(self._plain) < PLAIN_NAMES:  # a name's spellings (GET, get...) are few
            self._plain[name] = plain
        return plain

    def _failed(self, spec: Any, argv: List[bytes], exc: Exception, raising: bool) -> Any:
        """A handler's exception, counted and worded as the dispatcher does: its error
        table (redis.pcall), or raised (redis.call)."""
        if isinstance(exc, CommandError):
            spec.failed += 1
            count_error(self.server, exc.text)
            text = error_text(exc)
        else:
            log.exception("error running %r", argv[:3])
            count_error(self.server, "ERR")
            text = b"ERR internal error running '%s'" % spec.fullname.encode()
        if raising:
            raise ScriptError(text)
        return self.active.error(text)

    def _dispatch(self, run: Optional[_Run], args: Tuple[Any, ...]) -> Tuple[Any, bool]:
        """redis.call's general path: (the reply or error table, whether an error)."""
        runtime = self.active
        if run is None:  # a coroutine kept past its script's end
            return runtime.error(b"ERR no script is running"), True
        try:
            argv = _arguments(args)
            spec = self._check(run, argv)
        except CommandError as exc:
            return runtime.error(exc.text.encode()), True
        out: List[bytes] = []
        self.client.execute(argv, out)
        if run.caller.tracking is not None and spec.readonly:
            # As Redis 7.0 (call() with the script's caller): a read inside a script
            # makes its caller track the keys the script declared, not the key read.
            self.server.tracking.remember_keys(run.caller, run.keys)
        return runtime.reply_to_lua(b"".join(out))

    def _check(self, run: _Run, argv: List[bytes]) -> Any:
        """Redis's checks for a command called from a script (scriptCall); its spec."""
        table = self.server.command_table
        spec = table.get(argv[0]) or table.get(argv[0].lower())
        if spec is not None and spec.subcommands and len(argv) > 1:
            spec = spec.subcommands.get(argv[1]) or spec.subcommands.get(argv[1].lower())
        if spec is None:
            raise CommandError("ERR Unknown Redis command called from script")
        arity = spec.arity
        if (len(argv) != arity) if arity > 0 else (len(argv) < -arity):
            raise CommandError("ERR Wrong number of args calling Redis command from script")
        if "noscript" in spec.flags or (spec.parent is not None
                                        and "noscript" in spec.parent.flags):
            raise CommandError("ERR This Redis command is not allowed from script")
        if spec.write:
            if run.readonly:
                raise CommandError("ERR Write commands are not allowed from read-only scripts.")
            gate = self.server.replica_gate
            if gate is not None:  # a read-only replica: READONLY (not for its primary)
                gate(run.caller, spec, argv)
            if spec.denyoom and run.pre_oom and not run.allow_oom and not run.wrote:
                raise CommandError(OOM)
            run.wrote = True
        return spec

    def lua_error_reply(self, *args: Any) -> Any:
        """redis.error_reply: {err=...} with an error code (ERR when it has none)."""
        if len(args) != 1 or args[0].__class__ is not bytes:
            return self.active.error(b"ERR wrong number or type of arguments")
        text = args[0][1:] if args[0][:1] == b"-" else args[0]
        if b" " not in text:
            text = b"ERR " + text
        return self.active.error(text)

    def lua_status_reply(self, *args: Any) -> Any:
        if len(args) != 1 or args[0].__class__ is not bytes:
            return self.active.error(b"ERR wrong number or type of arguments")
        return self.active.table_from({b"ok": args[0]})

    def lua_setresp(self, *args: Any) -> None:
        if len(args) != 1:
            raise ScriptError(b"ERR redis.setresp() requires one argument.")
        if args[0] != 2 and args[0] != 3:
            raise ScriptError(b"ERR RESP version must be 2 or 3.")
        run = self.running
        if run is not None:
            run.resp3 = self.client.resp3 = args[0] == 3

    def lua_set_repl(self, *args: Any) -> None:
        if len(args) != 1:
            raise ScriptError(b"ERR redis.set_repl() requires two arguments.")
        flags = args[0]
        if flags.__class__ not in (int, float) or flags not in (0, 1, 2, 3):
            raise ScriptError(b"ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, "
                              b"REPL_ALL or REPL_NONE.")
        if self.running is not None:
            self.running.repl = int(flags)

    def lua_hook(self) -> bool:
        """The count hook, every HOOK_EVERY instructions: True ends the script.

        Past busy-reply-threshold it serves the other clients (busy.py). A
        SIGTERM ends a script that has not written, so the server stops at
        once; one that has written cannot be stopped without breaking its
        atomicity, so shutdown-deadline ends the process as kill -9 would (its
        effects are not in the log yet, so the log stays atomic).
        """
        run = self.running
        if run is None:  # the hook stays set between runs: nothing to end
            return False
        if run.kill:
            return True
        server = self.server
        if server._stopping and not run.wrote:
            run.kill = True
            return True
        now = perf_counter()
        if now >= run.next_poll:
            threshold = server.config["busy-reply-threshold"] / 1000.0
            if now - run.start >= threshold:
                if run.busy is None:
                    log.warning("a script has been running for %.1f s: answering BUSY",
                                now - run.start)
                    run.busy = BusyServer(server, run)
                run.busy.poll()
                run.next_poll = now + POLL_EVERY
            else:
                run.next_poll = run.start + threshold
        return run.kill

    def lua_acl(self, *args: Any) -> bool:
        """redis.acl_check_cmd: every command is allowed (the default user)."""
        argv = _arguments(args) if args else []
        table = self.server.command_table
        if not argv or table.get(argv[0].lower()) is None:
            raise ScriptError(b"ERR Invalid command passed to redis.acl_check_cmd()")
        return True


def _arguments(args: Tuple[Any, ...]) -> List[bytes]:
    # CommandError, not ScriptError: redis.pcall returns these instead of raising
    """redis.call's arguments as a command: strings, and numbers as %.17g (Redis 7.0)."""
    if not args:
        raise CommandError("ERR Please specify at least one argument for this redis lib call")
    argv = []
    for arg in args:
        cls = arg.__class__
        if cls is bytes:
            argv.append(arg)
        elif cls is int and -(1 << 53) < arg < (1 << 53):
            argv.append(b"%d" % arg)
        elif cls is int or cls is float:
            argv.append(b"%.17g" % float(arg))
        else:
            raise CommandError("ERR Lua redis lib command arguments must be strings or integers")
    return argv
