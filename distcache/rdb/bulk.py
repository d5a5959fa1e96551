"""Bulk loading: an RDB file's keys straight into dictionaries, fast.

``RdbFileReader.__iter__`` pays a few microseconds a key (a method call per
length and string, an entry tuple per key). A server loading a file of a
million small strings pays them a million times, so :func:`load_into` parses
the common case inline: a string key whose key and value are short (6-bit
lengths or 8/16/32-bit integers), with or without EXPIRETIME_MS, read from
the reader's buffer by indexing and slicing. Anything else (other types,
long or LZF strings, the other opcodes, a key across a buffer boundary) goes
through the reader's own methods, so the checks, offsets in errors and the
CRC64 are the reader's. The fast path accepts only bytes that the slow path
would read the same way.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Optional, Tuple

from .codec import RdbEmptyKey

#: Read-ahead of a bulk load: the CRC runs over 8 MB chunks (faster per byte than 64 KB).
BULK_CHUNK = 1 << 23
#: The longest string entry with 6-bit lengths: type, 2 lengths, 2 x 63 bytes.
_LONGEST = 129

OP_FUNCTION2, OP_FUNCTION, OP_MODULE_AUX, OP_IDLE, OP_FREQ = 245, 246, 247, 248, 249
OP_AUX, OP_RESIZEDB, OP_EXPIRETIME_MS, OP_EXPIRETIME, OP_SELECTDB, OP_EOF = range(250, 256)
#: Opcodes whose body RdbFileReader.read_metadata reads.
METADATA_OPS = frozenset((OP_RESIZEDB, OP_AUX, OP_FUNCTION2, OP_FUNCTION, OP_MODULE_AUX))

Target = Callable[[int], Tuple[dict, dict]]


def load_into(reader: Any, target: Target, convert: Callable[[str, Any], Any],
              skip_before: Optional[int] = None, step: int = 4096) -> Iterator[int]:
    """Store every key of ``reader`` (an RdbFileReader past its header).

    ``target(db)`` gives the (values, expires) dicts of a database (it raises
    to refuse one); ``convert(kind, value)`` makes the stored value of a
    non-string (strings are stored as bytes). Keys with a deadline at or
    before ``skip_before`` (ms) are skipped and counted in ``reader.expired``.
    Yields the keys stored so far every ``step`` keys, and once at the end,
    after the checksum was checked. IDLE and FREQ are read and dropped.
    """
    r = reader.r
    r.chunk = max(r.chunk, BULK_CHUNK)
    data, expires = target(reader.db)
    expire_ms: Optional[int] = None
    loaded = 0
    next_yield = step
    buf, pos = r._buf, r._pos
    blen = len(buf)
    from_bytes = int.from_bytes
    safe = blen - _LONGEST
    while True:
        # -- the fastest path: a run of strings without TTL, 6-bit lengths
        # (no bounds checks: every such entry ends before ``safe + _LONGEST``)
        if pos < safe and not buf[pos] and expire_ms is None:
            before = len(data)
            for _ in range(step):
                klen = buf[pos + 1]
                if klen > 63:
                    break
                kend = pos + 2 + klen
                vlen = buf[kend]
                if vlen > 63:
                    break
                vend = kend + 1 + vlen
                data[buf[pos + 2:kend]] = buf[kend + 1:vend]
                pos = vend
                if pos >= safe or buf[pos]:
                    break
            loaded += len(data) - before
            if loaded >= next_yield:
                next_yield = loaded + step
                _sync(r, pos)
                yield loaded
            continue_fast = pos < safe and not buf[pos] and buf[pos + 1] < 64 \
                and buf[pos + 2 + buf[pos + 1]] < 64
            if continue_fast:
                continue
        # -- the fast path: OP_EXPIRETIME_MS, or a short string key whole in buf
        if pos + 2 < blen:
            op = buf[pos]
            if op == 0:
                klen = buf[pos + 1]
                kend = pos + 2 + klen
                if klen < 64 and kend < blen:
                    vb = buf[kend]
                    value: Any = None
                    if vb < 64:
                        vend = kend + 1 + vb
                        if vend <= blen:
                            value = buf[kend + 1:vend]
                    elif vb == 0xC0:
                        vend = kend + 2
                        if vend <= blen:
                            v = buf[kend + 1]
                            value = b"%d" % (v - 256 if v > 127 else v)
                    elif vb == 0xC1 or vb == 0xC2:
                        vend = kend + (3 if vb == 0xC1 else 5)
                        if vend <= blen:
                            value = b"%d" % from_bytes(buf[kend + 1:vend], "little",
                                                       signed=True)
                    if value is not None:
                        key = buf[pos + 2:kend]
                        pos = vend
                        if expire_ms is None:
                            data[key] = value
                            loaded += 1
                        else:
                            if skip_before is not None and expire_ms <= skip_before:
                                reader.expired += 1
                            else:
                                data[key] = value
                                expires[key] = expire_ms
                                loaded += 1
                            expire_ms = None
                        if loaded >= next_yield:
                            next_yield = loaded + step
                            _sync(r, pos)
                            yield loaded
                        continue
            elif op == OP_EXPIRETIME_MS and pos + 9 <= blen:
                expire_ms = from_bytes(buf[pos + 1:pos + 9], "little", signed=True)
                pos += 9
                continue
        # -- the slow path: the reader's own methods
        _sync(r, pos)
        start = r.offset
        op = r.byte()
        if op == OP_EXPIRETIME_MS:
            expire_ms = from_bytes(r.read(8), "little", signed=True)
        elif op == OP_EXPIRETIME:
            expire_ms = from_bytes(r.read(4), "little", signed=True) * 1000
        elif op == OP_IDLE:
            r.length()
        elif op == OP_FREQ:
            r.byte()
        elif op == OP_SELECTDB:
            reader.db = r.length()
            data, expires = target(reader.db)
        elif op in METADATA_OPS:
            reader.read_metadata(op, start)
        elif op == OP_EOF:
            reader._finish()
            reader.keys += loaded
            yield loaded
            return
        else:
            key = r.string()
            try:
                kind, value = r.value(op)
            except RdbEmptyKey:
                reader.empty_keys += 1
            else:
                if expire_ms is not None and skip_before is not None \
                        and expire_ms <= skip_before:
                    reader.expired += 1
                else:
                    data[key] = value if kind == "string" else convert(kind, value)
                    if expire_ms is not None:
                        expires[key] = expire_ms
                    loaded += 1
                    if loaded >= next_yield:
                        next_yield = loaded + step
                        yield loaded
            expire_ms = None
        buf, pos = r._buf, r._pos
        blen = len(buf)
        safe = blen - _LONGEST


def _sync(r: Any, pos: int) -> None:
    """Tell the reader what the fast path consumed of its buffer."""
    adv = pos - r._pos
    if adv:
        r._pos = pos
        r.offset += adv
        if r.remaining is not None:
            r.remaining -= adv

