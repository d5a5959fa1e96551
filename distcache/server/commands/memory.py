"""MEMORY USAGE / STATS / DOCTOR / MALLOC-STATS / PURGE / HELP.

Sizes are the estimates of :mod:`distcache.server.eviction` (``sys.getsizeof``
rounded to the allocator's granularity, containers sized from sampled
elements), the same figures ``used_memory`` and eviction work with.
"""
from __future__ import annotations

import gc
import sys
import time
from typing import Any, List

from ...protocol import OK, Verbatim
from ..errors import SYNTAX, CommandError
from ..eviction import DICT_ENTRY, EXPIRE_ENTRY, _getsizeof, alloc, key_cost, size_of
from ..info import rss_bytes
from .args import to_int
from .table import command, container, help_reply

_MEM = dict(group="server")

container("memory", -2, summary="A container for memory diagnostics commands",
          since="4.0.0")


@command("usage", -3, "readonly", (2, 2, 1), since="4.0.0", parent="memory", **_MEM)
def memory_usage(c: Any, args: List[bytes]) -> Any:
    """Bytes used by a key and its value (nested values sampled)."""
    samples = 5
    i = 3
    while i < len(args):
        if args[i].upper() == b"SAMPLES" and i + 1 < len(args):
            samples = to_int(args[i + 1])
            if samples < 0:
                raise CommandError(SYNTAX)
            i += 2
        else:
            raise CommandError(SYNTAX)
    key = args[2]
    value = c.db.peek(key)
    if value is None:
        return None
    if value.__class__ is bytes:  # as the keyspace's estimate counts it (PyPy: calibrated)
        return key_cost(key, value, False)
    return alloc(_getsizeof(key)) + size_of(value, samples) + DICT_ENTRY


@command("stats", 2, "", since="4.0.0", parent="memory", **_MEM)
def memory_stats(c: Any, args: List[bytes]) -> Any:
    """Memory usage details, as a map."""
    server = c.server
    used = server.used_memory()
    peak = max(getattr(server, "peak_memory", 0), used)
    server.peak_memory = peak
    rss = rss_bytes()
    keys = c.keyspace.total_keys()
    engine = getattr(server, "eviction", None)
    startup = 256 * 1024
    clients, replicas = server.client_memory.totals()  # as INFO's mem_clients_*
    out: dict = {b"peak.allocated": peak, b"total.allocated": used,
                 b"startup.allocated": startup, b"replication.backlog": 0,
                 b"clients.slaves": replicas, b"clients.normal": clients,
                 b"cluster.links": 0,
                 b"aof.buffer": 0, b"lua.caches": 0, b"functions.caches": 0}
    overhead = startup + clients + replicas
    for db in c.keyspace.dbs:
        if db.data:
            main = DICT_ENTRY * len(db.data)
            exp = EXPIRE_ENTRY * len(db.expires)
            overhead += main + exp
            out[b"db.%d" % db.id] = {b"overhead.hashtable.main": main,
                                      b"overhead.hashtable.expires": exp,
                                      b"overhead.hashtable.slot-to-keys": 0}
    dataset = max(0, used - overhead)
    out.update({
        b"overhead.total": overhead, b"keys.count": keys,
        b"keys.bytes-per-key": (used - startup) // keys if keys else 0,
        b"dataset.bytes": dataset,
        b"dataset.percentage": dataset * 100.0 / (used - startup) if used > startup else 0.0,
        b"peak.percentage": used * 100.0 / peak if peak else 0.0,
        b"allocator.allocated": used, b"allocator.active": used, b"allocator.resident": rss,
        b"allocator-fragmentation.ratio": 1.0, b"allocator-fragmentation.bytes": 0,
        b"allocator-rss.ratio": rss / used if used else 0.0,
        b"allocator-rss.bytes": rss - used,
        b"rss-overhead.ratio": 1.0, b"rss-overhead.bytes": 0,
        b"fragmentation": rss / used if used else 0.0,
        b"fragmentation.bytes": rss - used,
    })
    if engine is not None:
        out[b"evicted.keys"] = c.keyspace.evicted_keys
    return out


_SAM_EMPTY = ("Hi Sam, this instance is empty or is using very little memory, my issues "
              "detector can't be used in these conditions. Please, leave for your mission on "
              "Earth and fill it with some data. The new Sam and I will be back to our "
              "programming as soon as I finished rebooting.")
_SAM_OK = ("Hi Sam, I can't find any memory issue in your instance. I can only account for "
           "what occurs on this base.")


@command("doctor", 2, "", since="4.0.0", parent="memory", **_MEM)
def memory_doctor(c: Any, args: List[bytes]) -> Any:
    """Report memory problems."""
    used = c.server.used_memory()
    return Verbatim((_SAM_EMPTY if used < 5 * 1024 * 1024 else _SAM_OK).encode())


@command("malloc-stats", 2, "", since="4.0.0", parent="memory", **_MEM)
def memory_malloc_stats(c: Any, args: List[bytes]) -> Any:
    """Allocator statistics (Python's allocator: object counts)."""
    blocks = getattr(sys, "getallocatedblocks", lambda: 0)()  # not on PyPy
    text = (f"Stats not supported for the current allocator (pymalloc): "
            f"{blocks} blocks allocated, "
            f"{len(gc.get_objects())} tracked objects")
    return Verbatim(text.encode())


#: A full collection takes tens of milliseconds on a large heap; more than one a
#: second frees nothing more, and a pipeline of PURGEs would hold the event loop.
PURGE_INTERVAL = 1.0
_last_purge = [float("-inf")]


@command("purge", 2, "", since="4.0.0", parent="memory", **_MEM)
def memory_purge(c: Any, args: List[bytes]) -> Any:
    """Ask the allocator to release memory (runs the garbage collector, at most once a
    second)."""
    now = time.monotonic()
    if now - _last_purge[0] >= PURGE_INTERVAL:
        _last_purge[0] = now
        gc.collect()
    return OK


_HELP = [
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
]


@command("help", 2, "loading stale", since="4.0.0", parent="memory", **_MEM)
def memory_help(c: Any, args: List[bytes]) -> Any:
    """Show MEMORY's subcommands."""
    return help_reply("MEMORY", _HELP)
