"""Redis's packed blobs: listpack, ziplist, intset and zipmap.

Decoders check every header and length against the blob before slicing and
raise :class:`RdbError` (offsets are within the blob). ``listpack`` and
``intset`` also encode, choosing entry encodings as Redis does (a string that
is a canonical 64-bit integer is stored as an integer).
"""
from __future__ import annotations

import re
import struct
from typing import Iterable, List, Union

from .errors import RdbError

Entry = Union[bytes, int]
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
_CANONICAL = re.compile(rb"-?[1-9][0-9]{0,19}\Z|0\Z")


def as_int64(value: bytes):
    """The integer ``value`` spells in Redis's strict form (string2ll), or None."""
    if _CANONICAL.match(value):
        n = int(value)
        if INT64_MIN <= n <= INT64_MAX:
            return n
    return None


# -- listpack --------------------------------------------------------------------------

def _backlen(n: int) -> bytes:
    if n <= 127:
        return bytes((n,))
    if n < 16383:
        return bytes((n >> 7, (n & 127) | 128))
    if n < 2097151:
        return bytes((n >> 14, ((n >> 7) & 127) | 128, (n & 127) | 128))
    if n < 268435455:
        return bytes((n >> 21, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128, (n & 127) | 128))
    return bytes((n >> 28, ((n >> 21) & 127) | 128, ((n >> 14) & 127) | 128,
                  ((n >> 7) & 127) | 128, (n & 127) | 128))


_SMALL_BACKLEN = [bytes((n,)) for n in range(128)]


def lp_entry(value: Entry) -> bytes:
    """One listpack entry (encoding, data, backlen) for ``value``."""
    n = value if value.__class__ is int else as_int64(value)
    if n is not None:
        if 0 <= n <= 127:
            return bytes((n, 1))
        if -4096 <= n <= 4095:
            n &= 0x1FFF
            return bytes(((n >> 8) | 0xC0, n & 0xFF, 2))
        if -32768 <= n <= 32767:
            return b"\xf1" + (n & 0xFFFF).to_bytes(2, "little") + b"\x03"
        if -8388608 <= n <= 8388607:
            return b"\xf2" + (n & 0xFFFFFF).to_bytes(3, "little") + b"\x04"
        if -2147483648 <= n <= 2147483647:
            return b"\xf3" + (n & 0xFFFFFFFF).to_bytes(4, "little") + b"\x05"
        return b"\xf4" + (n & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little") + b"\x09"
    size = len(value)
    if size < 64:
        return bytes((0x80 | size,)) + value + _SMALL_BACKLEN[size + 1]
    if size < 4096:
        head = bytes((0xE0 | (size >> 8), size & 0xFF))
    else:
        head = b"\xf0" + size.to_bytes(4, "little")
    return head + value + _backlen(len(head) + size)


def lp_build(entries: List[bytes]) -> bytes:
    """A listpack from already-encoded entries."""
    body = b"".join(entries)
    count = len(entries) if len(entries) < 65535 else 65535
    return (len(body) + 7).to_bytes(4, "little") + count.to_bytes(2, "little") + body + b"\xff"


def listpack(values: Iterable[Entry]) -> bytes:
    return lp_build([lp_entry(v) for v in values])


def lp_decode(blob: bytes) -> List[bytes]:
    """The entries of a listpack, as bytes (integers in decimal, as Redis returns them)."""
    size = len(blob)
    if size < 7:
        raise RdbError("listpack shorter than its header", 0)
    total = int.from_bytes(blob[0:4], "little")
    if total != size:
        raise RdbError(f"listpack header says {total} bytes, blob has {size}", 0)
    if blob[-1] != 0xFF:
        raise RdbError("listpack without its end byte", size - 1)
    count = int.from_bytes(blob[4:6], "little")
    out: List[bytes] = []
    append = out.append
    p = 6
    end = size - 1
    while p < end:
        start = p
        b = blob[p]
        if b < 0x80:
            append(b"%d" % b)
            p += 1
        elif b < 0xC0:
            n = b & 0x3F
            p += 1
            if p + n > end:
                raise RdbError("listpack string past the end", start)
            append(blob[p:p + n])
            p += n
        elif b < 0xE0:
            if p + 2 > end:
                raise RdbError("listpack entry past the end", start)
            v = ((b & 0x1F) << 8) | blob[p + 1]
            append(b"%d" % (v - 8192 if v >= 4096 else v))
            p += 2
        elif b < 0xF0:
            if p + 2 > end:
                raise RdbError("listpack entry past the end", start)
            n = ((b & 0x0F) << 8) | blob[p + 1]
            p += 2
            if p + n > end:
                raise RdbError("listpack string past the end", start)
            append(blob[p:p + n])
            p += n
        elif b == 0xF0:
            if p + 5 > end:
                raise RdbError("listpack entry past the end", start)
            n = int.from_bytes(blob[p + 1:p + 5], "little")
            p += 5
            if p + n > end:
                raise RdbError("listpack string past the end", start)
            append(blob[p:p + n])
            p += n
        elif 0xF1 <= b <= 0xF4:
            width = (2, 3, 4, 8)[b - 0xF1]
            if p + 1 + width > end:
                raise RdbError("listpack entry past the end", start)
            append(b"%d" % int.from_bytes(blob[p + 1:p + 1 + width], "little", signed=True))
            p += 1 + width
        else:
            raise RdbError(f"bad listpack entry encoding 0x{b:02x}", start)
        entry_len = p - start
        width = 1 if entry_len <= 127 else 2 if entry_len < 16383 else \
            3 if entry_len < 2097151 else 4 if entry_len < 268435455 else 5
        if p + width > end or blob[p:p + width] != _backlen(entry_len):
            raise RdbError("bad listpack entry back length", p)
        p += width
    if count != 65535 and count != len(out):
        raise RdbError(f"listpack header says {count} entries, found {len(out)}", 4)
    return out


# -- ziplist (RDB 9 and older) -------------------------------------------------------

def zl_decode(blob: bytes) -> List[bytes]:
    """The entries of a ziplist (as bytes)."""
    size = len(blob)
    if size < 11:
        raise RdbError("ziplist shorter than its header", 0)
    total, _tail, count = struct.unpack_from("<IIH", blob)
    if total != size:
        raise RdbError(f"ziplist header says {total} bytes, blob has {size}", 0)
    if blob[-1] != 0xFF:
        raise RdbError("ziplist without its end byte", size - 1)
    out: List[bytes] = []
    p = 10
    end = size - 1
    while p < end:
        start = p
        p += 5 if blob[p] == 0xFE else 1  # previous entry's length
        if p >= end:
            raise RdbError("ziplist entry past the end", start)
        b = blob[p]
        kind = b >> 6
        if kind == 0:
            n, p = b & 0x3F, p + 1
        elif kind == 1:
            if p + 2 > end:
                raise RdbError("ziplist entry past the end", start)
            n, p = ((b & 0x3F) << 8) | blob[p + 1], p + 2
        elif kind == 2:
            if p + 5 > end:
                raise RdbError("ziplist entry past the end", start)
            n, p = int.from_bytes(blob[p + 1:p + 5], "big"), p + 5
        else:
            if 0xF1 <= b <= 0xFD:
                out.append(b"%d" % ((b & 0x0F) - 1))
                p += 1
                continue
            width = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}.get(b)
            if width is None:
                raise RdbError(f"bad ziplist entry encoding 0x{b:02x}", p)
            if p + 1 + width > end:
                raise RdbError("ziplist entry past the end", start)
            out.append(b"%d" % int.from_bytes(blob[p + 1:p + 1 + width], "little", signed=True))
            p += 1 + width
            continue
        if p + n > end:
            raise RdbError("ziplist string past the end", start)
        out.append(blob[p:p + n])
        p += n
    if count != 65535 and count != len(out):
        raise RdbError(f"ziplist header says {count} entries, found {len(out)}", 8)
    return out


# -- intset ----------------------------------------------------------------------------

_INTSET_FORMATS = {2: "h", 4: "i", 8: "q"}


def intset(values: List[int]) -> bytes:
    """An intset of sorted ``values`` with the narrowest encoding that holds them all."""
    lo, hi = (values[0], values[-1]) if values else (0, 0)
    width = 2 if -32768 <= lo and hi <= 32767 else \
        4 if -2147483648 <= lo and hi <= 2147483647 else 8
    return struct.pack("<II%d%s" % (len(values), _INTSET_FORMATS[width]),
                       width, len(values), *values)


def intset_decode(blob: bytes) -> List[bytes]:
    if len(blob) < 8:
        raise RdbError("intset shorter than its header", 0)
    width, count = struct.unpack_from("<II", blob)
    fmt = _INTSET_FORMATS.get(width)
    if fmt is None:
        raise RdbError(f"bad intset encoding {width}", 0)
    if 8 + width * count != len(blob):
        raise RdbError(f"intset of {count} x {width} bytes in a {len(blob)}-byte blob", 4)
    return [b"%d" % v for v in struct.unpack_from("<%d%s" % (count, fmt), blob, 8)]


# -- zipmap (RDB 1..5 small hashes) ----------------------------------------------------

def zipmap_decode(blob: bytes) -> List[bytes]:
    """Fields and values of a zipmap, alternating."""
    out: List[bytes] = []
    end = len(blob)
    p = 1
    if end < 2:
        raise RdbError("zipmap shorter than its header", 0)
    while True:
        if p >= end:
            raise RdbError("zipmap without its end byte", p)
        b = blob[p]
        if b == 0xFF:
            break
        field_or_value = len(out) % 2
        if b < 254:
            n, p = b, p + 1
        elif b == 254:
            if p + 5 > end:
                raise RdbError("zipmap length past the end", p)
            n, p = int.from_bytes(blob[p + 1:p + 5], "little"), p + 5
        else:
            raise RdbError("bad zipmap length", p)
        free = 0
        if field_or_value:
            if p >= end:
                raise RdbError("zipmap entry past the end", p)
            free, p = blob[p], p + 1
        if p + n + free > end:
            raise RdbError("zipmap entry past the end", p)
        out.append(blob[p:p + n])
        p += n + free
    if len(out) % 2:
        raise RdbError("zipmap with a field and no value", p)
    return out
