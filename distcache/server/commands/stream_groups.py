"""Consumer groups: XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM.

A group's pending entries list and its consumers' share :class:`Nack` s, as in
Redis. Every change is logged in the idempotent form Redis propagates: a
delivery or a claim as ``XCLAIM key group consumer 0 id TIME ms RETRYCOUNT n
FORCE JUSTID LASTID id``, a NOACK read as ``XGROUP SETID ... ENTRIESREAD``, a
consumer created on the way as ``XGROUP CREATECONSUMER``. Unlike Redis, a
history read (XREADGROUP with an id) is logged too, so a restart restores
delivery counts exactly.
"""
from __future__ import annotations

from itertools import islice
from typing import Any, List, Optional, Tuple

from ...protocol import NULL_ARRAY, OK, Raw, ReplyError
from ..errors import CommandError, SYNTAX
from ..notify import STREAM, notify
from ..types.blocking import signal_ready
from ..types.stream import INVALID_READ, Stream
from ..types.stream_node import MAX_ID, fmt_id, wrap64
from ..types.stream_pel import Consumer, Group, Nack, wall_ms
from .args import to_int
from .stream_read import (BLOCKED_DEFAULT_COUNT, ReadArgs, keyed_reply, stream_waiter,
                          xread_keys)
from .streams import (dirtied, entries_reply, entry_reply, interval, parse_id, stream_of,
                      strict_id)
from .table import KEY_FINDERS, command, container, help_reply

_STREAM = dict(group="stream")
_XGROUP = dict(group="stream", parent="xgroup")


def _name(arg: bytes) -> str:
    return arg.decode("utf-8", "replace")


def _subcommand_error(args: List[bytes]) -> CommandError:
    return CommandError(f"ERR unknown subcommand or wrong number of arguments for "
                        f"'{_name(args[1])}'. Try {args[0].decode().upper()} HELP.")


def _nogroup(key: bytes, group: bytes) -> CommandError:
    return CommandError(f"NOGROUP No such key '{_name(key)}' or consumer group '{_name(group)}'")


def consumer_of(db: Any, key: bytes, group: Group, name: bytes, now: int,
                created: List[bytes]) -> Consumer:
    """The consumer ``name``, made if needed (its name goes to ``created``, with
    Redis's ``xgroup-createconsumer`` event); seen now."""
    consumer = group.consumers.get(name)
    if consumer is None:
        consumer = group.consumers[name] = Consumer(name, now)
        created.append(name)
        notify(db, STREAM, b"xgroup-createconsumer", key)
    consumer.seen_time = now
    return consumer


def xclaim_log(key: bytes, group: Group, entry_id: int, nack: Nack) -> List[bytes]:
    """Redis's streamPropagateXCLAIM: an idempotent XCLAIM of one pending entry."""
    return [b"XCLAIM", key, group.name, nack.consumer.name, b"0", fmt_id(entry_id), b"TIME",
            b"%d" % nack.delivery_time, b"RETRYCOUNT", b"%d" % nack.delivery_count, b"FORCE",
            b"JUSTID", b"LASTID", fmt_id(group.last_id)]


def claims_logged(db: Any, log: List[Any]) -> List[List[bytes]]:
    """The commands to log, with each (key, group, id, nack) made an XCLAIM, only
    when something logs (it is most of a delivery's cost otherwise)."""
    if not db.keyspace.propagators:
        return [[b"XREADGROUP"]]  # never used: nobody listens
    return [x if x.__class__ is list else xclaim_log(*x) for x in log]


def setid_log(key: bytes, group: Group) -> List[bytes]:
    return [b"XGROUP", b"SETID", key, group.name, fmt_id(group.last_id), b"ENTRIESREAD",
            b"%d" % group.entries_read]


def _release(group: Group, entry_id: int) -> None:
    nack = group.pel.remove(entry_id)
    if nack is not None:
        nack.consumer.pel.remove(entry_id)


# -- XGROUP ------------------------------------------------------------------------------

container("xgroup", -2, group="stream", summary="A container for consumer groups commands",
          since="5.0.0")


def _xgroup_target(c: Any, args: List[bytes], needs_group: bool, mkstream: bool = False
                   ) -> Tuple[Optional[Stream], Optional[Group]]:
    s = stream_of(c.db, args[2], counted=False)
    if s is None:
        if mkstream:
            return None, None
        raise CommandError("ERR The XGROUP subcommand requires the key to exist. Note that "
                           "for CREATE you may want to use the MKSTREAM option to create an "
                           "empty stream automatically.")
    group = s.groups.get(args[3])
    if group is None and needs_group:
        raise CommandError(f"NOGROUP No such consumer group '{_name(args[3])}' for key name "
                           f"'{_name(args[2])}'")
    return s, group


def _entries_read_arg(arg: bytes) -> int:
    value = to_int(arg)
    if value < 0 and value != INVALID_READ:
        raise CommandError("ERR value for ENTRIESREAD must be positive or -1")
    return value


@command("create", -5, "write denyoom", (2, 2, 1), since="5.0.0", **_XGROUP)
def xgroup_create(c: Any, args: List[bytes]) -> Any:
    """Create a consumer group (MKSTREAM, ENTRIESREAD)."""
    mkstream = False
    entries_read = INVALID_READ
    i = 5
    while i < len(args):
        opt = args[i].lower()
        if opt == b"mkstream":
            mkstream = True
            i += 1
        elif opt == b"entriesread" and i + 1 < len(args):
            entries_read = _entries_read_arg(args[i + 1])
            i += 2
        else:
            raise _subcommand_error(args)
    s, _ = _xgroup_target(c, args, False, mkstream)
    if len(args) > 8:
        raise _subcommand_error(args)
    if args[4] == b"$":
        last = s.last_id if s is not None else 0
    else:
        last = strict_id(args[4])
    db = c.db
    if s is None:
        s = Stream()
        db.set(args[2], s)  # the one part Redis signals as a modified key
    elif args[3] in s.groups:
        raise CommandError("BUSYGROUP Consumer Group name already exists")
    else:
        dirtied(db)
    s.groups[args[3]] = Group(args[3], last, entries_read)
    s.groups = dict(sorted(s.groups.items()))
    notify(db, STREAM, b"xgroup-create", args[2])
    if args[4] == b"$":  # logged with the id it meant
        c.rewrite = [[b"XGROUP", b"CREATE", args[2], args[3], fmt_id(last), b"ENTRIESREAD",
                      b"%d" % entries_read] + ([b"MKSTREAM"] if mkstream else [])]
    return OK


@command("setid", -5, "write", (2, 2, 1), since="5.0.0", **_XGROUP)
def xgroup_setid(c: Any, args: List[bytes]) -> Any:
    """Set a group's last delivered id (ENTRIESREAD)."""
    s, group = _xgroup_target(c, args, True)
    if len(args) not in (5, 7):
        raise _subcommand_error(args)
    last = s.last_id if args[4] == b"$" else parse_id(args[4])[0]
    entries_read = INVALID_READ
    if len(args) == 7:
        if args[5].lower() != b"entriesread":
            raise _subcommand_error(args)
        entries_read = _entries_read_arg(args[6])
    group.last_id = last
    group.entries_read = entries_read
    dirtied(c.db)
    notify(c.db, STREAM, b"xgroup-setid", args[2])
    c.rewrite = [setid_log(args[2], group)]
    return OK


@command("destroy", 4, "write", (2, 2, 1), since="5.0.0", **_XGROUP)
def xgroup_destroy(c: Any, args: List[bytes]) -> Any:
    """Delete a consumer group."""
    s, group = _xgroup_target(c, args, False)
    if group is None:
        return 0
    del s.groups[args[3]]
    db = c.db
    dirtied(db)
    notify(db, STREAM, b"xgroup-destroy", args[2])
    if db.blocking:  # its blocked readers get NOGROUP
        signal_ready(c, db, args[2])
    return 1


@command("createconsumer", 5, "write denyoom", (2, 2, 1), since="6.2.0", **_XGROUP)
def xgroup_createconsumer(c: Any, args: List[bytes]) -> Any:
    """Create a consumer in a group."""
    s, group = _xgroup_target(c, args, True)
    if args[4] in group.consumers:
        return 0
    group.consumers[args[4]] = Consumer(args[4], wall_ms())
    group.consumers = dict(sorted(group.consumers.items()))
    dirtied(c.db)
    notify(c.db, STREAM, b"xgroup-createconsumer", args[2])
    return 1


@command("delconsumer", 5, "write", (2, 2, 1), since="5.0.0", **_XGROUP)
def xgroup_delconsumer(c: Any, args: List[bytes]) -> Any:
    """Delete a consumer; returns how many entries it had pending."""
    s, group = _xgroup_target(c, args, True)
    consumer = group.consumers.pop(args[4], None)
    if consumer is None:
        return 0
    pending = list(consumer.pel.ids_from())
    for entry_id in pending:
        group.pel.remove(entry_id)
    dirtied(c.db)
    notify(c.db, STREAM, b"xgroup-delconsumer", args[2])
    return len(pending)


_XGROUP_HELP = [
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
]


@command("help", 2, "loading stale", since="5.0.0", **_XGROUP)
def xgroup_help(c: Any, args: List[bytes]) -> Any:
    """Show XGROUP's subcommands."""
    return help_reply("XGROUP", _XGROUP_HELP)


# -- XREADGROUP --------------------------------------------------------------------------

def _sorted_insert(group: Group, created: List[bytes]) -> None:
    if created:
        group.consumers = dict(sorted(group.consumers.items()))


def deliver_new(c: Any, key: bytes, s: Stream, group: Group, consumer: Consumer, count: int,
                noack: bool, now: int, log: List[List[bytes]]) -> Raw:
    """Entries after the group's last id: deliver them to ``consumer`` (Redis's
    streamReplyWithRange with a group)."""
    entries = list(s.range(group.last_id + 1, MAX_ID, count))
    moved = False
    for entry_id, _ in entries:
        if entry_id > group.last_id:
            if group.entries_read != INVALID_READ and not s.has_tombstones(entry_id):
                group.entries_read = wrap64(group.entries_read + 1)
            elif s.entries_added:
                group.entries_read = s.estimate_read(entry_id)
            group.last_id = entry_id
            moved = True
        if noack:
            continue
        nack = group.pel.get(entry_id)
        if nack is None:
            nack = Nack(consumer, now)
            group.pel.add(entry_id, nack)
        else:
            nack.consumer.pel.remove(entry_id)
            nack.consumer, nack.delivery_time, nack.delivery_count = consumer, now, 1
        consumer.pel.add(entry_id, nack)
        log.append((key, group, entry_id, nack))  # an XCLAIM, built if anything logs
    if noack and moved:
        log.append(setid_log(key, group))
    return entries_reply(entries)


def deliver_history(c: Any, key: bytes, s: Stream, group: Group, consumer: Consumer,
                    start: int, count: int, now: int, log: List[List[bytes]]) -> Raw:
    """The consumer's pending entries from ``start`` (deleted ones with nil fields)."""
    ids = list(islice(consumer.pel.ids_from(start), count or None))
    null = b"_\r\n" if c.resp3 else b"*-1\r\n"
    parts = []
    for entry_id in ids:
        fields = s.find(entry_id)
        if fields is None:
            parts.append(entry_reply(entry_id, null))
            continue
        nack = consumer.pel.items[entry_id]
        nack.delivery_time = now
        nack.delivery_count = wrap64(nack.delivery_count + 1)
        parts.append(entry_reply(entry_id, fields))
        log.append((key, group, entry_id, nack))
    return Raw(b"*%d\r\n%s" % (len(parts), b"".join(parts)))


@command("xreadgroup", -7, "write blocking movablekeys", since="5.0.0", complexity="O(M)",
         **_STREAM)
def xreadgroup(c: Any, args: List[bytes]) -> Any:
    """Read from streams as a consumer of a group (COUNT, BLOCK, NOACK, ``>``)."""
    opts = ReadArgs(c, args, True)
    db = c.db
    gname = opts.group
    groups: List[Group] = []
    after: List[Optional[int]] = []  # None: ">"
    for key, arg in zip(opts.keys, opts.ids):
        s = stream_of(db, key, counted=False)
        group = s.groups.get(gname) if s is not None else None
        if group is None:
            raise CommandError(f"NOGROUP No such key '{_name(key)}' or consumer group "
                               f"'{_name(gname)}' in XREADGROUP with GROUP option")
        groups.append(group)
        if arg == b"$":
            raise CommandError("ERR The $ ID is meaningless in the context of XREADGROUP: you "
                               "want to read the history of this consumer by specifying a "
                               "proper ID, or use the > ID to get new messages. The $ ID would "
                               "just return an empty result set.")
        after.append(None if arg == b">" else strict_id(arg))
    now = wall_ms()
    found = []
    log: List[List[bytes]] = []
    for key, group, start in zip(opts.keys, groups, after):
        s = stream_of(db, key)
        if start is None and s.top() <= group.last_id:
            continue
        created: List[bytes] = []
        consumer = consumer_of(db, key, group, opts.consumer, now, created)
        log += [[b"XGROUP", b"CREATECONSUMER", key, gname, name] for name in created]
        _sorted_insert(group, created)
        if start is None:
            reply = deliver_new(c, key, s, group, consumer, opts.count, opts.noack, now, log)
        else:
            reply = deliver_history(c, key, s, group, consumer, start, opts.count, now, log)
        found.append((key, reply))
    if log:
        c.rewrite = claims_logged(db, log)
        db.keyspace.dirty += len(opts.keys)  # not signalled, as Redis (see dirtied)
    if found:
        return keyed_reply(c, found)
    if opts.timeout is None:
        return NULL_ARRAY
    count = opts.count or BLOCKED_DEFAULT_COUNT

    def ready(key: bytes, s: Stream) -> bool:
        group = s.groups.get(gname)
        return group is None or s.last_id > group.last_id

    def serve(key: bytes, s: Stream) -> Tuple[Any, List[List[bytes]]]:
        group = s.groups.get(gname)
        if group is None:
            raise CommandError("NOGROUP the consumer group this client was blocked on no "
                               "longer exists")
        now = wall_ms()
        served: List[List[bytes]] = []
        created: List[bytes] = []
        consumer = consumer_of(c.db, key, group, opts.consumer, now, created)
        served += [[b"XGROUP", b"CREATECONSUMER", key, gname, name] for name in created]
        _sorted_insert(group, created)
        reply = deliver_new(c, key, s, group, consumer, count, opts.noack, now, served)
        dirtied(c.db)
        return keyed_reply(c, [(key, reply)]), claims_logged(c.db, served)

    return stream_waiter(c, opts.keys, opts.timeout, ready, serve,
                         ReplyError("UNBLOCKED the stream key no longer exists"))


# -- XACK / XPENDING ---------------------------------------------------------------------

@command("xack", -4, "write fast", (1, 1, 1), since="5.0.0", **_STREAM)
def xack(c: Any, args: List[bytes]) -> Any:
    """Acknowledge pending entries of a group; returns how many were pending."""
    db = c.db
    s = stream_of(db, args[1])
    group = s.groups.get(args[2]) if s is not None else None
    if group is None:
        return 0
    ids = [strict_id(arg) for arg in args[3:]]
    acked = 0
    for entry_id in ids:
        if entry_id in group.pel:
            _release(group, entry_id)
            acked += 1
    if acked:
        dirtied(db)
    return acked


@command("xpending", -3, "readonly", (1, 1, 1), since="5.0.0", complexity="O(N)", **_STREAM)
def xpending(c: Any, args: List[bytes]) -> Any:
    """A group's pending entries: a summary, or a range ([IDLE ms] start end count [consumer])."""
    argc = len(args)
    if argc != 3 and not 6 <= argc <= 9:
        raise CommandError(SYNTAX)
    min_idle = 0
    consumer_name = None
    if argc >= 6:
        at = 3
        if args[3].lower() == b"idle":
            min_idle = to_int(args[4])
            if argc < 8:
                raise CommandError(SYNTAX)
            at = 5
        count = max(0, to_int(args[at + 2]))
        start, end = interval(args[at], args[at + 1])
        if at + 3 < argc:
            consumer_name = args[at + 3]
    s = stream_of(c.db, args[1])
    group = s.groups.get(args[2]) if s is not None else None
    if group is None:
        raise _nogroup(args[1], args[2])
    pel = group.pel
    if argc == 3:
        if not len(pel):
            return [0, None, None, NULL_ARRAY]
        first, last = pel.first_last()
        owners = [[name, b"%d" % len(consumer.pel)]
                  for name, consumer in group.consumers.items() if len(consumer.pel)]
        return [len(pel), fmt_id(first), fmt_id(last), owners]
    if consumer_name is not None:
        consumer = group.consumers.get(consumer_name)
        if consumer is None:
            return []
        pel = consumer.pel
    now = wall_ms()
    out = []
    if count:
        for entry_id in pel.ids_from(start, end):
            nack = pel.items[entry_id]
            idle = now - nack.delivery_time
            if min_idle and idle < min_idle:
                continue
            out.append([fmt_id(entry_id), nack.consumer.name, max(0, idle),
                        nack.delivery_count])
            if len(out) >= count:
                break
    return out


# -- XCLAIM / XAUTOCLAIM -----------------------------------------------------------------

def _claim(group: Group, consumer: Consumer, entry_id: int, nack: Nack, when: int,
           count: int) -> None:
    """Give a pending entry to ``consumer``, delivered at ``when``, ``count`` times."""
    if nack.consumer is not consumer:
        if nack.consumer is not None:
            nack.consumer.pel.remove(entry_id)
        nack.consumer = consumer
        consumer.pel.add(entry_id, nack)
    nack.delivery_time = when
    nack.delivery_count = count


def _claim_target(c: Any, args: List[bytes]) -> Tuple[Stream, Group]:
    s = stream_of(c.db, args[1])
    group = s.groups.get(args[2]) if s is not None else None
    if group is None:
        raise _nogroup(args[1], args[2])
    return s, group


@command("xclaim", -6, "write fast", (1, 1, 1), since="5.0.0", complexity="O(log N)",
         **_STREAM)
def xclaim(c: Any, args: List[bytes]) -> Any:
    """Take pending entries over (IDLE, TIME, RETRYCOUNT, FORCE, JUSTID, LASTID)."""
    s, group = _claim_target(c, args)
    min_idle = max(0, to_int(args[4], "ERR Invalid min-idle-time argument for XCLAIM"))
    ids: List[int] = []
    j = 5
    while j < len(args):
        try:
            ids.append(strict_id(args[j]))
        except CommandError:
            break
        j += 1
    now = wall_ms()
    force = justid = False
    retrycount = -1
    when = -1
    last_id = 0
    while j < len(args):
        opt = args[j].lower()
        more = j + 1 < len(args)
        if opt == b"force":
            force = True
        elif opt == b"justid":
            justid = True
        elif opt == b"idle" and more:
            j += 1
            when = now - to_int(args[j], "ERR Invalid IDLE option argument for XCLAIM")
        elif opt == b"time" and more:
            j += 1
            when = to_int(args[j], "ERR Invalid TIME option argument for XCLAIM")
        elif opt == b"retrycount" and more:
            j += 1
            retrycount = to_int(args[j], "ERR Invalid RETRYCOUNT option argument for XCLAIM")
        elif opt == b"lastid" and more:
            j += 1
            last_id = strict_id(args[j])
        else:
            raise CommandError(f"ERR Unrecognized XCLAIM option '{_name(args[j])}'")
        j += 1
    log: List[List[bytes]] = []
    moved_last = False
    if last_id > group.last_id:
        group.last_id = last_id
        moved_last = True
    if when == -1 or when < 0 or when > now:
        when = now
    consumer: Optional[Consumer] = None
    created: List[bytes] = []
    out: List[bytes] = []
    for entry_id in ids:
        nack = group.pel.get(entry_id)
        fields = s.find(entry_id)
        if fields is None:
            if nack is not None:
                log.append(xclaim_log(args[1], group, entry_id, nack))
                _release(group, entry_id)
            continue
        if nack is None:
            if not force:
                continue
            nack = Nack(None, 0, 1)  # type: ignore[arg-type]  (Redis: count 1, then +1)
            group.pel.add(entry_id, nack)
        elif min_idle and now - nack.delivery_time < min_idle:
            continue
        if consumer is None:
            consumer = consumer_of(c.db, args[1], group, args[3], now, created)
        count = retrycount if retrycount >= 0 else wrap64(nack.delivery_count + (not justid))
        _claim(group, consumer, entry_id, nack, when, count)
        text = fmt_id(entry_id)
        out.append(b"$%d\r\n%s\r\n" % (len(text), text) if justid else entry_reply(entry_id, fields))
        log.append(xclaim_log(args[1], group, entry_id, nack))
    _sorted_insert(group, created)
    if created:
        log.insert(0, [b"XGROUP", b"CREATECONSUMER", args[1], args[2], args[3]])
    if moved_last and not any(cmd[0] == b"XCLAIM" for cmd in log):
        log.append(setid_log(args[1], group))
    if log:
        dirtied(c.db)
        c.rewrite = log
    return Raw(b"*%d\r\n%s" % (len(out), b"".join(out)))


@command("xautoclaim", -6, "write fast", (1, 1, 1), since="6.2.0", complexity="O(1)",
         **_STREAM)
def xautoclaim(c: Any, args: List[bytes]) -> Any:
    """Claim entries idle for long enough, scanning the pending list from a cursor."""
    min_idle = max(0, to_int(args[4], "ERR Invalid min-idle-time argument for XAUTOCLAIM"))
    start = interval(args[5], None)[0]
    count = 100
    justid = False
    j = 6
    while j < len(args):
        opt = args[j].lower()
        if opt == b"count" and j + 1 < len(args):
            error = "ERR COUNT must be > 0"
            count = to_int(args[j + 1], error)
            if not 1 <= count <= ((1 << 63) - 1) // 16:
                raise CommandError(error)
            j += 1
        elif opt == b"justid":
            justid = True
        else:
            raise CommandError(SYNTAX)
        j += 1
    s, group = _claim_target(c, args)
    attempts = count * 10
    now = wall_ms()
    ids = list(islice(group.pel.ids_from(start), attempts + 1))
    consumer: Optional[Consumer] = None
    created: List[bytes] = []
    out: List[bytes] = []
    deleted: List[int] = []
    log: List[List[bytes]] = []
    i = 0
    while attempts and count and i < len(ids):
        attempts -= 1
        entry_id = ids[i]
        i += 1
        nack = group.pel.items[entry_id]
        fields = s.find(entry_id)
        if fields is None:
            log.append(xclaim_log(args[1], group, entry_id, nack))
            _release(group, entry_id)
            deleted.append(entry_id)
            count -= 1
            continue
        if min_idle and now - nack.delivery_time < min_idle:
            continue
        if consumer is None:
            consumer = consumer_of(c.db, args[1], group, args[3], now, created)
        _claim(group, consumer, entry_id, nack, now,
               nack.delivery_count + (0 if justid else 1))
        text = fmt_id(entry_id)
        out.append(b"$%d\r\n%s\r\n" % (len(text), text) if justid else entry_reply(entry_id, fields))
        count -= 1
        log.append(xclaim_log(args[1], group, entry_id, nack))
    _sorted_insert(group, created)
    if created:
        log.insert(0, [b"XGROUP", b"CREATECONSUMER", args[1], args[2], args[3]])
    if log:
        dirtied(c.db)
        c.rewrite = log
    cursor = fmt_id(ids[i]) if i < len(ids) else b"0-0"
    return [cursor, Raw(b"*%d\r\n%s" % (len(out), b"".join(out))),
            [fmt_id(entry_id) for entry_id in deleted]]


KEY_FINDERS["xreadgroup"] = xread_keys
