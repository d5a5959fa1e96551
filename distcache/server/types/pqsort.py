"""Redis's ``pqsort``: the partial quicksort (Bentley and McIlroy's, from NetBSD) that
orders GEOSEARCH's matches when COUNT cuts them. It is not stable, so matches at equal
distances come out in its own order: replayed here to give Redis's replies exactly."""
from __future__ import annotations

from typing import Any, List


def pqsort(items: List[Any], keys: List[float], stop: int, reverse: bool,
           budget: int) -> bool:
    """Orders ``items`` in place as ``pqsort(items, n, ..., 0, stop - 1)`` does with
    Redis's ``sort_gp_asc`` (``sort_gp_desc`` if ``reverse``) on ``keys``, their
    distances: positions below ``stop`` end sorted. False, with ``items`` part-sorted,
    once the partitions passed over hold more than ``budget`` elements in all."""
    k = [-x for x in keys] if reverse else keys[:]  # (desc: the comparisons negated)
    work = 0
    last = stop - 1
    pending = [(0, len(items))]
    while pending:
        a, n = pending.pop()
        while True:
            work += n
            if work > budget:
                return False
            if n < 7:  # insertion sort
                for m in range(a + 1, a + n):
                    j = m
                    while j > a and k[j - 1] > k[j]:
                        k[j - 1], k[j] = k[j], k[j - 1]
                        items[j - 1], items[j] = items[j], items[j - 1]
                        j -= 1
                break
            pm = a + n // 2
            if n > 7:
                pl, pn = a, a + n - 1
                if n > 40:
                    d = n // 8
                    pl = _med3(k, pl, pl + d, pl + 2 * d)
                    pm = _med3(k, pm - d, pm, pm + d)
                    pn = _med3(k, pn - 2 * d, pn - d, pn)
                pm = _med3(k, pl, pm, pn)
            k[a], k[pm] = k[pm], k[a]
            items[a], items[pm] = items[pm], items[a]
            pivot = k[a]
            pa = pb = a + 1
            pc = pd = a + n - 1
            while True:
                while pb <= pc and k[pb] <= pivot:
                    if k[pb] == pivot:  # equal ones gather at the left end
                        k[pa], k[pb] = k[pb], k[pa]
                        items[pa], items[pb] = items[pb], items[pa]
                        pa += 1
                    pb += 1
                while pb <= pc and k[pc] >= pivot:
                    if k[pc] == pivot:  # and at the right end
                        k[pc], k[pd] = k[pd], k[pc]
                        items[pc], items[pd] = items[pd], items[pc]
                        pd -= 1
                    pc -= 1
                if pb > pc:
                    break
                k[pb], k[pc] = k[pc], k[pb]
                items[pb], items[pc] = items[pc], items[pb]
                pb += 1
                pc -= 1
            pn = a + n
            # the equal ends swapped into the middle
            _swap_runs(k, items, a, pb - min(pa - a, pb - pa), min(pa - a, pb - pa))
            r = min(pd - pc, pn - pd - 1)
            _swap_runs(k, items, pb, pn - r, r)
            # the smaller ones, then the larger ones, each sorted on only where it
            # holds positions below ``stop``
            r = pb - pa
            if r > 1 and a <= last:
                pending.append((a, r))
            r = pd - pc
            if r > 1 and pn - r <= last:
                a, n = pn - r, r
                continue
            break
    return True


def _med3(k: List[float], a: int, b: int, c: int) -> int:
    ka, kb, kc = k[a], k[b], k[c]
    if ka < kb:
        return b if kb < kc else (c if ka < kc else a)
    return b if kb > kc else (a if ka < kc else c)


def _swap_runs(k: List[float], items: List[Any], i: int, j: int, n: int) -> None:
    for t in range(n):
        k[i + t], k[j + t] = k[j + t], k[i + t]
        items[i + t], items[j + t] = items[j + t], items[i + t]
