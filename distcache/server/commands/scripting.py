"""Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT (FUNCTION: functions.py).

Thin handlers over the engine (server/scripting/): they parse arguments
and hand over; no Lua object passes through here. Without lupa the engine
is missing and these commands answer an error naming the ``lua`` extra,
except SCRIPT FLUSH and SCRIPT EXISTS, which tools send to any server.
"""
from __future__ import annotations

from typing import Any, List

from ...protocol import OK
from ..errors import CommandError
from ..scripting import engine
from .table import command, container, help_reply, runs_of

_EVAL = "noscript stale skip_monitor no_mandatory_keys movablekeys"
_SCR = dict(group="scripting", since="2.6.0", complexity="Depends on the script that is executed.")


# The engine's eval, without a frame of ours between (an EVALSHA's cost is mostly frames).

@command("eval", -3, _EVAL, **_SCR)
def eval_(c: Any, args: List[bytes]) -> Any:
    """Run a Lua script."""
    return (c.server.__dict__.get("_script_engine") or engine(c.server)).eval(
        c, args, False, False)


@command("evalsha", -3, _EVAL, **_SCR)
def evalsha(c: Any, args: List[bytes]) -> Any:
    """Run a cached Lua script by its SHA1."""
    return (c.server.__dict__.get("_script_engine") or engine(c.server)).evalsha(c, args)


@runs_of("evalsha")
def evalsha_run(c: Any, commands: List[List[bytes]], start: int, out: List[bytes]) -> int:
    """Consecutive EVALSHAs of cached scripts (scripting/evalsha.py)."""
    return (c.server.__dict__.get("_script_engine") or engine(c.server)).run_many(
        c, commands, start, out)


@command("eval_ro", -3, "readonly " + _EVAL, group="scripting", since="7.0.0",
         complexity=_SCR["complexity"])
def eval_ro(c: Any, args: List[bytes]) -> Any:
    """Run a read-only Lua script."""
    return engine(c.server).eval(c, args, False, True)


@command("evalsha_ro", -3, "readonly " + _EVAL, group="scripting", since="7.0.0",
         complexity=_SCR["complexity"])
def evalsha_ro(c: Any, args: List[bytes]) -> Any:
    """Run a cached read-only Lua script by its SHA1."""
    return engine(c.server).eval(c, args, True, True)


# -- SCRIPT -------------------------------------------------------------------------

container("script", -2, "", group="scripting", summary="Manage the script cache.",
          since="2.6.0")
_SUB = dict(parent="script", group="scripting", since="2.6.0")


@command("load", 3, "noscript stale", **_SUB)
def script_load(c: Any, args: List[bytes]) -> Any:
    """Load a script into the cache without running it."""
    return engine(c.server).load(args[2]).sha


@command("exists", -3, "noscript", complexity="O(N) with N the number of scripts to check",
         **_SUB)
def script_exists(c: Any, args: List[bytes]) -> Any:
    """Whether scripts are in the cache."""
    eng = engine(c.server, create=False)
    return [int(eng is not None and eng.get(sha) is not None) for sha in args[2:]]


def _flush_mode(args: List[bytes], error: str) -> None:
    if len(args) > 3 or (len(args) == 3 and args[2].upper() not in (b"ASYNC", b"SYNC")):
        raise CommandError(error)


@command("flush", -2, "noscript", complexity="O(N) with N the number of scripts in cache",
         **_SUB)
def script_flush(c: Any, args: List[bytes]) -> Any:
    """Remove every script from the cache."""
    _flush_mode(args, "ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    eng = engine(c.server, create=False)
    if eng is not None:
        eng.flush()
    return OK


@command("kill", 2, "noscript allow_busy", **_SUB)
def script_kill(c: Any, args: List[bytes]) -> Any:
    """Stop the running script if it has not written."""
    raise CommandError("NOTBUSY No scripts in execution right now.")


@command("help", 2, "loading stale", **_SUB)
def script_help(c: Any, args: List[bytes]) -> Any:
    """Subcommands of SCRIPT."""
    return help_reply("SCRIPT", [
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help."])
