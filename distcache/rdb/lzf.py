"""LZF, the compression of RDB strings (liblzf 3.6 as Redis builds it).

``compress`` follows liblzf's ``lzf_compress`` step for step with Redis's
settings (HLOG 16, VERY_FAST, a fresh hash table), so it emits the bytes
Redis emits and gives up where Redis gives up (output not shorter than the
limit). ``decompress`` checks every reference against what was produced so
far: bad input raises ``LzfError``, never reads or writes out of bounds.
"""
from __future__ import annotations

import zlib
from typing import Optional

MAX_LIT = 1 << 5
MAX_OFF = 1 << 13
MAX_REF = (1 << 8) + (1 << 3)
#: The most one input byte can expand to: a 3-byte back reference yields 264 bytes.
MAX_RATIO = 88


class LzfError(ValueError):
    """Malformed LZF data."""


def decompress(data: bytes, size: int) -> bytes:
    """Decompress ``data`` into exactly ``size`` bytes (LzfError otherwise)."""
    out = bytearray()
    n = len(data)
    ip = 0
    while ip < n:
        ctrl = data[ip]
        ip += 1
        if ctrl < 32:  # a literal run of ctrl + 1 bytes
            end = ip + ctrl + 1
            if end > n:
                raise LzfError("literal run past the end of the input")
            if len(out) + ctrl + 1 > size:
                raise LzfError("output longer than declared")
            out += data[ip:end]
            ip = end
            continue
        length = ctrl >> 5
        if ip >= n:
            raise LzfError("back reference past the end of the input")
        if length == 7:
            length += data[ip]
            ip += 1
            if ip >= n:
                raise LzfError("back reference past the end of the input")
        back = ((ctrl & 0x1F) << 8) + data[ip] + 1
        ip += 1
        length += 2
        if len(out) + length > size:
            raise LzfError("output longer than declared")
        start = len(out) - back
        if start < 0:
            raise LzfError("back reference before the start of the output")
        if back >= length:
            out += out[start:start + length]
        else:  # overlapping: the last `back` bytes repeat
            chunk = out[start:]
            whole, rest = divmod(length, back)
            out += chunk * whole + chunk[:rest]
    if len(out) != size:
        raise LzfError("output shorter than declared")
    return bytes(out)


def repeats(data: bytes) -> int:
    """At least how many positions of ``data`` start a 3-byte sequence that also
    starts within the 8192 positions before (what any LZF back reference needs):
    counted block by block over sets of slices, at C speed, in bounded memory."""
    get = data.__getitem__
    total = len(data) - 2
    count = 0
    before: "set[bytes]" = set()
    for start in range(0, total, MAX_OFF):
        stop = min(start + MAX_OFF, total)
        here = set(map(get, map(slice, range(start, stop), range(start + 3, stop + 3))))
        count += (stop - start) - len(here) + len(here & before)
        before = here
    return count


def cannot_fit(data: bytes, limit: int) -> bool:
    """True when no LZF encoding of ``data`` fits in ``limit`` bytes (so liblzf
    returns 0). A match of L bytes needs L - 2 positions counted by
    :func:`repeats` (R); so matches save at most R bytes, there are at most R of
    them, covering at most 3R bytes, and the literals left need a control byte
    per 32: the output is at least n - R + (n - 3R) / 32."""
    n = len(data)
    r = repeats(data)
    return 32 * (n - r) + (n - 3 * r) > 32 * limit


#: Inputs at least this long are first checked with :func:`cannot_fit`: random
#: bytes are then refused ~20x faster than by compressing them byte by byte.
FIT_CHECK_MIN = 256


def _looks_random(data: bytes) -> bool:
    """Whether deflate finds little to gain in the first 4 KB: only then is the
    :func:`cannot_fit` check worth its cost (it decides nothing by itself)."""
    sample = data[:4096]
    return len(zlib.compress(sample, 1)) * 10 > len(sample) * 9


def compress(data: bytes, limit: int) -> Optional[bytes]:
    """LZF-compress ``data`` into at most ``limit`` bytes, or None when it does
    not fit (liblzf's 0 return). Redis asks for ``len(data) - 4``."""
    in_len = len(data)
    if not in_len or limit <= 0:
        return None
    if in_len >= FIT_CHECK_MIN and _looks_random(data) and cannot_fit(data, limit):
        return None
    out = bytearray(limit + 8)
    out_end = limit
    htab = [0] * 65536  # a fresh table: every slot at offset 0, which never matches
    ip = 0
    op = 1  # out[0] is the first run's control byte
    lit = 0
    hval = (data[0] << 8) | data[1] if in_len > 1 else 0
    last = in_len - 2
    tail = False  # past the last position a match can start at
    while ip < in_len:
        if tail:
            pass
        elif ip >= last:
            if op + 3 > out_end:  # liblzf's one check before the last literals
                return None
            tail = True
        else:
            hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFF
            slot = ((hval >> 8) - hval * 5) & 0xFFFF
            ref = htab[slot]
            htab[slot] = ip
            off = ip - ref - 1
            if off < MAX_OFF and ref and data[ref + 2] == data[ip + 2] \
                    and data[ref] == data[ip] and data[ref + 1] == data[ip + 1]:
                length = 2
                maxlen = in_len - ip - length
                if maxlen > MAX_REF:
                    maxlen = MAX_REF
                if op + 4 >= out_end and op - (not lit) + 4 >= out_end:
                    return None
                out[op - lit - 1] = lit - 1 & 0xFF
                op -= not lit
                # liblzf compares 16 bytes unrolled (not bounded by maxlen) when
                # maxlen > 16, then one by one: mirrored, for the same lengths
                unrolled_miss = False
                if maxlen > 16:
                    for _ in range(16):
                        length += 1
                        if data[ref + length] != data[ip + length]:
                            unrolled_miss = True
                            break
                if not unrolled_miss:
                    length += 1
                    while length < maxlen and data[ref + length] == data[ip + length]:
                        length += 1
                length -= 2
                ip += 1
                if length < 7:
                    out[op] = (off >> 8) + (length << 5)
                    op += 1
                else:
                    out[op] = (off >> 8) + (7 << 5)
                    out[op + 1] = length - 7
                    op += 2
                out[op] = off & 0xFF
                op += 2  # and start a run
                lit = 0
                ip += length + 1
                if ip < last:  # hash the match's last two positions (VERY_FAST)
                    ip -= 2
                    hval = (data[ip] << 8) | data[ip + 1]
                    hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFF
                    htab[((hval >> 8) - hval * 5) & 0xFFFF] = ip
                    ip += 1
                    hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFF
                    htab[((hval >> 8) - hval * 5) & 0xFFFF] = ip
                    ip += 1
                continue
            if op >= out_end:
                return None
        # one literal byte (one by one, as liblzf: each position updates the table)
        lit += 1
        out[op] = data[ip]
        op += 1
        ip += 1
        if lit == MAX_LIT:
            out[op - lit - 1] = lit - 1
            lit = 0
            op += 1
    if not tail and op + 3 > out_end:  # a match ran to the end: liblzf still checks
        return None
    out[op - lit - 1] = lit - 1 & 0xFF
    op -= not lit
    return bytes(out[:op])
