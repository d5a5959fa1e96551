"""The command table: every command's name, arity, flags and key positions.

Handlers live in per-type modules and register themselves here with
``@command``. The dispatcher checks arity, flags and authentication once,
from this table, for every command; COMMAND INFO/DOCS answer from it too.
Flags are Redis's names, plus ``not_key``: the declared key positions hold
names that are not keys (shard channels), as Redis's NOT_KEY key specs.

Two more columns serve ACL (``server/acl.py``) and COMMAND INFO: a command's
ACL categories, derived from its group and flags as Redis's are (plus the
few Redis lists by hand, :data:`EXTRA_CATEGORIES`), and its key specs: where
its keys are and whether it reads or writes them (:data:`KEY_ACCESS`).
tests/server/test_acl_differential.py checks both against redis-server.
"""
from __future__ import annotations

import itertools
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple

Handler = Callable[[Any, List[bytes]], Any]
#: (client, commands, start, out) -> how many of commands[start:] it ran.
RunHandler = Callable[[Any, List[List[bytes]], int, List[bytes]], int]


#: ACL categories in Redis's order (ACL CAT lists them so).
ACL_CATEGORIES = ("keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
                  "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
                  "blocking", "dangerous", "connection", "transaction", "scripting")
#: The category a command's group gives it.
_GROUP_CATEGORY = {"string": "string", "generic": "keyspace", "connection": "connection",
                   "bitmap": "bitmap", "hyperloglog": "hyperloglog",
                   "list": "list", "hash": "hash", "set": "set", "sorted-set": "sortedset", "geo": "geo",
                   "transactions": "transaction", "scripting": "scripting", "stream": "stream"}
#: Categories Redis gives these commands beyond their group's and their flags'
#: (``-name``: one their group would give that Redis does not).
EXTRA_CATEGORIES = {"sort": "-keyspace set sortedset list dangerous", "restore": "dangerous", "migrate": "dangerous",
                    "sort_ro": "-keyspace set sortedset list dangerous","dbsize": "keyspace", "flushall": "keyspace dangerous",
                    "flushdb": "keyspace dangerous", "swapdb": "keyspace dangerous",
                    "keys": "dangerous", "info": "dangerous", "command": "connection",
                    "lastsave": "admin dangerous", "wait": "-keyspace connection",
                    "role": "admin dangerous"}

#: Key access flags of a key spec: Redis's ACCESS (read), INSERT/DELETE/UPDATE (write).
KEY_READ, KEY_WRITE = 1, 2
#: Key specs where the default (readonly: R, write: W, else neither) is not Redis's.
#: One token per spec, ``-`` for neither flag: one token covers the declared
#: positions; with several, each but the last covers one position in turn and the
#: last the rest. ``#n``: a movable spec, the key count at argument n, keys after;
#: ``@n``: the one key at argument n.
KEY_ACCESS = {
    **dict.fromkeys("exists type touch strlen hexists hlen hstrlen llen sismember scard xlen "
                    "zcard watch memory|usage object|encoding object|refcount object|idletime "
                    "object|freq".split(), "-"),
    **dict.fromkeys("move getset getdel getex incr decr incrby decrby incrbyfloat hincrby "
                    "hincrbyfloat lpop rpop blpop brpop spop zincrby zpopmin zpopmax bzpopmin "
                    "bzpopmax".split(), "RW"),
    **dict.fromkeys("rename renamenx lmove rpoplpush blmove brpoplpush smove".split(), "RW W"),
    **dict.fromkeys("sinterstore sunionstore sdiffstore zrangestore".split(), "W R"),
    **dict.fromkeys("zunionstore zinterstore zdiffstore".split(), "W@1 R#2"),
    **dict.fromkeys("sintercard zunion zinter zdiff zintercard".split(), "R#1"),
    "set": "RW", "copy": "R W", "setbit": "RW", "bitfield": "RW", "bitop": "W R",
    "eval": "RW#2", "evalsha": "RW#2", "eval_ro": "R#2", "evalsha_ro": "R#2", "fcall": "RW#2",
    "fcall_ro": "R#2",
    "pfmerge": "RW R", "pfdebug": "R", "sort": "R", "migrate": "RW", "lmpop": "RW#1", "zmpop": "RW#1", "blmpop": "RW#2",
    "bzmpop": "RW#2", "georadius": "R", "georadiusbymember": "R", "geosearchstore": "W R",
}
#: Commands whose keys only a look at the call can find (Redis's getkeys procs, for
#: key specs of type unknown or keyword: SORT's STORE, MIGRATE's KEYS): command ->
#: args -> every (argument index, access) of the call, in place of the key specs.
KEY_FINDERS: Dict[str, Callable[[List[bytes]], List[Tuple[int, int]]]] = {}
#: Commands whose key access depends on the call (Redis's VARIABLE_FLAGS): the
#: access without the option given here (from the argument index given on).
VARIABLE_KEY_ACCESS = {"set": (b"GET", 3, KEY_WRITE)}
#: (access, first index, last index (negative: from the end), step, keynum spec?)
KeySpec = Tuple[int, int, int, int, bool]
_ids = itertools.count()


def _acl_categories(name: str, flags: FrozenSet[str], group: str,
                    parent: Optional["CommandSpec"]) -> FrozenSet[str]:
    """Redis's categories for a command: its group's, its flags', and any extras."""
    found = {_GROUP_CATEGORY.get(group, "")}
    for extra in EXTRA_CATEGORIES.get(parent.name if parent else name, "").split():
        if extra.startswith("-"):
            found.discard(extra[1:])
        else:
            found.add(extra)
    for flag, category in (("write", "write"), ("readonly", "read"), ("pubsub", "pubsub"),
                           ("blocking", "blocking")):
        if flag in flags:
            found.add(category)
    if "scripting" in found:  # as Redis's setImplicitACLCategories: never @read
        found.discard("read")
    found.add("fast" if "fast" in flags else "slow")
    if "admin" in flags:
        found.update(("admin", "dangerous"))
    found.discard("")
    return frozenset(found)


def _key_specs(spec: "CommandSpec") -> List[KeySpec]:
    """A command's key specs, from its positions and :data:`KEY_ACCESS`."""
    if "not_key" in spec.flags:  # shard channels: keys for cluster routing only
        return []
    tokens = KEY_ACCESS.get(spec.fullname)
    if tokens is None:
        if not spec.first_key:
            return []
        tokens = "R" if spec.readonly else "W" if spec.write else "-"
    specs: List[KeySpec] = []
    words = tokens.split()
    for i, token in enumerate(words):
        access_text, _, keynum = token.partition("#")
        access_text, _, at = access_text.partition("@")
        access = (KEY_READ if "R" in access_text else 0) | (KEY_WRITE if "W" in access_text else 0)
        if at:
            specs.append((access, int(at), int(at), 1, False))
        elif keynum:
            specs.append((access, int(keynum), 0, 1, True))
        elif i < len(words) - 1:
            specs.append((access, spec.first_key + i, spec.first_key + i, 1, False))
        else:
            specs.append((access, spec.first_key + i, spec.last_key, spec.step, False))
    return specs


def keys_with_access(spec: "CommandSpec", args: List[bytes]) -> List[Tuple[int, int]]:
    """(argument index, access flags) of every key in a call, as Redis's key specs find
    them; a malformed key count finds no keys (the command refuses the call anyway)."""
    finder = KEY_FINDERS.get(spec.fullname)
    if finder is not None:
        return finder(args)
    found: List[Tuple[int, int]] = []
    argc = len(args)
    variable = VARIABLE_KEY_ACCESS.get(spec.fullname)
    if variable is not None:
        option, start, plain = variable
        if all(arg.upper() != option for arg in args[start:]):
            return [(spec.first_key, plain)]
    for access, begin, last, step, keynum in spec.key_specs:
        if keynum:
            try:
                count = int(args[begin]) if begin < argc else -1
            except ValueError:
                count = -1
            if count < 0:  # as Redis: an invalid spec finds no keys at all
                return []
            if begin + count >= argc:  # too few arguments: the command will say so
                continue
            found.extend((i, access) for i in range(begin + 1, begin + 1 + count))
            continue
        stop = last if last >= 0 else argc + last
        found.extend((i, access) for i in range(begin, min(stop, argc - 1) + 1, step))
    return found


class CommandSpec:
    """Metadata for one command or subcommand (``client|id``)."""

    __slots__ = ("name", "fullname", "arity", "flags", "first_key", "last_key", "step",
                 "handler", "subcommands", "group", "summary", "since", "complexity",
                 "write", "readonly", "denyoom", "no_auth", "loading_ok", "no_multi",
                 "pubsub_ok", "key_positions", "calls", "usec", "failed", "parent", "run_handler",
                 "id", "acl_categories", "key_specs", "base_handler", "base_run_handler")

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
        #: The registered handlers; ``handler``/``run_handler`` are these under the
        #: layers in force (see :func:`set_layer`).
        self.base_handler = handler
        self.base_run_handler: Optional[RunHandler] = None
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
        #: This command's bit in an ACL selector's allowed commands.
        self.id = next(_ids)
        self.acl_categories = _acl_categories(name, flags, group, parent) if handler \
            else frozenset(["slow"])  # a container: only its subcommands run
        self.key_specs = _key_specs(self)

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
        spec = COMMANDS[name]
        spec.run_handler = spec.base_run_handler = run_handler
        return run_handler

    return register


#: A layer over the handlers: given a spec and the handler under it, the handler to
#: run instead, or None to leave that command alone.
Layer = Callable[[CommandSpec, Handler], Optional[Handler]]
#: Layers in force, by name: (order, layer); lower orders sit closer to the handler.
_LAYERS: Dict[str, Tuple[int, Layer]] = {}


def set_layer(name: str, order: int, layer: Optional[Layer]) -> None:
    """Put ``layer`` over the registered handlers (None takes it off), and rebuild
    every command's handler from its registered one through the layers in order.

    Features that cost something per command only while they are on (keyspace
    events, the slow log and MONITOR, refusing writes without enough replicas)
    change the table this way, so they compose, and with none on every command
    runs its plain handler and run handler. A layered handler with a true
    ``keeps_runs`` attribute leaves the run handler in place (its runs need not
    pass that layer). The table is the process's.
    """
    if _LAYERS.get(name, (order, None)) == (order, layer):
        return  # no change (a layer that is off stays off)
    if layer is None:
        _LAYERS.pop(name)
    else:
        _LAYERS[name] = (order, layer)
    layers = [layer for _, layer in sorted(_LAYERS.values(), key=lambda o: o[0])]
    for spec in all_specs():
        handler, run_handler = spec.base_handler, spec.base_run_handler
        if handler is not None:
            for one in layers:
                layered = one(spec, handler)
                if layered is not None:
                    handler = layered
                    if not getattr(layered, "keeps_runs", False):
                        run_handler = None  # each call must pass the layer
        spec.handler, spec.run_handler = handler, run_handler


def all_specs() -> List[CommandSpec]:
    """Every command and subcommand in the table."""
    specs: Dict[int, CommandSpec] = {}
    for spec in COMMANDS.values():
        specs[id(spec)] = spec
        for sub in spec.subcommands.values():
            specs[id(sub)] = sub
    return list(specs.values())


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
