"""Bitmap commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD.

Bits are numbered as Redis numbers them: bit 0 is the most significant bit of
the first byte. Strings are immutable ``bytes`` here, so a write copies the
value once (as SETRANGE does); reads never copy more than they count.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ..errors import CommandError, SYNTAX, WRONGTYPE
from ..keyspace import now_ms
from ..notify import GENERIC, STRING, notify, with_events
from .args import to_int
from .strings import _write_run_context, check_size, propagate_write
from .table import command, runs_of

_BIT = dict(group="bitmap")
BIT_OFFSET = "ERR bit offset is not an integer or out of range"
#: Popcounts are taken this many bytes at a time, so no temporary grows with the value.
_CHUNK = 1 << 16

try:
    _popcount = int.bit_count  # type: ignore[attr-defined]  # Python 3.10+

    def _chunk_ones(chunk: bytes) -> int:
        return _popcount(int.from_bytes(chunk, "big"))
except AttributeError:  # pragma: no cover  (3.9, so Debian's PyPy)
    def _popcount(n: int) -> int:
        return bin(n).count("1")

    _ONES = bytes(bin(i).count("1") for i in range(256))

    def _chunk_ones(chunk: bytes) -> int:
        # Each byte to its bit count, then eight C-speed counts: 8x faster than
        # bin().count("1") on PyPy, 3x on CPython 3.9.
        counts = chunk.translate(_ONES)
        return sum([k * counts.count(k) for k in range(1, 9)])

#: BITOP NOT byte by byte: bytes.translate is C on both runtimes (PyPy's big
#: integers take 20x longer).
_NOT = bytes(255 - i for i in range(256))


def _string(db: Any, key: bytes, counted: bool = True) -> Optional[bytes]:
    value = db.get(key) if counted else db.peek(key)
    if value is not None and value.__class__ is not bytes:
        raise CommandError(WRONGTYPE)
    return value


def bit_offset(c: Any, arg: bytes, bits: int = 0) -> int:
    """A bit offset as Redis checks it; ``#N`` (BITFIELD) means N times ``bits``."""
    scaled = bits > 0 and arg[:1] == b"#"
    try:
        offset = to_int(arg[1:] if scaled else arg)
    except CommandError:
        raise CommandError(BIT_OFFSET) from None
    if scaled:  # C's long long multiplication wraps
        offset = (offset * bits + 2 ** 63) % 2 ** 64 - 2 ** 63
    if offset < 0 or (offset >> 3) >= c.server.config["proto-max-bulk-len"]:
        raise CommandError(BIT_OFFSET)
    return offset


def _window(value: bytes, first: int, end: int) -> bytearray:
    """A writable copy of bytes ``first`` to ``end`` of ``value``, zero-padded."""
    buf = bytearray(memoryview(value)[first:end])
    if len(buf) < end - first:
        buf.extend(bytes(end - first - len(buf)))
    return buf


def _patched(value: bytes, first: int, window: bytearray, size: int) -> bytes:
    """``value`` with its bytes from ``first`` on replaced by ``window``, ``size``
    bytes long (zero-filled between the old end and ``first``), in one copy.

    Copying the string into a bytearray, padding it and freezing it took three
    copies: BITFIELD SET at bit 2**32-8 (a new 512 MB string) held the loop 4-18 s
    and 1 GB (redis-server 1.8-3.7 s, 512 MB). The gap is joined from one shared
    block of zeros, not made as a ``bytes(n)`` (which PyPy fills)."""
    view = memoryview(value)
    end = first + len(window)
    gap = max(0, first - len(value))
    return b"".join([view[:first], *[_ZEROS] * (gap // len(_ZEROS)),
                     memoryview(_ZEROS)[:gap % len(_ZEROS)],
                     memoryview(window)[:size - first], view[end:] if end < len(value) else b""])


#: Zero bytes to join a string's gap from.
_ZEROS = bytes(1 << 20)


def _byte_range(args: List[bytes], length: int, at: int,
                counting: bool = False) -> Tuple[int, int, bool, bool]:
    """BITCOUNT/BITPOS ``start end [BYTE|BIT]`` from ``args[at]`` on, as a range of
    bits ``(first, last)`` after Redis's negative-index rules; also whether the
    range is empty and whether an end was given. The checks come in Redis's
    order, which differs: BITCOUNT reads the end, then the unit; BITPOS the
    unit, then the end."""
    start = to_int(args[at]) if len(args) > at else 0
    end_given = len(args) > at + 1
    end = to_int(args[at + 1]) if counting and end_given else -1
    if counting and start < 0 and end < 0 and start > end:
        return 0, -1, True, end_given  # BITCOUNT replies 0 before reading the unit
    unit_bits = False
    if len(args) > at + 2:
        mode = args[at + 2].upper()
        if mode == b"BIT":
            unit_bits = True
        elif mode != b"BYTE":
            raise CommandError(SYNTAX)
    if not counting and end_given:
        end = to_int(args[at + 1])
    total = length * 8 if unit_bits else length
    if start < 0 and end < 0 and start > end:
        return 0, -1, True, end_given
    if start < 0:
        start += total
    if end < 0:
        end += total
    start, end = max(start, 0), max(end, 0)
    if end >= total:
        end = total - 1
    if start > end:
        return 0, -1, True, end_given
    if unit_bits:
        return start, end, False, end_given
    return start * 8, end * 8 + 7, False, end_given


def _count_ones(value: bytes, first: int, last: int) -> int:
    """Set bits of ``value`` from bit ``first`` to bit ``last``, inclusive."""
    lo, hi = first >> 3, last >> 3
    ones = 0
    for at in range(lo, hi + 1, _CHUNK):
        ones += _chunk_ones(value[at:min(at + _CHUNK, hi + 1)])
    # Take away the bits of the end bytes that lie outside the range.
    head = value[lo] >> (8 - (first & 7)) if first & 7 else 0
    tail = value[hi] & ((1 << (7 - (last & 7))) - 1)
    return ones - _popcount(head) - _popcount(tail)


#: A block holding no 1 bit (for BITPOS 1) and one holding no 0 bit (for BITPOS 0).
_BLANK = {1: bytes(_CHUNK), 0: b"\xff" * _CHUNK}


def _first_bit(value: bytes, bit: int, first: int, last: int) -> int:
    """Position of the first ``bit`` from bit ``first`` to ``last``, or -1."""
    lo, hi = first >> 3, last >> 3
    other = b"\x00" if bit else b"\xff"  # bytes holding no such bit
    at = lo
    while at <= hi:
        if at == lo or at == hi:  # an end byte: check bit by bit
            byte = value[at]
            for pos in range(max(first, at * 8), min(last, at * 8 + 7) + 1):
                if (byte >> (7 - (pos & 7))) & 1 == bit:
                    return pos
            at += 1
            continue
        # Whole blocks without such a bit: a memcmp each, nothing copied (two
        # slices a block made BITPOS over 64 MB take 0.7 s; redis-server 0.02 s).
        blank = _BLANK[bit]
        while at + _CHUNK <= hi and value.startswith(blank, at):
            at += _CHUNK
        stop = min(hi, at + _CHUNK)
        piece = value[at:stop]
        skipped = len(piece) - len(piece.lstrip(other))
        at += skipped
        if at < stop:
            byte = value[at] if bit else value[at] ^ 0xFF
            return at * 8 + 8 - byte.bit_length()
    return -1


# -- SETBIT / GETBIT --------------------------------------------------------------------

@command("setbit", 4, "write denyoom", (1, 1, 1), since="2.2.0", **_BIT)
def setbit(c: Any, args: List[bytes]) -> Any:
    """Set or clear one bit; returns the bit it held."""
    offset = bit_offset(c, args[2])
    try:
        on = to_int(args[3])
    except CommandError:
        on = -1
    if on not in (0, 1):
        raise CommandError("ERR bit is not an integer or out of range")
    db, key = c.db, args[1]
    value = _string(db, key, counted=False)
    byte, shift = offset >> 3, 7 - (offset & 7)
    old = (value[byte] >> shift) & 1 if value is not None and byte < len(value) else 0
    if value is not None and old == on and byte < len(value):
        return old  # Redis still counts it as a write, but announces no event
    check_size(c, byte + 1)
    value = value or b""
    buf = _window(value, byte, byte + 1)
    buf[0] = (buf[0] & ~(1 << shift)) | (on << shift)
    db.set(key, _patched(value, byte, buf, max(len(value), byte + 1)), keep_ttl=True)
    notify(db, STRING, b"setbit", key)
    return old


# Keyspace events on: SETBIT's handler announces, the run handler steps aside.
with_events("setbit")(setbit)

#: The run handler takes offsets of at most this many digits (values up to 1.25 MB):
#: a bigger one may allocate for long, and the general path times it for the slow log.
_RUN_OFFSET_DIGITS = 7
_BIT_REPLIES = (b":0\r\n", b":1\r\n")
_BITS = (b"0", b"1")


@runs_of("setbit")
def setbit_run(c: Any, commands: List[List[bytes]], start: int, out: List[bytes]) -> int:
    """``SETBIT key offset 0|1`` on string or missing keys: :func:`setbit` without
    its call and the dispatcher's checks. A request the general path would refuse
    (an offset not in Redis's canonical digits, a bit not 0 or 1, a wrong type), a
    big offset, or a key whose TTL is due stops the run there. The offset and bit
    are parsed again only when they change, and the new keys they create share
    one value (bytes are immutable)."""
    context = _write_run_context(c)
    if context is None or c.db.blocking:
        return 0
    staged, propagators, metered, credit = context
    db = c.db
    data, expires = db.data, db.expires
    store = db.set
    limit = c.server.config["proto-max-bulk-len"]
    name = commands[start][0]
    parsed_offset = parsed_bit = None
    byte = mask = on = 0
    fresh = b""  # a new key's value for the parsed offset and bit
    now = 0
    ran = 0
    for args in commands[start:] if start else commands:
        if len(args) != 4 or args[0] != name or (metered and credit < 1):
            break
        offset, bit = args[2], args[3]
        if offset != parsed_offset or bit != parsed_bit:
            # Redis's string2ll: digits, no sign, no leading zero ("0" itself is fine).
            if not (offset.isdigit() and len(offset) <= _RUN_OFFSET_DIGITS
                    and (offset[0] != 48 or len(offset) == 1)) or bit not in _BITS:
                break
            position = int(offset)
            byte, mask, on = position >> 3, 0x80 >> (position & 7), bit == b"1"
            if byte >= limit:
                break  # the offset's error
            fresh = bytes(byte) + (bytes((mask,)) if on else b"\0")
            parsed_offset, parsed_bit = offset, bit
        key = args[1]
        value = data.get(key)
        if value is None:
            credit -= 1
            store(key, fresh, True)
            old = 0
        else:
            if value.__class__ is not bytes:
                break
            if expires and key in expires:
                if not now:
                    now = now_ms()
                if expires[key] <= now:
                    break  # the general path expires it (and propagates the DEL)
            credit -= 1
            if byte < len(value):
                held = value[byte]
                old = 1 if held & mask else 0
                if old == on:  # as setbit: no write
                    out.append(_BIT_REPLIES[old])
                    ran += 1
                    continue
                buf = bytearray(value)
                buf[byte] = held ^ mask
            else:
                old = 0
                buf = bytearray(value)
                buf += fresh[len(value):]
            store(key, bytes(buf), True)
        if staged is not None:
            staged.append(args)
        elif propagators:
            staged = propagate_write(c, args, propagators)
        out.append(_BIT_REPLIES[old])
        ran += 1
    if metered:
        c.server.oom_credit = credit
    return ran


@command("getbit", 3, "readonly fast", (1, 1, 1), since="2.2.0", **_BIT)
def getbit(c: Any, args: List[bytes]) -> Any:
    """The bit at an offset (0 past the end)."""
    offset = bit_offset(c, args[2])
    value = _string(c.db, args[1])
    byte = offset >> 3
    if value is None or byte >= len(value):
        return 0
    return (value[byte] >> (7 - (offset & 7))) & 1


# -- BITCOUNT / BITPOS ------------------------------------------------------------------

@command("bitcount", -2, "readonly", (1, 1, 1), since="2.6.0", complexity="O(N)", **_BIT)
def bitcount(c: Any, args: List[bytes]) -> Any:
    """How many bits are set, in the whole string or a BYTE or BIT range."""
    value = _string(c.db, args[1])  # as Redis 7.0: a missing key answers 0 before any check
    if value is None:
        return 0
    if len(args) not in (2, 4, 5):
        raise CommandError(SYNTAX)
    first, last, empty, _ = _byte_range(args, len(value), 2, counting=True)
    return 0 if empty else _count_ones(value, first, last)


@command("bitpos", -3, "readonly", (1, 1, 1), since="2.8.7", complexity="O(N)", **_BIT)
def bitpos(c: Any, args: List[bytes]) -> Any:
    """The first bit set to 0 or 1, in the whole string or a BYTE or BIT range."""
    bit = to_int(args[2])
    if bit not in (0, 1):
        raise CommandError("ERR The bit argument must be 1 or 0.")
    value = _string(c.db, args[1])
    if value is None:
        return -1 if bit else 0
    if len(args) > 6:
        raise CommandError(SYNTAX)
    first, last, empty, end_given = _byte_range(args, len(value), 3)
    if empty:
        return -1
    pos = _first_bit(value, bit, first, last)
    if pos < 0 and bit == 0 and not end_given:
        return last + 1  # no explicit end: the string reads as zero-padded
    return pos


def _combine(op: bytes, sources: List[bytes], size: int) -> bytes:
    """AND, OR or XOR of ``sources``, zero-padded to ``size`` bytes.

    Each distinct value is converted once and folded in at once: ``x & x`` and
    ``x | x`` are ``x``, ``x ^ x`` is 0. A big integer per name held every copy
    together: 1,000 names of one 64 MB key took 97 s (redis-server: 0.8 s) and
    needed 64 GB when the value had no leading zero bytes."""
    named: Dict[int, List[Any]] = {}  # id -> [value, times named]
    for value in sources:
        seen = named.get(id(value))
        if seen is None:
            named[id(value)] = [value, 1]
        else:
            seen[1] += 1
    result: Optional[int] = None
    for value, times in named.values():
        if op == b"XOR" and not times & 1:
            continue  # named an even number of times: cancels out
        n = int.from_bytes(value, "big") << (8 * (size - len(value)))  # zero-padded
        if result is None:
            result = n
        elif op == b"AND":
            result &= n
        elif op == b"OR":
            result |= n
        else:
            result ^= n
    return (result or 0).to_bytes(size, "big")


# -- BITOP ------------------------------------------------------------------------------

@command("bitop", -4, "write denyoom", (2, -1, 1), since="2.6.0", complexity="O(N)", **_BIT)
def bitop(c: Any, args: List[bytes]) -> Any:
    """AND, OR, XOR of strings (NOT of one) into a destination; returns its length."""
    op = args[1].upper()
    if op not in (b"AND", b"OR", b"XOR", b"NOT"):
        raise CommandError(SYNTAX)
    if op == b"NOT" and len(args) != 4:
        raise CommandError("ERR BITOP NOT must be called with a single source key.")
    db = c.db
    sources = []
    for key in args[3:]:
        value = _string(db, key)
        sources.append(value or b"")
    size = max(map(len, sources))
    dest = args[2]
    if not size:
        if db.delete(dest):
            notify(db, GENERIC, b"del", dest)
        return 0
    if op == b"NOT":
        out = sources[0].translate(_NOT)
    else:
        out = _combine(op, sources, size)
    db.set(dest, out)
    notify(db, STRING, b"set", dest)
    return size


# -- BITFIELD ---------------------------------------------------------------------------

_WRAP, _SAT, _FAIL = b"WRAP", b"SAT", b"FAIL"
_BAD_TYPE = ("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not "
             "supported but i64 is.")


def _field_type(arg: bytes) -> Tuple[bool, int]:
    """``i8`` -> (True, 8): signed and width, i1..i64 or u1..u63."""
    kind = arg[:1].lower()
    try:
        bits = int(arg[1:]) if arg[1:].isdigit() else 0
    except ValueError:
        bits = 0
    if kind == b"i" and 1 <= bits <= 64 or kind == b"u" and 1 <= bits <= 63:
        return kind == b"i", bits
    raise CommandError(_BAD_TYPE)


def _get_field(value: bytes, offset: int, bits: int, signed: bool) -> int:
    first, last = offset >> 3, (offset + bits - 1) >> 3
    chunk = value[first:last + 1].ljust(last - first + 1, b"\x00")
    n = int.from_bytes(chunk, "big") >> ((last + 1) * 8 - offset - bits)
    n &= (1 << bits) - 1
    if signed and n >> (bits - 1):
        n -= 1 << bits
    return n


def _set_field(buf: bytearray, offset: int, bits: int, n: int) -> None:
    first, last = offset >> 3, (offset + bits - 1) >> 3
    shift = (last + 1) * 8 - offset - bits
    mask = ((1 << bits) - 1) << shift
    word = int.from_bytes(buf[first:last + 1], "big")
    word = (word & ~mask) | ((n << shift) & mask)
    buf[first:last + 1] = word.to_bytes(last - first + 1, "big")


def _overflowed(total: int, bits: int, signed: bool, mode: bytes) -> Tuple[bool, int]:
    """Whether ``total`` leaves the field's range, and the value WRAP or SAT gives."""
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if lo <= total <= hi:
        return False, total
    if mode == _SAT:
        return True, hi if total > hi else lo
    wrapped = total & ((1 << bits) - 1)
    if signed and wrapped >> (bits - 1):
        wrapped -= 1 << bits
    return True, wrapped


def _parse_bitfield(c: Any, args: List[bytes], readonly: bool) -> List[tuple]:
    """The operations of a BITFIELD call: (op, signed, bits, offset, number, overflow)."""
    ops = []
    mode = _WRAP
    i, n = 2, len(args)
    while i < n:
        name = args[i].upper()
        wanted = {b"GET": 2, b"SET": 3, b"INCRBY": 3, b"OVERFLOW": 1}.get(name)
        if wanted is None or i + wanted >= n:
            raise CommandError(SYNTAX)
        if name == b"OVERFLOW":
            mode = args[i + 1].upper()
            if mode not in (_WRAP, _SAT, _FAIL):
                raise CommandError("ERR Invalid OVERFLOW type specified")
            i += 2
            continue
        signed, bits = _field_type(args[i + 1])
        offset = bit_offset(c, args[i + 2], bits)
        number = 0
        if name != b"GET":
            number = to_int(args[i + 3])
        ops.append((name, signed, bits, offset, number, mode))
        i += wanted + 1
    if readonly and any(op[0] != b"GET" for op in ops):
        raise CommandError("ERR BITFIELD_RO only supports the GET subcommand")
    return ops


def _bitfield(c: Any, args: List[bytes], readonly: bool) -> Any:
    ops = _parse_bitfield(c, args, readonly)
    db, key = c.db, args[1]
    writes = [op for op in ops if op[0] != b"GET"]
    value = _string(db, key, counted=not writes)
    if not writes:
        return [_get_field(value or b"", op[3], op[2], op[1]) for op in ops]
    last_bit = max(op[3] + op[2] - 1 for op in writes)
    check_size(c, (last_bit >> 3) + 1)
    size = max(len(value or b""), (last_bit >> 3) + 1)
    changed = value is None or size != len(value)
    value = value or b""
    # the ops work on a copy of the bytes they touch, not of the whole string
    first = min(op[3] for op in ops) >> 3
    buf = _window(value, first, (max(op[3] + op[2] - 1 for op in ops) >> 3) + 1)
    base = first * 8
    replies: List[Any] = []
    for name, signed, bits, offset, number, mode in ops:
        offset -= base
        old = _get_field(buf, offset, bits, signed)
        if name == b"GET":
            replies.append(old)
            continue
        if name == b"INCRBY":
            over, new = _overflowed(old + number, bits, signed, mode)
        else:  # SET: an unsigned field reads the number as C's uint64_t
            over, new = _overflowed(number if signed else number & 0xFFFFFFFFFFFFFFFF,
                                    bits, signed, mode)
        if over and mode == _FAIL:
            replies.append(None)
            continue
        replies.append(new if name == b"INCRBY" else old)
        if new != old:
            _set_field(buf, offset, bits, new)
            changed = True
    if changed:
        db.set(key, _patched(value, first, buf, size), keep_ttl=True)
        notify(db, STRING, b"setbit", key)
    return replies


@command("bitfield", -2, "write denyoom", (1, 1, 1), since="3.2.0", **_BIT)
def bitfield(c: Any, args: List[bytes]) -> Any:
    """GET, SET and INCRBY integer fields of any width at any bit offset."""
    return _bitfield(c, args, readonly=False)


@command("bitfield_ro", -2, "readonly fast", (1, 1, 1), since="6.0.0", **_BIT)
def bitfield_ro(c: Any, args: List[bytes]) -> Any:
    """BITFIELD with GET only."""
    return _bitfield(c, args, readonly=True)
