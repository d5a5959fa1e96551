"""HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST.

Values are Redis's own HLL strings (types/hll.py), so GET returns the bytes
Redis would hold and a value written by Redis works here.
"""
from __future__ import annotations

from itertools import compress, islice
from typing import Any, List, Optional

from ...protocol import OK, Status
from ..errors import CommandError, WRONGTYPE
from ..notify import STRING, notify, with_events
from .strings import _write_run_context, propagate_write
from .table import command, runs_of
from ...lazy import lazy_module

# Its tables and struct formats wait for the first HLL command (start-up time).
hll = lazy_module("distcache.server.types.hll")

_HLL = dict(group="hyperloglog")
NOT_HLL = "WRONGTYPE Key is not a valid HyperLogLog string value."
INVALID = "INVALIDOBJ Corrupted HLL object detected"


def _hll_value(db: Any, key: bytes, counted: bool = True) -> Optional[bytes]:
    value = db.get(key) if counted else db.peek(key)
    if value is None:
        return None
    if value.__class__ is not bytes:
        raise CommandError(WRONGTYPE)
    if not hll.is_hll(value):
        raise CommandError(NOT_HLL)
    return value


def _editor(c: Any, value: bytes) -> hll.Editor:
    try:
        return hll.Editor(value, c.server.config["hll-sparse-max-bytes"])
    except hll.InvalidHLL:
        raise CommandError(INVALID) from None


def _max_registers(db: Any, keys: List[bytes]) -> "tuple[bytes, bool]":
    """Register-wise maximum of the HLLs at ``keys`` (missing ones are empty), a byte
    a register, and whether any of them was dense. A key named twice counts once."""
    merged = 0
    dense = False
    for key in dict.fromkeys(keys):
        value = _hll_value(db, key)
        if value is None:
            continue
        dense = dense or value[4] == hll.DENSE
        try:
            registers = hll.registers_of(value)
        except hll.InvalidHLL:
            raise CommandError(INVALID) from None
        merged = hll.max_registers(merged, int.from_bytes(registers, "little"))
    return merged.to_bytes(hll.REGISTERS, "little"), dense


@command("pfadd", -2, "write denyoom fast", (1, 1, 1), since="2.8.9", **_HLL)
def pfadd(c: Any, args: List[bytes]) -> Any:
    """Add elements; 1 if an estimate changed (or the key was created), else 0."""
    db, key = c.db, args[1]
    value = _hll_value(db, key, counted=False)
    if value is not None and len(args) == 3 and value[4] == hll.DENSE:
        # One element into a dense HLL (the common case once it has grown): the
        # register is read in place; the 12 KB value is copied only if it rises.
        changed = hll.dense_add(value, args[2])
        if changed is None:
            return 0
        db.set(key, changed, keep_ttl=True)
        notify(db, STRING, b"pfadd", key)
        return 1
    if value is not None and len(args) == 2:
        return 0  # nothing to add: as Redis, the registers are not even read
    editor = _editor(c, value if value is not None else hll.empty())
    if len(args) == 3:  # one element: no list of one hash
        updated = editor.set(*hll.pattern_of(args[2])) or value is None
    else:
        updated = any(editor.add_hashes(hll.hashes(args[2:]))) or value is None
    if not updated:
        editor.release()
        return 0
    db.set(key, editor.value(), keep_ttl=True)
    notify(db, STRING, b"pfadd", key)
    return 1


# Keyspace events on: PFADD's handler announces, the run handler steps aside.
with_events("pfadd")(pfadd)


@runs_of("pfadd")
def pfadd_run(c: Any, commands: List[List[bytes]], start: int, out: List[bytes]) -> int:
    """A run of ``PFADD key element ...``: the requests on one key in a row read and
    write its value once (a dense value is 12 KB to copy), and their elements are
    hashed together (:func:`hll.hashes`). Nothing else runs in between, so no one
    sees the difference. A request that would fail (wrong type, corrupt value, no
    element) stops the run and takes the general path, as do blocked clients."""
    context = _write_run_context(c)
    if context is None or c.db.blocking:
        return 0
    staged, propagators, metered, credit = context
    db = c.db
    name = commands[start][0]
    max_bytes = c.server.config["hll-sparse-max-bytes"]
    todo = commands[start:] if start else commands
    total = len(todo)
    ran = 0
    while ran < total:
        args = todo[ran]
        if len(args) < 3 or args[0] != name or (metered and credit < 1):
            break
        key = args[1]
        plain = len(args) == 3  # one element a request, all along
        end = ran + 1
        limit = min(total, ran + credit) if metered else total
        if plain:  # the usual run: fewer operations a request than the loop below
            for args in islice(todo, end, limit):
                if len(args) != 3 or args[1] != key or args[0] != name:
                    break
                end += 1
        while end < limit:
            args = todo[end]
            argc = len(args)
            if argc < 3 or args[1] != key or args[0] != name:
                break
            if argc != 3:
                plain = False
            end += 1
        value = db.peek(key)
        created = value is None
        if created:
            value = hll.empty()
        elif value.__class__ is not bytes or not hll.is_hll(value):
            break
        try:
            editor = hll.Editor(value, max_bytes)
        except hll.InvalidHLL:
            break
        group = todo[ran:end]
        if plain:  # the replies straight away
            replies = editor.add_hashes(hll.hashes([args[2] for args in group]),
                                        _PFADD_REPLIES)
            if created:
                replies[0] = _ONE
            writes = replies.count(_ONE)
            if writes and (staged is not None or propagators):
                changed = [reply is _ONE for reply in replies]
        else:
            changed = _add_group(editor, group)
            if created:
                changed[0] = True
            replies = list(map(_PFADD_REPLIES.__getitem__, changed))
            writes = changed.count(True)
        out += replies
        if writes:
            if staged is not None:
                staged += compress(group, changed)
            elif propagators:
                for args in compress(group, changed):
                    if staged is not None:
                        staged.append(args)
                    else:
                        staged = propagate_write(c, args, propagators)
            db.set(key, editor.value(), keep_ttl=True)
            db.keyspace.dirty += writes - 1  # a write a request that changed it
        else:
            editor.release()
        credit -= end - ran
        ran = end
    if metered:
        c.server.oom_credit = credit
    return ran


_PFADD_REPLIES = (b":0\r\n", b":1\r\n")
_ONE = _PFADD_REPLIES[1]


def _add_group(editor: hll.Editor, group: List[List[bytes]]) -> List[bool]:
    """Add every request's elements; whether each request raised a register."""
    raised = editor.add_hashes(hll.hashes([e for args in group for e in args[2:]]))
    changed, at = [], 0
    for args in group:
        n = len(args) - 2
        changed.append(any(raised[at:at + n]))
        at += n
    return changed


@command("pfcount", -2, "readonly", (1, -1, 1), since="2.8.9",
         complexity="O(1) with a single key", **_HLL)
def pfcount(c: Any, args: List[bytes]) -> Any:
    """Estimated number of distinct elements in the union of the HLLs."""
    db = c.db
    if len(args) > 2:
        return hll.estimate(_max_registers(db, args[1:])[0])
    key = args[1]
    value = _hll_value(db, key)
    if value is None:
        return 0
    count = hll.cached_count(value)
    if count is None:
        try:
            count = hll.estimate(hll.registers_of(value))
        except hll.InvalidHLL:
            raise CommandError(INVALID) from None
        # As Redis, the count is cached in the value. It is derived data, so the
        # log needs nothing: a replayed value recomputes the same count.
        db.set(key, hll.with_cached_count(value, count), keep_ttl=True)
    return count


# Keyspace events on (a missing key's keymiss): the run handler steps aside.
with_events("pfcount")(pfcount)


@runs_of("pfcount")
def pfcount_run(c: Any, commands: List[List[bytes]], start: int, out: List[bytes]) -> int:
    """Runs of ``PFCOUNT key`` whose count is cached in the value: the value is
    checked and its count formatted once for the requests on it in a row (only
    ``Database.get`` runs per request, for the statistics and the expiry). A
    stale count, a wrong type or more keys stop the run: the general path answers."""
    db = c.db
    peek, get = db.data.get, db.get
    name = commands[start][0]
    checked: Any = None  # the value last checked, and its reply
    reply = b""
    ran = 0
    for args in commands[start:] if start else commands:
        if len(args) != 2 or args[0] != name:
            break
        key = args[1]
        value = peek(key)
        if value is not checked and value is not None:
            # (No statistics yet: the general path would count them again.)
            if value.__class__ is not bytes or not hll.is_hll(value) or value[15] & 0x80:
                break
            checked = value
            reply = b":%d\r\n" % int.from_bytes(value[8:16], "little")
        out.append(_ZERO if get(key) is None else reply)
        ran += 1
    return ran


_ZERO = b":0\r\n"


@command("pfmerge", -2, "write denyoom", (1, -1, 1), since="2.8.9", complexity="O(N)",
         **_HLL)
def pfmerge(c: Any, args: List[bytes]) -> Any:
    """Merge HLLs into the first key (which counts as a source too)."""
    db, dest = c.db, args[1]
    merged, dense = _max_registers(db, args[1:])
    value = _hll_value(db, dest, counted=False)
    if dense:  # the destination, a source too, becomes exactly the maximum
        header = bytearray((value if value is not None else hll.empty())[:hll.HEADER])
        header[4] = hll.DENSE
        header[15] |= 0x80  # the cached count is stale, its other bytes stay (as Redis)
        merged_value = bytes(header) + hll.pack_dense(merged)
    else:  # sparse: set register by register, as Redis, for its exact opcodes
        editor = _editor(c, value if value is not None else hll.empty())
        for index, count in enumerate(merged):
            if count:
                editor.set(index, count)
        merged_value = editor.value()
    db.set(dest, merged_value, keep_ttl=True)
    notify(db, STRING, b"pfadd", dest)
    return OK


_PFDEBUG = ("GETREG", "DECODE", "ENCODING", "TODENSE")


@command("pfdebug", 3, "write denyoom admin", (2, 2, 1), since="2.8.9", **_HLL)
def pfdebug(c: Any, args: List[bytes]) -> Any:
    """Internal commands for debugging HyperLogLog values."""
    sub = args[1].upper().decode("latin-1")
    db, key = c.db, args[2]
    value = db.get(key)
    if value is None:
        raise CommandError("ERR The specified key does not exist")
    if value.__class__ is not bytes or not hll.is_hll(value):
        raise CommandError(NOT_HLL)
    name = args[1].decode("latin-1")
    if sub not in _PFDEBUG:
        raise CommandError(f"ERR Unknown PFDEBUG subcommand '{name}'")
    if sub == "ENCODING":
        return Status(b"dense" if value[4] == hll.DENSE else b"sparse")
    try:
        if sub == "DECODE":
            if value[4] != hll.SPARSE:
                raise CommandError("ERR HLL encoding is not sparse")
            return _decode_sparse(hll.Sparse(value[hll.HEADER:]))
        editor = hll.Editor(value, c.server.config["hll-sparse-max-bytes"])
    except hll.InvalidHLL:
        raise CommandError(INVALID) from None
    was_sparse = value[4] == hll.SPARSE
    editor.to_dense()
    if sub == "TODENSE":
        if was_sparse:
            db.set(key, editor.value(stale=False), keep_ttl=True)
        return int(was_sparse)
    if was_sparse:
        registers = editor.registers()
        db.set(key, editor.value(stale=False), keep_ttl=True)
        return registers
    return editor.registers()  # GETREG


def _decode_sparse(sparse: hll.Sparse) -> bytes:
    words = []
    for kind, value, run in zip(sparse.kinds, sparse.values, sparse.runs):
        if kind == hll.VAL:
            words.append(f"v:{value},{run}")
        else:
            words.append(f"{'z' if kind == hll.ZERO else 'Z'}:{run}")
    return " ".join(words).encode()


@command("pfselftest", 1, "admin", since="2.8.9", **_HLL)
def pfselftest(c: Any, args: List[bytes]) -> Any:
    """Check the HLL code: the register layout, and sparse and dense counting the same."""
    import random
    rng = random.Random(1)
    registers = [rng.randrange(64) for _ in range(hll.REGISTERS)]
    if hll.dense_registers(hll.pack_dense(registers)) != registers \
            or hll.max_registers(int.from_bytes(bytes(registers), "little"), 0) \
            != int.from_bytes(bytes(registers), "little"):
        raise CommandError("ERR TESTFAILED Register error")
    sparse = hll.Editor(hll.empty(), 1 << 30)
    dense = hll.Editor(hll.empty(), 0)
    dense.to_dense()
    for n in range(2000):
        element = b"%d" % rng.getrandbits(64)
        index, count = hll.pattern_of(element)
        sparse.set(index, count)
        dense.set(index, count)
    if hll.estimate(hll.registers_of(sparse.value())) != \
            hll.estimate(hll.registers_of(dense.value())):
        raise CommandError("ERR TESTFAILED sparse and dense counts differ")
    return OK
