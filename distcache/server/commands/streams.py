"""Stream commands without consumer groups: XADD, XRANGE, XREVRANGE, XLEN, XDEL,
XTRIM and XSETID. XREAD (blocking too) is in stream_read.py, groups in
stream_groups.py.

Replies, error texts and the order of checks follow Redis 7.0's t_stream.c.
Writes are logged deterministically: an XADD with ``*`` or ``ms-*`` with the id it
got, a trim with ``~`` as the exact trim it did (as Redis rewrites them).
"""
from __future__ import annotations

import time
from typing import Any, List, Optional, Tuple

from ...protocol import NULL_ARRAY, OK, Raw
from ...protocol.resp import BULK_HEADERS
from ..errors import CommandError, NO_SUCH_KEY, SYNTAX, WRONGTYPE
from ..keyspace import TYPE_NAMES, Database
from ..notify import STREAM, notify, with_events
from ..types.blocking import signal_ready
from ..types.stream import Stream
from ..types.stream_node import MASK, MAX_ID, SEQ_LINES, SEQ_TEXT, fmt_id
from .args import to_int
from .strings import _write_run_context
from .table import command, runs_of

TYPE_NAMES[Stream] = "stream"

_STREAM = dict(group="stream")
INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
U64 = (1 << 64) - 1


# -- ids ----------------------------------------------------------------------------------

def _u64(text: bytes) -> Optional[int]:
    """Redis's string2ull: a canonical integer, else what strtoull accepts whole."""
    try:
        value = int(text, 10)
    except ValueError:
        return None
    if b"%d" % value == text:
        return value if 0 <= value <= U64 else None
    # strtoull: leading spaces, a sign, leading zeros; '-' negates modulo 2**64.
    body = text.lstrip(b" \t\n\v\f\r")
    sign = body[:1]
    digits = body[1:] if sign in (b"+", b"-") else body
    if not digits.isdigit() or value > U64 or value < -U64:
        return None
    return value & U64


def parse_id(arg: bytes, missing_seq: int = 0, strict: bool = False,
             seq_auto: bool = False) -> Tuple[int, bool]:
    """(id, seq given) as Redis's streamGenericParseIDOrReply; ``-``/``+`` unless
    ``strict``; ``ms-*`` (seq not given) only with ``seq_auto``."""
    if len(arg) > 127:
        raise CommandError(INVALID_ID)
    if not strict:
        if arg == b"-":
            return 0, True
        if arg == b"+":
            return MAX_ID, True
    ms_text, dash, seq_text = arg.partition(b"-")
    ms = _u64(ms_text)
    if ms is None:
        raise CommandError(INVALID_ID)
    if not dash:
        return ms << 64 | missing_seq, True
    if seq_auto and seq_text == b"*":
        return ms << 64, False
    seq = _u64(seq_text)
    if seq is None:
        raise CommandError(INVALID_ID)
    return ms << 64 | seq, True


def strict_id(arg: bytes, missing_seq: int = 0) -> int:
    return parse_id(arg, missing_seq, strict=True)[0]


def interval_id(arg: bytes, missing_seq: int) -> Tuple[int, bool]:
    """An XRANGE bound: (id, exclusive) for ``(id``."""
    if len(arg) > 1 and arg[:1] == b"(":
        return parse_id(arg[1:], missing_seq, strict=True)[0], True
    return parse_id(arg, missing_seq)[0], False


def stream_of(db: Any, key: bytes, counted: bool = True) -> Optional[Stream]:
    return db.get_typed(key, Stream) if counted else db.peek_typed(key, Stream)


def dirtied(db: Any) -> None:
    """A write Redis 7.0 counts but does not signal as a modified key (XSETID, the
    group commands): it breaks no WATCH and invalidates no tracked key, as there."""
    db.keyspace.dirty += 1


def next_id(last: int) -> int:
    """Redis's streamNextID: the clock's ms, or last + 1 when the clock is behind."""
    ms = int(time.time() * 1000)
    if ms > last >> 64:
        return ms << 64
    return last + 1  # seq overflow carries into ms, as streamIncrID


# -- replies ------------------------------------------------------------------------------

def entry_reply(entry_id: int, fields: Any) -> bytes:
    text = fmt_id(entry_id)
    return b"*2\r\n$%d\r\n%s\r\n%s" % (len(text), text, fields)


def entries_reply(entries: List[Tuple[int, Any]]) -> Raw:
    """An array of [id, [field, value...]] (the same in RESP2 and RESP3)."""
    return Raw(b"*%d\r\n%s" % (len(entries), b"".join(
        [entry_reply(i, f) for i, f in entries])))


def range_reply(s: Stream, start: int, end: int, count: int = 0, rev: bool = False) -> Raw:
    """:func:`entries_reply` of ``s.range(...)``, encoded by the stream at once."""
    n, parts = s.range_reply(start, end, count, rev)
    return Raw(b"*%d\r\n%s" % (n, b"".join(parts)))


# -- XADD / XTRIM -----------------------------------------------------------------------

class TrimArgs:
    """Options of XADD and XTRIM (Redis's streamAddTrimArgs)."""

    __slots__ = ("maxlen", "minid", "approx", "limit", "arg_at", "id", "seq_given",
                 "id_given", "nomkstream", "id_at")

    def __init__(self, args: List[bytes], xadd: bool) -> None:
        self.maxlen: Optional[int] = None
        self.minid: Optional[int] = None
        self.approx = self.nomkstream = self.id_given = False
        self.seq_given = True
        self.limit = 0
        self.arg_at = 0  # index of the MAXLEN/MINID value
        self.id = 0
        limit_given = False
        i = 2
        argc = len(args)
        while i < argc:
            more = argc - 1 - i
            opt = args[i]
            low = opt.lower()
            if xadd and opt == b"*":
                break
            if (low == b"maxlen" or low == b"minid") and more:
                if self.maxlen is not None or self.minid is not None:
                    raise CommandError("ERR syntax error, MAXLEN and MINID options at the "
                                       "same time are not compatible")
                self.approx = False
                nxt = args[i + 1]
                if more >= 2 and nxt == b"~":
                    self.approx = True
                    i += 1
                elif more >= 2 and nxt == b"=":
                    i += 1
                if low == b"maxlen":
                    self.maxlen = to_int(args[i + 1])
                    if self.maxlen < 0:
                        raise CommandError("ERR The MAXLEN argument must be >= 0.")
                else:
                    self.minid = strict_id(args[i + 1])
                i += 1
                self.arg_at = i
            elif low == b"limit" and more:
                self.limit = to_int(args[i + 1])
                if self.limit < 0:
                    raise CommandError("ERR The LIMIT argument must be >= 0.")
                limit_given = True
                i += 1
            elif xadd and low == b"nomkstream":
                self.nomkstream = True
            elif xadd:
                self.id, self.seq_given = parse_id(opt, 0, strict=True, seq_auto=True)
                self.id_given = True
                break
            else:
                raise CommandError(SYNTAX)
            i += 1
        self.id_at = i
        trims = self.maxlen is not None or self.minid is not None
        if self.limit and not trims:
            raise CommandError("ERR syntax error, LIMIT cannot be used without specifying a "
                               "trimming strategy")
        if not xadd and not trims:
            raise CommandError("ERR syntax error, XTRIM must be called with a trimming "
                               "strategy")
        if limit_given:
            if not self.approx:
                raise CommandError("ERR syntax error, LIMIT cannot be used without the "
                                   "special ~ option")
        else:
            self.limit = 10000 if self.approx else 0

    def trim(self, s: Stream) -> int:
        if self.maxlen is None and self.minid is None:
            return 0
        return s.trim(self.maxlen, self.minid, self.approx, self.limit)

    def exact_args(self, s: Stream) -> List[bytes]:
        """The trim as an exact one, for the log (Redis's streamRewriteTrimArgument)."""
        if self.maxlen is not None:
            return [b"MAXLEN", b"=", b"%d" % s.length]
        first = s.first_entry()
        return [b"MINID", b"=", fmt_id(first[0] if first else 0)]


@command("xadd", -5, "write denyoom fast", (1, 1, 1), since="5.0.0", **_STREAM)
def xadd(c: Any, args: List[bytes]) -> Any:
    """Append an entry to a stream (NOMKSTREAM, MAXLEN/MINID [=|~] [LIMIT])."""
    if args[2] == b"*" and len(args) & 1:  # the plain form: XADD key * field value...
        return _xadd_plain(c, args)
    if len(args) > 7 and args[3] == b"~" and args[5] == b"*" and not len(args) & 1 \
            and args[2].lower() == b"maxlen":  # XADD key MAXLEN ~ n * field value...
        maxlen = to_int(args[4])
        if maxlen < 0:
            raise CommandError("ERR The MAXLEN argument must be >= 0.")
        return _xadd_plain(c, args, 6, maxlen)
    opts = TrimArgs(args, True)
    field_at = opts.id_at + 1
    nfields = len(args) - field_at
    if nfields < 2 or nfields % 2:
        raise CommandError("ERR wrong number of arguments for 'xadd' command")
    if opts.id_given and opts.seq_given and opts.id == 0:
        raise CommandError("ERR The ID specified in XADD must be greater than 0-0")
    db = c.db
    key = args[1]
    s = stream_of(db, key, counted=False)
    if s is None:
        if opts.nomkstream:
            return None
        s = Stream()
        db.set(key, s)
    if s.last_id == MAX_ID:
        raise CommandError("ERR The stream has exhausted the last possible ID, unable to add "
                           "more items")
    if not opts.id_given:
        new_id = next_id(s.last_id)
    elif opts.seq_given:
        new_id = opts.id
    elif s.last_id >> 64 == opts.id >> 64:
        if s.last_id & MASK == MASK:
            raise CommandError("ERR The ID specified in XADD is equal or smaller than the "
                               "target stream top item")
        new_id = s.last_id + 1
    else:
        new_id = opts.id
    if new_id <= s.last_id:
        raise CommandError("ERR The ID specified in XADD is equal or smaller than the target "
                           "stream top item")
    fields = args[field_at:]
    s.append(new_id, fields)
    db.modified(key)
    notify(db, STREAM, b"xadd", key)
    id_text = fmt_id(new_id)
    if opts.maxlen is not None or opts.minid is not None:
        if opts.trim(s):
            notify(db, STREAM, b"xtrim", key)
        if opts.approx or opts.limit or not opts.id_given or not opts.seq_given:
            logged = [b"XADD", key]
            if opts.nomkstream:
                logged.append(b"NOMKSTREAM")
            logged += opts.exact_args(s)
            c.rewrite = [logged + [id_text] + fields]
    elif not opts.id_given or not opts.seq_given:
        c.rewrite = [[b"XADD", key] + ([b"NOMKSTREAM"] if opts.nomkstream else [])
                     + [id_text] + fields]
    if db.blocking:
        signal_ready(c, db, key)
    return id_text


def _xadd_plain(c: Any, args: List[bytes], at: int = 3, maxlen: int = -1) -> bytes:
    """XADD key [MAXLEN ~ n] * field value ...: the fields from ``at``, no option
    parser; ``maxlen`` (-1: none) trims whole nodes (LIMIT 10000, as ``~``'s)."""
    db = c.db
    key = args[1]
    s = db.peek(key)
    if s is None:
        s = Stream()
        db.set(key, s)
    elif s.__class__ is not Stream:
        raise CommandError(WRONGTYPE)
    last = s.last_id
    if last == MAX_ID:
        raise CommandError("ERR The stream has exhausted the last possible ID, unable to add "
                           "more items")
    new_id = next_id(last)
    fields = args[at:]
    s.append(new_id, fields)
    db.modified(key)
    events = db.keyspace.events & STREAM  # the test without a call: ~700 instructions less
    if events:
        notify(db, STREAM, b"xadd", key)
    id_text = b"%d-%d" % (new_id >> 64, new_id & MASK)
    if maxlen < 0:
        c.rewrite = [[args[0], key, id_text, *fields]]
    else:
        if s.length > maxlen and s.trim(maxlen, None, True, 10000) and events:
            notify(db, STREAM, b"xtrim", key)
        c.rewrite = [[args[0], key, b"MAXLEN", b"=", b"%d" % s.length, id_text, *fields]]
    if db.blocking:
        signal_ready(c, db, key)
    return id_text


# Keyspace events on: XADD's handler announces, the run handler steps aside.
with_events("xadd")(xadd)


@runs_of("xadd")
def xadd_run(c: Any, commands: List[List[bytes]], start: int, out: List[bytes]) -> int:
    """``XADD key * field value ...`` on existing streams: :func:`_xadd_plain` for a
    run of requests without the dispatcher's call per request, one clock read for
    the run. Anything else (a new key, blocked readers to serve between writes, the
    memory limit's check) stops the run and takes the general path.

    The requests to one key in a row are a batch: with one clock read their ids
    are consecutive (ms-seq, ms-(seq+1)...), so they are generated at once and
    appended by :meth:`Stream.append_run`; the dirty count is added once (a
    database without LRU/LFU stamps, whose ``modified`` is only that and WATCH)."""
    first = commands[start]
    if len(first) < 5 or first[2] != b"*":  # options, explicit ids: at once (before arity)
        return 0
    context = _write_run_context(c)
    if context is None:
        return 0
    staged, propagators, metered, credit = context
    db = c.db
    if db.blocking:
        return 0
    data, expires, modified = db.data, db.expires, db.modified
    plain = db.__class__.modified is Database.modified
    keyspace = db.keyspace
    name = first[0]
    now = int(time.time() * 1000)
    text_ms = -1
    ms_text = b""
    heads: List[bytes] = []
    seq_lines = SEQ_LINES
    seq_texts = SEQ_TEXT
    total = len(commands)
    i = start
    while i < total:
        args = commands[i]
        argc = len(args)
        if argc < 5 or not argc & 1 or args[2] != b"*" or args[0] != name:
            break
        key = args[1]
        s = data.get(key)
        if s is None or s.__class__ is not Stream or (expires and key in expires):
            break
        last = s.last_id
        if last == MAX_ID:
            break
        j = i + 1
        while j < total:  # the batch: this key's XADD * requests in a row
            args = commands[j]
            argc = len(args)
            if argc < 5 or not argc & 1 or args[1] != key or args[2] != b"*" \
                    or args[0] != name:
                break
            j += 1
        if now > last >> 64:
            ms, seq = now, 0
        else:  # last + 1 (streamIncrID: a seq overflow carries into ms)
            new_id = last + 1
            ms, seq = new_id >> 64, new_id & MASK
        if j - i > MASK - seq:  # the batch's seqs must not overflow: the rest later
            j = i + 1
        if metered:
            if credit < j - i:
                j = i + credit
                if j <= i:
                    break
            credit -= j - i
        s.append_run(ms, seq, commands, i, j, 3)
        if ms != text_ms:
            ms_text = b"%d-" % ms
            text_ms = ms
            heads = [b""] * 23  # by a seq's line: at most 20 digits and CRLF
        for k in range(i, j):
            if seq < 1024:
                line = seq_lines[seq]
                id_text = ms_text + seq_texts[seq]
            else:
                line = b"%d\r\n" % seq
                id_text = ms_text + line[:-2]
            head = heads[len(line)]  # the reply up to the seq, by the seq's digits
            if not head:
                head = heads[len(line)] = BULK_HEADERS[len(ms_text) + len(line) - 2] + ms_text
            out.append(head + line)
            seq += 1
            args = commands[k]
            logged = [name, key, id_text, args[3], args[4]] if len(args) == 5 \
                else [name, key, id_text, *args[3:]]
            if staged is not None:
                staged.append(logged)
            elif propagators:
                for propagate in propagators:
                    propagate(db.id, [logged])
            if not plain:
                modified(key)
        if plain:
            keyspace.dirty += j - i
            if db.watched:
                for k in range(i, j):
                    keyspace.key_modified(db, key)
        i = j
    if metered:
        c.server.oom_credit = credit
    return i - start


@command("xtrim", -4, "write", (1, 1, 1), since="5.0.0", complexity="O(N)", **_STREAM)
def xtrim(c: Any, args: List[bytes]) -> Any:
    """Trim a stream by MAXLEN or MINID."""
    opts = TrimArgs(args, False)
    db = c.db
    s = stream_of(db, args[1], counted=False)
    if s is None:
        return 0
    deleted = opts.trim(s)
    if deleted:
        db.modified(args[1])
        notify(db, STREAM, b"xtrim", args[1])
        c.rewrite = [[b"XTRIM", args[1]] + opts.exact_args(s)]
    return deleted


# -- reads --------------------------------------------------------------------------------

def interval(start_arg: bytes, end_arg: Optional[bytes]) -> Tuple[int, int]:
    """An inclusive [start, end] from XRANGE-style bounds (``(`` excludes)."""
    start, start_ex = interval_id(start_arg, 0)
    if start_ex:
        if start == MAX_ID:
            raise CommandError("ERR invalid start ID for the interval")
        start += 1
    if end_arg is None:
        return start, MAX_ID
    end, end_ex = interval_id(end_arg, U64)
    if end_ex:
        if end == 0:
            raise CommandError("ERR invalid end ID for the interval")
        end -= 1
    return start, end


_COUNT = (b"COUNT", b"count")


@command("xrange", -4, "readonly", (1, 1, 1), since="5.0.0", complexity="O(N)", **_STREAM)
def xrange(c: Any, args: List[bytes], rev: bool = False) -> Any:
    """Entries with ids in a range, ascending."""
    first, last = (args[3], args[2]) if rev else (args[2], args[3])
    if first == b"-" and last == b"+":  # the whole stream: no id to parse
        start, end = 0, MAX_ID
    else:
        start, end = interval(first, last)
    count = -1
    j = 4
    argc = len(args)
    if argc == 6 and args[4] in _COUNT:  # COUNT n, the usual option: no loop
        text = args[5]
        if text.isdigit() and len(text) < 19 and text[0] != 48:  # canonical, in range
            count = int(text)
        else:
            count = max(0, to_int(text))
        j = 6
    while j < argc:
        if args[j].lower() == b"count" and j + 1 < len(args):
            count = max(0, to_int(args[j + 1]))
            j += 2
        else:
            raise CommandError(SYNTAX)
    s = c.db.get_typed(args[1], Stream)
    if s is None:
        return []
    if count == 0:
        return NULL_ARRAY
    n, parts = s.range_reply(start, end, count if count > 0 else 0, rev)  # range_reply, inlined
    return Raw(b"*%d\r\n%s" % (n, b"".join(parts)))


@command("xrevrange", -4, "readonly", (1, 1, 1), since="5.0.0", complexity="O(N)", **_STREAM)
def xrevrange(c: Any, args: List[bytes]) -> Any:
    """Entries with ids in a range, descending (end first)."""
    return xrange(c, args, True)


@command("xlen", 2, "readonly fast", (1, 1, 1), since="5.0.0", **_STREAM)
def xlen(c: Any, args: List[bytes]) -> Any:
    """The number of entries of a stream."""
    s = stream_of(c.db, args[1])
    return 0 if s is None else s.length


@command("xdel", -3, "write fast", (1, 1, 1), since="5.0.0", **_STREAM)
def xdel(c: Any, args: List[bytes]) -> Any:
    """Delete entries by id; returns how many existed."""
    db = c.db
    s = stream_of(db, args[1], counted=False)
    if s is None:
        return 0
    ids = [strict_id(arg) for arg in args[2:]]
    deleted = sum(1 for entry_id in ids if s.delete(entry_id))
    if deleted:
        db.modified(args[1])
        notify(db, STREAM, b"xdel", args[1])
    return deleted


@command("xsetid", -3, "write denyoom fast", (1, 1, 1), since="5.0.0", **_STREAM)
def xsetid(c: Any, args: List[bytes]) -> Any:
    """Set a stream's last id (ENTRIESADDED, MAXDELETEDID)."""
    new_last = strict_id(args[2])
    entries_added = -1
    max_deleted = 0
    i = 3
    while i < len(args):
        opt = args[i].lower()
        if opt == b"entriesadded" and i + 1 < len(args):
            entries_added = to_int(args[i + 1])
            if entries_added < 0:
                raise CommandError("ERR entries_added must be positive")
        elif opt == b"maxdeletedid" and i + 1 < len(args):
            max_deleted = strict_id(args[i + 1])
            if new_last < max_deleted:
                raise CommandError("ERR The ID specified in XSETID is smaller than the "
                                   "provided max_deleted_entry_id")
        else:
            raise CommandError(SYNTAX)
        i += 2
    db = c.db
    s = stream_of(db, args[1], counted=False)
    if s is None:
        raise CommandError(NO_SUCH_KEY)
    if s.length:
        if new_last < s.top():
            raise CommandError("ERR The ID specified in XSETID is smaller than the target "
                               "stream top item")
        if entries_added != -1 and s.length > entries_added:
            raise CommandError("ERR The entries_added specified in XSETID is smaller than "
                               "the target stream length")
    s.last_id = new_last
    if entries_added != -1:
        s.entries_added = entries_added
    if max_deleted:
        s.max_deleted = max_deleted
    dirtied(db)
    notify(db, STREAM, b"xsetid", args[1])
    return OK
