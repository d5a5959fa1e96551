"""INFO: the server's sections, with Redis's field names.

Each section is a function returning ordered ``(field, value)`` pairs. Other
parts of the server (persistence, eviction) add or override fields through
``server.info_providers[section]``, so this module needs no knowledge of
them.
"""
from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Tuple

from .. import __version__
from .pubsub import subscribed
from .pypy_gc import gc_heap_fields

if TYPE_CHECKING:
    from .app import CacheServer

Fields = List[Tuple[str, Any]]
REDIS_VERSION = "7.0.15"
RUN_ID = os.urandom(20).hex()


def rss_bytes() -> int:
    """Resident set size of this process, or 0 where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError, IndexError):
        pass
    try:  # pragma: no cover - non-Linux
        import resource
        usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return usage if sys.platform == "darwin" else usage * 1024
    except Exception:  # pragma: no cover
        return 0


def human(size: int) -> str:
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.2f}{unit}"
    return f"{size}B"


def _server(s: "CacheServer") -> Fields:
    import platform  # here, not at start-up: its import compiles 9 regexes
    uptime = int(time.time() - s.start_time)
    return [("redis_version", REDIS_VERSION), ("distcache_version", __version__),
            ("redis_git_sha1", "00000000"), ("redis_git_dirty", 0),
            ("redis_build_id", "distcache"), ("redis_mode", "standalone"),
            ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
            ("arch_bits", 64), ("monotonic_clock", "POSIX clock_gettime"),
            ("multiplexing_api", s.loop_kind), ("python_version", platform.python_version()),
            ("process_id", os.getpid()), ("process_supervised", "no"), ("run_id", RUN_ID),
            ("tcp_port", s.port), ("server_time_usec", int(time.time() * 1e6)),
            ("uptime_in_seconds", uptime), ("uptime_in_days", uptime // 86400),
            ("hz", s.hz), ("configured_hz", s.hz), ("executable", sys.executable),
            ("config_file", s.config.source_file or ""), ("io_threads_active", 0)]


def _clients(s: "CacheServer") -> Fields:
    pubsub = sum(1 for c in s.clients.values() if subscribed(c))
    replicas = len(s.replication.primary.replicas)  # as Redis: not counted as clients
    s.client_memory.fresh()
    peak_in, peak_out = s.client_memory.recent_peaks()  # the last 8 seconds
    return [("connected_clients", len(s.clients) - replicas), ("cluster_connections", 0),
            ("maxclients", s.config["maxclients"]), ("client_recent_max_input_buffer", peak_in),
            ("client_recent_max_output_buffer", peak_out), ("blocked_clients", s.blocked_clients),
            ("tracking_clients", s.tracking.clients), ("pubsub_clients", pubsub),
            ("clients_in_timeout_table", s.blocked_clients)]


def _memory(s: "CacheServer") -> Fields:
    rss = rss_bytes()
    used = s.used_memory()
    s.peak_memory = max(getattr(s, "peak_memory", 0), used)
    maxmemory = s.config["maxmemory"]
    system = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return [("used_memory", used), ("used_memory_human", human(used)),
            ("used_memory_rss", rss), ("used_memory_rss_human", human(rss)),
            ("used_memory_peak", s.peak_memory), ("used_memory_peak_human", human(s.peak_memory)),
            ("used_memory_peak_perc", f"{100 * used / s.peak_memory:.2f}%"),
            ("used_memory_overhead", 0), ("used_memory_startup", 0),
            ("used_memory_dataset", used), ("used_memory_dataset_perc", "100.00%"),
            ("total_system_memory", system), ("total_system_memory_human", human(system)),
            ("maxmemory", maxmemory),
            ("maxmemory_human", human(maxmemory)),
            ("maxmemory_policy", s.config["maxmemory-policy"]),
            ("mem_fragmentation_ratio", round(rss / used, 2) if used else 0),
            ("mem_fragmentation_bytes", rss - used),
            ("mem_allocator", "pymalloc")] + gc_heap_fields()


def _persistence(s: "CacheServer") -> Fields:
    return [("loading", int(s.loading)), ("async_loading", 0),
            ("rdb_changes_since_last_save", s.keyspace.dirty),
            ("rdb_bgsave_in_progress", 0), ("rdb_last_save_time", int(s.start_time)),
            ("rdb_last_bgsave_status", "ok"), ("aof_enabled", 0),
            ("aof_rewrite_in_progress", 0), ("aof_rewrite_scheduled", 0),
            ("aof_last_bgrewrite_status", "ok"), ("aof_last_write_status", "ok")]


def _stats(s: "CacheServer") -> Fields:
    st = s.stats
    ks = s.keyspace
    pubsub = s.pubsub_counts()
    return [("total_connections_received", st["total_connections_received"]),
            ("total_commands_processed", st["total_commands_processed"]),
            ("instantaneous_ops_per_sec", s.ops_per_sec()),
            ("rejected_connections", st["rejected_connections"]),
            ("expired_keys", ks.expired_keys), ("evicted_keys", ks.evicted_keys),
            ("evicted_clients", st["evicted_clients"]),
            ("keyspace_hits", ks.hits), ("keyspace_misses", ks.misses),
            ("pubsub_channels", pubsub[0]), ("pubsub_patterns", pubsub[1]),
            ("pubsubshard_channels", pubsub[2]),
            ("client_query_buffer_limit_disconnections",
             st["client_query_buffer_limit_disconnections"]),
            ("client_output_buffer_limit_disconnections",
             st["client_output_buffer_limit_disconnections"]),
            ("total_error_replies", st["total_error_replies"]),
            ("unexpected_error_replies", 0)]


def _errorstats(s: "CacheServer") -> Fields:
    return [(f"errorstat_{code}", f"count={n}") for code, n in sorted(s.error_stats.items())]


def _replication(s: "CacheServer") -> Fields:
    return s.replication.info_fields()


def _cpu(s: "CacheServer") -> Fields:
    t = os.times()
    return [("used_cpu_sys", round(t.system, 6)), ("used_cpu_user", round(t.user, 6)),
            ("used_cpu_sys_children", round(t.children_system, 6)),
            ("used_cpu_user_children", round(t.children_user, 6))]


def _commandstats(s: "CacheServer") -> Fields:
    from .commands.table import COMMANDS
    out: Fields = []
    for name, spec in sorted(COMMANDS.items()):
        specs = [spec] + sorted({x.name: x for x in spec.subcommands.values()}.values(),
                                key=lambda x: x.name)
        for x in specs:
            if x.calls or x.failed:
                label = x.fullname.replace("|", "|")
                out.append((f"cmdstat_{label}", f"calls={x.calls},usec=0,usec_per_call=0.00,"
                                                f"rejected_calls=0,failed_calls={x.failed}"))
    return out


def _modules(s: "CacheServer") -> Fields:
    return []


def _cluster(s: "CacheServer") -> Fields:
    return [("cluster_enabled", 0)]


def _keyspace(s: "CacheServer") -> Fields:
    out: Fields = []
    for db in s.keyspace.dbs:
        if db.data:
            out.append((f"db{db.id}", f"keys={len(db.data)},expires={len(db.expires)},avg_ttl=0"))
    return out


SECTIONS: Dict[str, Callable[["CacheServer"], Fields]] = {
    "server": _server, "clients": _clients, "memory": _memory, "persistence": _persistence,
    "stats": _stats, "replication": _replication, "cpu": _cpu,
    "commandstats": _commandstats, "modules": _modules, "errorstats": _errorstats,
    "cluster": _cluster, "keyspace": _keyspace,
}
DEFAULT = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu",
           "modules", "errorstats", "cluster", "keyspace"]


def render(server: "CacheServer", wanted: List[str]) -> str:
    names: List[str] = []
    for name in wanted or ["default"]:
        name = name.lower()
        if name in ("all", "everything"):
            names += list(SECTIONS)
        elif name == "default":
            names += DEFAULT
        elif name in SECTIONS:
            names.append(name)
    seen = set()
    parts = []
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        fields = dict(SECTIONS[name](server))
        for provider in server.info_providers.get(name, []):
            fields.update(provider())
        body = "".join(f"{k}:{v}\r\n" for k, v in fields.items())
        parts.append(f"# {name.capitalize() if name != 'cpu' else 'CPU'}\r\n{body}")
    return "\r\n".join(parts)
