"""LCS: the longest common subsequence of two strings (Redis 7.0), with LEN and IDX.

Redis fills a (len(a)+1) x (len(b)+1) table; it refuses when that table would
pass ``proto-max-bulk-len``, which still allows about 134M cells, too many for a
Python loop. So each row is computed at once as a bit vector (Hyyrö's
bit-parallel LCS): bit j of row i is 0 where LCS(a[:i], b[:j+1]) grows, so
LCS(i, j) is j minus the ones below bit j. The rows are kept, and the walk back
through them takes Redis's path, so the string and the IDX ranges are Redis's.
"""
from __future__ import annotations

from typing import Any, Dict, List

from ..errors import CommandError, SYNTAX
from .args import to_int
from .table import command

try:
    _popcount = int.bit_count  # type: ignore[attr-defined]  # Python 3.10+
except AttributeError:  # pragma: no cover  (3.9)
    def _popcount(n: int) -> int:
        return bin(n).count("1")

_NOT_STRINGS = "ERR The specified keys must contain string values"


def lcs_rows(a: bytes, b: bytes) -> List[int]:
    """Row i (0..len(a)) of the LCS table of ``a`` and ``b``, as bit vectors."""
    full = (1 << len(b)) - 1
    masks: Dict[int, int] = {}
    zeros = b"0" * 256
    for ch in set(b):  # bit j set where b[j] == ch, built by C-speed translate
        table = zeros[:ch] + b"1" + zeros[ch + 1:]
        masks[ch] = int(b.translate(table)[::-1], 2)
    row = full
    rows = [row]
    for ch in a:
        matched = row & masks.get(ch, 0)
        row = ((row + matched) | (row - matched)) & full
        rows.append(row)
    return rows


def _length(rows: List[int], i: int, j: int) -> int:
    return j - _popcount(rows[i] & ((1 << j) - 1))


@command("lcs", -3, "readonly", (1, 2, 1), group="string", since="7.0.0",
         complexity="O(N*M)")
def lcs(c: Any, args: List[bytes]) -> Any:
    """The longest common subsequence of two strings, its length, or where it lies."""
    db = c.db
    values = [db.get(args[1]), db.get(args[2])]
    if any(v is not None and v.__class__ is not bytes for v in values):
        raise CommandError(_NOT_STRINGS)
    a, b = (v or b"" for v in values)
    want_idx = want_len = with_len = False
    min_len = 0
    i = 3
    while i < len(args):
        opt = args[i].upper()
        if opt == b"IDX":
            want_idx = True
        elif opt == b"LEN":
            want_len = True
        elif opt == b"WITHMATCHLEN":
            with_len = True
        elif opt == b"MINMATCHLEN" and i + 1 < len(args):
            min_len = max(to_int(args[i + 1]), 0)
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    if want_idx and want_len:
        raise CommandError("ERR If you want both the length and indexes, please just use IDX.")
    if len(a) >= 2 ** 32 - 2 or len(b) >= 2 ** 32 - 2:
        raise CommandError("ERR String too long for LCS")
    if (len(a) + 1) * (len(b) + 1) * 4 > c.server.config["proto-max-bulk-len"]:
        raise CommandError("ERR Insufficient memory, transient memory for LCS exceeds "
                           "proto-max-bulk-len")
    rows = lcs_rows(a, b)
    total = _length(rows, len(a), len(b))
    if want_len:
        return total
    return _walk_back(a, b, rows, total, want_idx, min_len, with_len)


def _walk_back(a: bytes, b: bytes, rows: List[int], total: int, want_idx: bool,
               min_len: int, with_len: bool) -> Any:
    """Redis's walk from the table's end: the LCS string, or its IDX ranges."""
    found = bytearray(total)
    ranges: List[Any] = []
    unset = len(a)  # Redis's marker for "no range under way"
    a_start, a_end, b_start, b_end = unset, 0, 0, 0
    i, j, left = len(a), len(b), total
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            found[left - 1] = a[i - 1]
            if a_start == unset:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:  # contiguous: grow the range backwards
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            left -= 1
            i -= 1
            j -= 1
        else:
            if _length(rows, i - 1, j) > _length(rows, i, j - 1):
                i -= 1
            else:
                j -= 1
            if a_start != unset:
                emit = True
        if emit:
            size = a_end - a_start + 1
            if want_idx and (min_len == 0 or size >= min_len):
                match: List[Any] = [[a_start, a_end], [b_start, b_end]]
                if with_len:
                    match.append(size)
                ranges.append(match)
            a_start = unset
    if want_idx:
        return {b"matches": ranges, b"len": total}  # a map in RESP3
    return bytes(found)
