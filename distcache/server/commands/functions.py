"""Function commands: FUNCTION (LOAD, DELETE, FLUSH, LIST, DUMP, RESTORE, STATS, KILL,
HELP), FCALL and FCALL_RO.

Thin handlers over the function store (server/scripting/functions.py).
The subcommands that change the libraries bump ``keyspace.dirty``, so the
dispatcher sends them to the append-only log as they were given (Redis
propagates them so too). Without lupa they answer the scripting error,
except FUNCTION FLUSH, which tools send to any server.
"""
from __future__ import annotations

from typing import Any, List

from ...protocol import OK
from ..errors import CommandError
from ..glob import glob_match
from ..scripting import engine
from .table import command, container, help_reply

_FN = dict(group="scripting", since="7.0.0")
_SUB = dict(parent="function", **_FN)
_FCALL = "noscript stale skip_monitor no_mandatory_keys movablekeys"


def _store(c: Any) -> Any:
    return engine(c.server).functions


def _changed(c: Any) -> None:
    c.server.keyspace.dirty += 1  # the log and replicas get the command as it was


@command("fcall", -3, _FCALL, complexity="Depends on the function that is executed.", **_FN)
def fcall(c: Any, args: List[bytes]) -> Any:
    """Invoke a function."""
    return _store(c).call(c, args, readonly=False)


@command("fcall_ro", -3, "readonly " + _FCALL,
         complexity="Depends on the function that is executed.", **_FN)
def fcall_ro(c: Any, args: List[bytes]) -> Any:
    """Invoke a read-only function."""
    return _store(c).call(c, args, readonly=True)


container("function", -2, "", group="scripting", summary="A container for function commands.",
          since="7.0.0")


@command("load", -3, "write denyoom noscript", complexity="O(1) (considering compilation time "
         "is redundant)", **_SUB)
def function_load(c: Any, args: List[bytes]) -> Any:
    """Create a library."""
    replace = False
    for option in args[2:-1]:
        if option.upper() != b"REPLACE":
            raise CommandError(f"ERR Unknown option given: {option.decode('utf-8', 'replace')}")
        replace = True
    name = _store(c).load(args[-1], replace)
    _changed(c)
    return name


@command("delete", 3, "write noscript", **_SUB)
def function_delete(c: Any, args: List[bytes]) -> Any:
    """Delete a library and its functions."""
    _store(c).delete(args[2])
    _changed(c)
    return OK


@command("flush", -2, "write noscript", complexity="O(N) where N is the number of functions "
         "deleted", **_SUB)
def function_flush(c: Any, args: List[bytes]) -> Any:
    """Delete all libraries and functions."""
    if len(args) > 3:  # addReplySubcommandSyntaxError
        raise CommandError("ERR unknown subcommand or wrong number of arguments for "
                           f"'{args[1].decode('utf-8', 'replace')}'. Try FUNCTION HELP.")
    if len(args) == 3 and args[2].upper() not in (b"ASYNC", b"SYNC"):
        raise CommandError("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    eng = engine(c.server, create=False)
    if eng is not None:
        eng.functions.flush()
    else:  # without lupa: the saved libraries' code goes all the same
        c.server.keyspace.function_codes = []
    _changed(c)
    return OK


@command("list", -2, "noscript", complexity="O(N) where N is the number of functions", **_SUB)
def function_list(c: Any, args: List[bytes]) -> Any:
    """Information about libraries and their functions."""
    pattern = None
    withcode = False
    i = 2
    while i < len(args):
        arg = args[i].lower()
        if not withcode and arg == b"withcode":
            withcode = True
        elif pattern is None and arg == b"libraryname":
            if i >= len(args) - 1:
                raise CommandError("ERR library name argument was not given")
            i += 1
            pattern = args[i]
        else:
            raise CommandError(f"ERR Unknown argument {args[i].decode('utf-8', 'replace')}")
        i += 1
    libraries = _store(c).listing(withcode)
    if pattern is not None:
        libraries = [lib for lib in libraries
                     if glob_match(pattern, lib[b"library_name"], nocase=True)]
    return libraries


@command("dump", 2, "noscript", complexity="O(N) where N is the number of functions", **_SUB)
def function_dump(c: Any, args: List[bytes]) -> Any:
    """A serialized payload of every library."""
    return _store(c).dump()


@command("restore", -3, "write denyoom noscript",
         complexity="O(N) where N is the number of functions on the payload", **_SUB)
def function_restore(c: Any, args: List[bytes]) -> Any:
    """Restore libraries from a FUNCTION DUMP payload."""
    policy = b"APPEND"
    if len(args) > 3:
        policy = args[3].upper()
        if len(args) > 4 or policy not in (b"FLUSH", b"APPEND", b"REPLACE"):
            raise CommandError("ERR Wrong restore policy given, value should be either FLUSH, "
                               "APPEND or REPLACE.")
    _store(c).restore(args[2], policy)
    _changed(c)
    return OK


@command("stats", 2, "noscript allow_busy", complexity="O(1)", **_SUB)
def function_stats(c: Any, args: List[bytes]) -> Any:
    """The function running now and the engines' counts."""
    return _store(c).stats()


@command("kill", 2, "noscript allow_busy", complexity="O(1)", **_SUB)
def function_kill(c: Any, args: List[bytes]) -> Any:
    """Stop the running function if it has not written (busy.py answers while one runs)."""
    raise CommandError("NOTBUSY No scripts in execution right now.")


@command("help", 2, "loading stale", complexity="O(1)", **_SUB)
def function_help(c: Any, args: List[bytes]) -> Any:
    """Subcommands of FUNCTION."""
    return help_reply("FUNCTION", HELP)


HELP = [
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored "
    "using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a "
    "restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, "
    "abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, "
    "replace the old",
    "      libraries with the new libraries (notice that even on this option there is a "
    "chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
]
