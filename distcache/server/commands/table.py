"""The command table: every command's name, arity, flags and key positions.

Handlers live in per-type modules and register themselves here with
``@command``. The dispatcher checks arity, flags and authentication once,
from this table, for every command; COMMAND INFO/DOCS answer from it too.
Flags are Redis's names, plus ``not_key``: the declared key positions hold
names that are not keys (shard channels), as Redis's NOT_KEY key specs.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple

Handler = Callable[[Any, List[bytes]], Any]
#: (client, commands, start, out) -> how many of commands[start:] it ran.
RunHandler = Callable[[Any, List[List[bytes]], int, List[bytes]], int]


class CommandSpec:
    """Metadata for one command or subcommand (``client|id``)."""

    __slots__ = ("name", "fullname", "arity", "flags", "first_key", "last_key", "step",
                 "handler", "subcommands", "group", "summary", "since", "complexity",
                 "write", "readonly", "denyoom", "no_auth", "loading_ok", "no_multi",
                 "pubsub_ok", "key_positions", "calls", "usec", "failed", "parent", "run_handler")

    def __init__(self, name: str, arity: int, flags: FrozenSet[str], keys: Tuple[int, int, int],
                 handler: Optional[Handler], group: str, summary: str, since: str,
                 complexity: str, parent: Optional["CommandSpec"] = None) -> None:
        self.name = name
        self.parent = parent
        self.fullname = f"{parent.name}|{name}" if parent else name
        self.arity = arity
        self.flags = flags
        self.first_key, self.last_key, self.step = keys
        self.handler = handler
        self.subcommands: Dict[bytes, CommandSpec] = {}
        self.group = group
        self.summary = summary
        self.since = since
        self.complexity = complexity
        self.write = "write" in flags
        self.readonly = "readonly" in flags
        self.denyoom = "denyoom" in flags
        self.no_auth = "no_auth" in flags
        self.loading_ok = "loading" in flags
        self.no_multi = "no_multi" in flags
        self.pubsub_ok = "pubsub_ok" in flags
        self.calls = 0
        self.usec = 0
        self.failed = 0
        #: Optional run handler (see :func:`runs_of`).
        self.run_handler: Optional[RunHandler] = None

    def keys_of(self, args: List[bytes]) -> List[bytes]:
        """The key arguments of a call, from the declared positions."""
        if not self.first_key:
            return []
        last = self.last_key if self.last_key >= 0 else len(args) + self.last_key
        return args[self.first_key:last + 1:self.step]


#: name (lowercase str) -> spec; the single table every lookup goes through.
COMMANDS: Dict[str, CommandSpec] = {}


def command(name: str, arity: int, flags: str = "", keys: Tuple[int, int, int] = (0, 0, 0),
            group: str = "generic", summary: str = "", since: str = "1.0.0",
            complexity: str = "O(1)", parent: Optional[str] = None
            ) -> Callable[[Handler], Handler]:
    """Register a handler under ``name`` (``parent`` makes it a subcommand)."""

    def register(handler: Handler) -> Handler:
        owner = COMMANDS[parent] if parent else None
        spec = CommandSpec(name, arity, frozenset(flags.split()), keys, handler, group,
                           summary or (handler.__doc__ or "").strip().split("\n")[0],
                           since, complexity, owner)
        if owner is not None:
            owner.subcommands[name.encode()] = spec
        else:
            COMMANDS[name] = spec
        return handler

    return register


def runs_of(name: str) -> Callable[[RunHandler], RunHandler]:
    """Register a run handler for ``name``: it runs the plain form of the command
    for a run of consecutive requests in one call, appending their replies.

    A pipelined GET or SET costs about 10k instructions, and the dispatcher's
    checks plus two Python calls are a third of them. The dispatcher hands over
    a run only when no per-command gate applies but the memory limit and MISCONF;
    the handler stops (returning how many it ran) at the first request that is
    not its plain form, which then takes the general path. So a run handler
    needs no error handling, and ``handler`` stays the reference.
    """
    def register(run_handler: RunHandler) -> RunHandler:
        COMMANDS[name].run_handler = run_handler
        return run_handler

    return register


def container(name: str, arity: int = -2, flags: str = "", group: str = "server",
              summary: str = "", since: str = "2.0.0") -> None:
    """Register a command that only dispatches to subcommands (CLIENT, CONFIG)."""
    COMMANDS[name] = CommandSpec(name, arity, frozenset(flags.split()), (0, 0, 0), None,
                                 group, summary, since, "Depends on subcommand.")


def help_reply(container: str, lines: List[str]) -> List[Any]:
    """A ``<CONTAINER> HELP`` reply: Redis's header line, then ``lines``, as statuses."""
    from ...protocol import Status
    header = f"{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    return [Status(line.encode()) for line in [header] + lines]


def lookup_table() -> Dict[bytes, CommandSpec]:
    """Bytes-keyed view of the table, with common spellings pre-filled for speed."""
    table: Dict[bytes, CommandSpec] = {}
    for name, spec in COMMANDS.items():
        table[name.encode()] = spec
        table[name.upper().encode()] = spec
        table[name.capitalize().encode()] = spec
        for sub_name, sub in list(spec.subcommands.items()):
            spec.subcommands[sub_name.upper()] = sub
    return table
