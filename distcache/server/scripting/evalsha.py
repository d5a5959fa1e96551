"""EVALSHA's fast paths: its handler, and its run handler for pipelines.

EVALSHA has a run handler, so the slow log's wrapper leaves it alone at the
default threshold (monitoring.py) and these paths time each call themselves
for the slow log and LATENCY HISTOGRAM, as the wrapper would, while
``monitoring.self_timing`` says so; when every command is wrapped (MONITOR,
the latency monitor, CLIENT PAUSE, a low threshold) the wrapper times it and
the run handler is off.

The run handler answers consecutive EVALSHAs of one read with one set-up: the
propagators swapped for the collector once, the OOM check taken off the
dispatcher once, the histogram looked up once. Each script still runs alone,
as through :meth:`ScriptEngine.run`: its own run state (busy timer, OOM
verdict, RESP and replication settings), the private client reset, the Lua
state's accounting. It takes only the plain form (a cached script without a
shebang, a key count of 0-8, up to FIXED keys and arguments) and stops after
a script whose run was not plain (it wrote, woke blocked clients, went past
busy-reply-threshold or met SHUTDOWN NOSAVE), finishing it as the general
path does; what follows goes through the dispatcher.
"""
from __future__ import annotations

import logging
from itertools import islice
from time import perf_counter
from typing import Any, List, Optional, Tuple

from ...protocol.resp import BULK_HEADERS, encode_reply, error_text
from .. import monitoring
from ..errors import CommandError
from ..stats import count_error
from . import NOSCRIPT, split_keys
from .eval import ACCOUNT_MASK, _Run
from .lua import FIXED, LuaError

log = logging.getLogger("distcache.scripting")

#: A plain key count's text -> the count.
_NUMKEYS = {b"%d" % n: n for n in range(FIXED + 1)}
_BAD_COUNT = "ERR value is not an integer or out of range"


def evalsha(engine: Any, c: Any, args: List[bytes]) -> Any:
    """EVALSHA's handler: the script by its SHA, timed here when monitoring.py
    leaves the timing to the command (a run of one through :func:`run_many`
    costs more: its set-up is for many). One frame for the plain form (a
    cached script without a shebang, up to FIXED keys and arguments, no
    maxmemory): the parse, the lookup, :meth:`ScriptEngine.run`'s steps and the
    slow log's record (Monitoring.record), inlined; the rest goes through
    ``engine.run``."""
    timed = monitoring.self_timing
    start = perf_counter() if timed else 0.0
    try:
        nkeys = _NUMKEYS.get(args[2])
        n = len(args) - 3  # keys and arguments
        if nkeys is not None and nkeys <= n:
            script = engine.scripts.get(args[1])
            server = engine.server
            if (script is not None and script.flags is None and n <= FIXED
                    and engine.running is None and server.oom_check is None):
                # ScriptEngine.run for the plain form, inlined: no shebang, no OOM
                # check (no maxmemory), the EVAL runtime, a fixed-parameter runner.
                run = _Run()
                run.caller = c
                run.script = script
                run.keys = args[3:3 + nkeys]
                run.start = start or perf_counter()
                sclient = engine.client
                sclient.db = c.db
                sclient.resp3 = False
                keyspace = server.keyspace
                propagators = keyspace.propagators
                keyspace.stage_db = None  # every write goes to the collector
                collected: List[Tuple[int, List[List[bytes]]]] = []
                if propagators:
                    keyspace.propagators = [engine.collector(collected)]
                runtime = engine.runtime
                engine.running = run
                try:
                    shape = n * 16 + nkeys
                    if script.shape == shape:
                        value = script.runner(*args[3:])
                    else:
                        value = runtime.run_first(script, shape, nkeys, args)
                    ok = value.__class__ is not tuple  # (False, error table)
                    if not ok:
                        value = value[1]
                except LuaError as exc:  # an error in the error handler (out of memory...)
                    ok, value = False, runtime.outside_error(exc)
                finally:
                    engine.running = None
                    if propagators:
                        keyspace.propagators = propagators
                    if run.busy is not None:
                        run.busy.finish()
                runs = engine.runs = engine.runs + 1
                if runtime.memory_used() > runtime.collect_at or not runs & ACCOUNT_MASK:
                    engine.tidy(runtime)
                if ok and value.__class__ is bytes and not (collected or run.shutdown
                                                            or server.ready_keys):
                    return value
                return engine.reply(c, run, ok, value, collected)
            keys, argv = args[3:3 + nkeys], args[3 + nkeys:]
        else:
            keys, argv = split_keys(args, _BAD_COUNT)
            script = None
        if script is None:
            script = engine.scripts.get(args[1]) or engine.get(args[1])  # as sent, else any case
            if script is None:
                raise CommandError(NOSCRIPT)
        return engine.run(c, script, keys, argv, False)
    finally:
        if timed:
            server = engine.server
            if not server.loading:
                usec = int((perf_counter() - start) * 1000000)
                m = server.monitoring
                if m.histograms is not None:
                    counts = m.histograms.get("evalsha")
                    if counts is None:
                        counts = m.histograms["evalsha"] = [0] * monitoring.BUCKETS
                    bucket = usec.bit_length()
                    counts[bucket if bucket < monitoring.BUCKETS else -1] += 1
                if 0 <= m.slower_than <= usec:
                    m.slowlog_add(c, args, usec)


def run_many(engine: Any, c: Any, commands: List[List[bytes]], start: int,
             out: List[bytes]) -> int:
    """EVALSHA's run handler: how many of ``commands[start:]`` it answered."""
    server = engine.server
    if engine.running is not None or c.in_exec:
        return 0
    spec = server.command_table[b"evalsha"]
    scripts = engine.scripts
    runtime = engine.runtime
    sclient = engine.client
    keyspace = server.keyspace
    propagators = keyspace.propagators
    collected: List[Tuple[int, List[List[bytes]]]] = []
    mine = [engine.collector(collected)] if propagators else propagators
    oom_check = server.oom_check
    counts: Optional[List[int]] = None
    slower = -1
    m = server.monitoring
    timed = monitoring.self_timing
    if timed:
        slower = m.slower_than
        if m.histograms is not None:
            counts = m.histograms.get("evalsha")
            if counts is None:
                counts = m.histograms["evalsha"] = [0] * monitoring.BUCKETS
    last_bucket = monitoring.BUCKETS - 1
    name = commands[start][0]
    db = c.db
    ran = 0
    last: Any = None  # the run that ended the batch, finished after it
    keyspace.stage_db = None  # every write goes to the collector
    keyspace.propagators = mine
    server.oom_check = None  # each script checks its writes, as Redis's scriptVerifyOOM
    t0 = perf_counter()
    try:
        for args in islice(commands, start, None):
            n = len(args) - 3  # keys and arguments
            if n < 0 or args[0] != name:
                break
            nkeys = _NUMKEYS.get(args[2])
            if nkeys is None or nkeys > n or n > FIXED:
                break
            script = scripts.get(args[1])
            if script is None or script.flags is not None:
                break  # NOSCRIPT, another case, a shebang: the general path
            run = _Run()
            run.caller = c
            run.script = script
            run.keys = args[3:3 + nkeys]
            run.start = t0
            if oom_check is not None:
                engine.running = None
                keyspace.propagators = propagators  # evictions propagate as themselves
                try:
                    oom_check(c)
                except CommandError:
                    run.pre_oom = True
                keyspace.propagators = mine
            engine.running = run
            sclient.db = db  # the script's SELECT changed the private client's
            sclient.resp3 = False
            try:
                shape = n * 16 + nkeys
                if script.shape == shape:
                    value = script.runner(*args[3:])
                else:
                    value = runtime.run_first(script, shape, nkeys, args)
                ok = value.__class__ is not tuple  # (False, error table)
                if not ok:
                    value = value[1]
            except LuaError as exc:  # an error in the error handler (out of memory...)
                ok, value = False, runtime.outside_error(exc)
            ran += 1
            runs = engine.runs = engine.runs + 1
            if runtime.memory_used() > runtime.collect_at or not runs & ACCOUNT_MASK:
                engine.tidy(runtime)
            # (SHUTDOWN NOSAVE during a script comes through its busy state.)
            if collected or run.busy is not None or server.ready_keys:
                if run.busy is not None:
                    run.busy.finish()
                last = (run, ok, value, args)
                break
            if ok and value.__class__ is bytes:
                n = len(value)
                out += (BULK_HEADERS[n] if n < 4096 else b"$%d\r\n" % n, value, b"\r\n")
            else:
                _finish(engine, c, spec, run, ok, value, collected, out)
            t1 = perf_counter()
            if timed:
                usec = int((t1 - t0) * 1000000)
                if counts is not None:
                    bucket = usec.bit_length()
                    counts[bucket if bucket < last_bucket else last_bucket] += 1
                if 0 <= slower <= usec:
                    m.slowlog_add(c, args, usec)
            t0 = t1
    finally:
        engine.running = None
        server.oom_check = oom_check
        keyspace.propagators = propagators
    if last is not None:  # its effects and reply, with the propagators back
        run, ok, value, args = last
        _finish(engine, c, spec, run, ok, value, collected, out)
        if timed:
            m.record(c, "evalsha", args, int((perf_counter() - t0) * 1000000))
    return ran


def _finish(engine: Any, c: Any, spec: Any, run: Any, ok: bool, value: Any,
            collected: List[Tuple[int, List[List[bytes]]]], out: List[bytes]) -> None:
    """A run's effects and reply (:meth:`ScriptEngine.reply`) onto ``out``, errors
    counted as the dispatcher counts them (a failed command is not a call, and the
    dispatcher adds every command the run handler took to the calls)."""
    try:
        reply = engine.reply(c, run, ok, value, collected)
    except CommandError as exc:
        spec.failed += 1
        spec.calls -= 1
        count_error(engine.server, exc.text)
        out.append(b"-%s\r\n" % error_text(exc))
        return
    except Exception:  # a bug must not take the server down (as the dispatcher)
        log.exception("error running EVALSHA")
        spec.calls -= 1
        count_error(engine.server, "ERR")
        out.append(b"-ERR internal error running 'evalsha'\r\n")
        return
    encode_reply(reply, out, c.resp3)
