"""The directive table: each directive's Redis name, default, value parser and
renderer, and the value parsers themselves (sizes, booleans, save rules, output
buffer limits...); the Redis directives that only get stored, and old names.
Loading them from files, the environment and flags is config.py's.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Tuple

class ConfigError(ValueError):
    """A directive is unknown or its value is invalid."""

    def __init__(self, message: str, reply_text: str = "") -> None:
        super().__init__(message)
        #: The error CONFIG SET replies with.
        self.reply_text = reply_text or f"ERR {message}"


_MEMORY_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000 ** 2, "mb": 1024 ** 2,
                 "g": 1000 ** 3, "gb": 1024 ** 3}


def parse_memory(text: str) -> int:
    """``100mb`` -> 104857600, with redis.conf's units (k=1000, kb=1024...)."""
    m = re.fullmatch(r"\s*(-?\d+)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _MEMORY_UNITS:
        raise ValueError(f"invalid memory value {text!r}")
    return int(m.group(1)) * _MEMORY_UNITS[m.group(2).lower()]


def parse_bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("yes", "1", "true", "on"):
        return True
    if value in ("no", "0", "false", "off"):
        return False
    raise ValueError("argument must be 'yes' or 'no'")


def parse_save(text: str) -> List[Tuple[int, int]]:
    """``"3600 1 300 100"`` -> [(3600, 1), (300, 100)]; ``""`` -> no rules."""
    parts = str(text).split()
    if len(parts) % 2:
        raise ValueError("Invalid save parameters")
    rules = []
    for i in range(0, len(parts), 2):
        seconds, changes = int(parts[i]), int(parts[i + 1])
        if seconds < 1 or changes < 0:
            raise ValueError("Invalid save parameters")
        rules.append((seconds, changes))
    return rules


class Directive:
    """One directive: how to parse it, how CONFIG GET shows it, its default."""

    __slots__ = ("name", "default", "parse", "render", "mutable", "help")

    def __init__(self, name: str, default: str, parse: Callable[[str], Any],
                 render: Callable[[Any], str] = str, mutable: bool = True, help: str = ""):
        self.name = name
        self.default = default
        self.parse = parse
        self.render = render
        self.mutable = mutable
        self.help = help


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


INT_MAX = 2 ** 31 - 1  # a C int, as Redis's integer directives


#: A canonical decimal, as Redis's string2ll reads integer directives (no sign
#: "+", no spaces, no leading zeros, no "_").
_CANONICAL_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,19})")


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        text = str(text)
        value = int(text) if _CANONICAL_INT.fullmatch(text) and text != "-0" else None
        if value is None or not -2 ** 63 <= value < 2 ** 63:
            raise ValueError("argument couldn't be parsed into an integer")
        if not lo <= value <= hi:
            raise ValueError(f"argument must be between {lo} and {hi} inclusive")
        return value
    return parse


def _enum(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = str(text).lower()
        if value not in choices:
            raise ValueError(f"argument(s) must be one of the following: {', '.join(choices)}")
        return value
    return parse


_SHUTDOWN_FLAGS = ("default", "save", "nosave", "now", "force")


def _shutdown_flags(text: str) -> Tuple[str, ...]:
    """``shutdown-on-sigterm``: Redis's multi-flag enum (``nosave force``...)."""
    flags = set(str(text).lower().split())
    if not flags or not flags <= set(_SHUTDOWN_FLAGS) or {"save", "nosave"} <= flags \
            or ("default" in flags and len(flags) > 1):
        raise ValueError("argument(s) must be one of the following: "
                         + ", ".join(_SHUTDOWN_FLAGS))
    return tuple(f for f in _SHUTDOWN_FLAGS if f in flags)


def _save_render(rules: List[Tuple[int, int]]) -> str:
    return " ".join(f"{s} {c}" for s, c in rules)


def _memory_limit(text: str) -> int:
    try:
        value = parse_memory(text)
    except ValueError:
        raise ValueError("argument must be a memory value") from None
    if value < 0:
        raise ValueError("argument must be a memory value")
    return value


def _memory_at_least(text: str, low: int) -> int:
    """A memory value with Redis's bounds (a long long) and its error text."""
    value = _memory_limit(text)
    if not low <= value <= 2 ** 63 - 1:
        raise ValueError(f"argument must be between {low} and {2 ** 63 - 1} inclusive")
    return value


def _memory_or_percent(text: str) -> int:
    """maxmemory-clients: a memory value, or ``N%`` of maxmemory (stored as -N)."""
    text = str(text).strip()
    if text.endswith("%"):
        number = text[:-1]
        if not _CANONICAL_INT.fullmatch(number) or int(number) < 0:
            raise ValueError("argument must be a memory or percent value")
        if int(number) > 100:
            raise ValueError("percentage argument must be less or equal to 100")
        return -int(number)
    try:
        return _memory_limit(text)
    except ValueError:
        raise ValueError("argument must be a memory or percent value") from None


def _memory_or_percent_render(value: int) -> str:
    return f"{-value}%" if value < 0 else str(value)


def _tls_port(text: str) -> int:
    """0..65535, or ``auto`` (-1): a free port, as ``port 0`` picks one."""
    if str(text).strip().lower() == "auto":
        return -1
    return _int_range(0, 65535)(text)


def _tls_port_render(value: int) -> str:
    return "auto" if value == -1 else str(value)


# -- client-output-buffer-limit ----------------------------------------------------

_OUTPUT_CLASSES = {"normal": "normal", "slave": "replica", "replica": "replica",
                   "pubsub": "pubsub"}
_MEMTOULL = re.compile(r"([0-9]*)([a-zA-Z]*)")
_STRTOLL = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")
_LIMIT_ERROR = "Error in hard, soft or soft_seconds setting in buffer limit configuration."


def _memtoull(word: str) -> int:
    """Redis's memtoull: digits and a unit; a too large number saturates, and its
    product with the unit wraps around as a C unsigned long long does."""
    m = _MEMTOULL.fullmatch(word)
    mul = _MEMORY_UNITS.get(m.group(2).lower()) if m else None
    if mul is None or len(m.group(1)) >= 128:
        raise ValueError(_LIMIT_ERROR)
    return min(int(m.group(1) or 0), 2 ** 64 - 1) * mul % 2 ** 64


def _soft_seconds(word: str) -> int:
    """strtoll's reading, kept in a C int as Redis keeps it; negative is an error."""
    m = _STRTOLL.fullmatch(word)
    if word and not m:
        raise ValueError(_LIMIT_ERROR)
    value = max(min(int(m.group(1)) if m else 0, 2 ** 63 - 1), -2 ** 63)
    value = (value + 2 ** 31) % 2 ** 32 - 2 ** 31
    if value < 0:
        raise ValueError(_LIMIT_ERROR)
    return value


def parse_output_limits(text: str) -> Dict[str, Tuple[int, int, int]]:
    """``"pubsub 32mb 8mb 60"`` -> {"pubsub": (hard, soft, soft seconds)}, checked as
    Redis checks it; classes not named keep their values (see Config._store)."""
    words = str(text).split(" ") if text else []
    if len(words) % 4:
        raise ValueError("Wrong number of arguments in buffer limit configuration.")
    limits: Dict[str, Tuple[int, int, int]] = {}
    for i in range(0, len(words), 4):
        cls = _OUTPUT_CLASSES.get(words[i].lower())
        if cls is None:
            raise ValueError("Invalid client class specified in buffer limit configuration.")
        limits[cls] = (_memtoull(words[i + 1]), _memtoull(words[i + 2]),
                       _soft_seconds(words[i + 3]))
    return limits


def _render_output_limits(limits: Dict[str, Tuple[int, int, int]]) -> str:
    return " ".join(f"{'slave' if cls == 'replica' else cls} {h} {s} {t}"
                    for cls in ("normal", "replica", "pubsub")
                    for h, s, t in [limits.get(cls, (0, 0, 0))])


def _event_classes(text: str) -> int:
    from .server.notify import parse_classes  # the classes live with the events
    return parse_classes(text)


def _event_classes_render(flags: int) -> str:
    from .server.notify import render_classes
    return render_classes(flags)


def _replicaof(text: str) -> str:
    """``host port`` (or empty, or ``no one``): checked here, used by replication."""
    words = str(text).split()
    if not words or [w.lower() for w in words] == ["no", "one"]:
        return ""
    if len(words) != 2:
        raise ValueError("wrong number of arguments")
    _int_range(0, 65535)(words[1])
    return f"{words[0]} {words[1]}"


def _d(name: str, default: str, parse: Callable[[str], Any] = str,
       render: Callable[[Any], str] = str, mutable: bool = True, help: str = "") -> Directive:
    return Directive(name, default, parse, render, mutable, help)


_MEM = dict(parse=_memory_limit)
_BOOL = dict(parse=parse_bool, render=_yes_no)

DIRECTIVES: Dict[str, Directive] = {d.name: d for d in [
    # Network and clients
    _d("port", "2050", _int_range(0, 65535), mutable=False, help="TCP port (0: pick a free one; 0 with tls-port set: no plain-text port)"),
    _d("bind", "127.0.0.1", str, mutable=False, help="addresses to listen on, space separated"),
    _d("protected-mode", "yes", **_BOOL, help="refuse non-loopback clients without a password"),
    _d("enable-protected-configs", "no", _enum("no", "yes", "local"), mutable=False,
       help="CONFIG SET of dir and dbfilename: no, yes, or local (loopback clients only)"),
    _d("requirepass", "", str, help="password clients must AUTH with"),
    _d("aclfile", "", str, mutable=False,
       help="file of ACL users (ACL LOAD/SAVE); not together with user lines"),
    _d("acllog-max-len", "128", _int_range(0, 2 ** 63 - 1),
       help="most entries the ACL LOG keeps"),
    _d("acl-pubsub-default", "resetchannels", _enum("allchannels", "resetchannels"),
       help="channels a new ACL user may use: none (resetchannels) or all"),
    _d("maxclients", "10000", _int_range(1, 2 ** 32 - 1), help="most simultaneous clients"),
    _d("timeout", "0", _int_range(0, INT_MAX), help="close clients idle this many seconds"),
    _d("tcp-backlog", "511", _int_range(0, 65535), mutable=False, help="listen() backlog"),
    _d("tcp-keepalive", "300", _int_range(0, INT_MAX),
       help="TCP keepalive interval in seconds (0: off)"),
    _d("databases", "16", _int_range(1, 1_000_000), mutable=False,
       help="number of databases (SELECT 0..n-1)"),
    _d("proto-max-bulk-len", "512mb", parse=lambda t: _memory_at_least(t, 1024 * 1024),
       help="largest bulk string a request may carry; also bounds the reply of a "
            "negative *RANDMEMBER/HRANDFIELD count"),
    _d("proto-max-multibulk-len", "16777216", _int_range(1, INT_MAX),
       help="most arguments in one request"),
    _d("client-query-buffer-limit", "1gb",
       parse=lambda t: _memory_at_least(t, 1024 * 1024),
       help="most unparsed input held for one client"),
    _d("client-output-buffer-limit", "normal 0 0 0 replica 256mb 64mb 60 pubsub 32mb 8mb 60",
       parse_output_limits, _render_output_limits,
       help="per-class output limits: class hard soft soft-seconds"),
    _d("hz", "10", lambda t: min(max(_int_range(0, INT_MAX)(t), 1), 500),
       help="background task frequency; clamped to 1..500 as in Redis"),
    _d("active-expire-effort", "1", _int_range(1, 10),
       help="1-10: how much time the active expiry cycle may take"),
    _d("loglevel", "notice", _enum("debug", "verbose", "notice", "warning", "nothing"),
       help="debug, verbose, notice, warning or nothing"),
    _d("logfile", "", str, mutable=False, help="log to this file instead of standard error"),
    _d("pidfile", "", str, mutable=False, help="accepted for redis.conf compatibility"),
    _d("daemonize", "no", **_BOOL, mutable=False,
       help="accepted for redis.conf compatibility (always foreground)"),
    _d("event-loop", "auto", _enum("auto", "uvloop", "asyncio"), mutable=False,
       help="uvloop when installed (auto), or plain asyncio"),
    _d("parser", "auto", _enum("auto", "hiredis", "python"), mutable=False,
       help="hiredis's C reader when installed, on CPython (auto; on PyPy the "
            "pure-Python codec is faster), or the pure-Python codec"),
    # Shutdown
    _d("shutdown-on-sigterm", "default", _shutdown_flags, " ".join,
       help="default, save or nosave (final snapshot on SIGTERM), with now and force "
            "accepted"),
    _d("shutdown-on-sigint", "default", _shutdown_flags, " ".join,
       help="the same for SIGINT (Ctrl-C)"),
    _d("shutdown-deadline", "5", _int_range(0, INT_MAX),
       help="seconds a SIGTERM or SIGINT waits for a running command before the process "
            "exits at once, as after kill -9 (0: wait for it)"),
    # TLS (Redis 7.0's directives; distcache/server/tls.py applies them)
    _d("tls-port", "0", _tls_port, _tls_port_render, mutable=False,
       help="TLS port (0: no TLS; auto: pick a free one). When set, port 0 means no "
            "plain-text port"),
    _d("tls-cert-file", "", str, help="server certificate (PEM, with its chain)"),
    _d("tls-key-file", "", str, help="private key of the certificate (PEM)"),
    _d("tls-key-file-pass", "", str, help="passphrase of an encrypted tls-key-file"),
    _d("tls-ca-cert-file", "", str,
       help="CA certificates that sign client certificates (PEM bundle)"),
    _d("tls-ca-cert-dir", "", str,
       help="directory of CA certificates (c_rehash layout), instead of or with the file"),
    _d("tls-dh-params-file", "", str, help="DH parameters for DHE ciphers (PEM)"),
    _d("tls-auth-clients", "yes", _enum("no", "yes", "optional"),
       help="client certificates: yes (required), optional (verified when sent) or no"),
    _d("tls-protocols", "", str,
       help="TLS versions, e.g. \"TLSv1.2 TLSv1.3\" (the default); they set the lowest "
            "and highest version"),
    _d("tls-ciphers", "", str, help="OpenSSL cipher list for TLSv1.2 and below"),
    _d("tls-ciphersuites", "", str, help="accepted; Python's ssl module cannot set TLSv1.3 suites (a warning is logged)"),
    _d("tls-prefer-server-ciphers", "no", **_BOOL,
       help="choose the cipher by the server's order, not the client's"),
    _d("tls-session-caching", "yes", **_BOOL,
       help="resume TLS sessions (no: session tickets off; see docs/security.md)"),
    _d("tls-session-cache-size", "20480", _int_range(0, INT_MAX),
       help="accepted; Python's ssl module keeps OpenSSL's own cache size"),
    _d("tls-session-cache-timeout", "300", _int_range(0, INT_MAX),
       help="accepted; Python's ssl module keeps OpenSSL's own session timeout"),
    _d("tls-handshake-timeout", "10", _int_range(1, INT_MAX),
       help="seconds a client may take to finish the TLS handshake (distcache only)"),
    _d("busy-reply-threshold", "5000", _int_range(0, INT_MAX),
       help="milliseconds a script runs before other clients get -BUSY and SCRIPT KILL "
            "works (alias lua-time-limit)"),
    _d("lua-max-memory", "1gb", **_MEM,
       help="memory one Lua state (EVAL's, or the functions') may hold; past it a script "
            "fails with 'not enough memory' (0: no limit; distcache only)"),
    # Introspection (docs/introspection.md)
    _d("slowlog-log-slower-than", "10000", _int_range(-1, 2 ** 63 - 1),
       help="microseconds a command takes to enter the slow log (-1: off, 0: every command)"),
    _d("slowlog-max-len", "128", _int_range(0, 2 ** 63 - 1), help="slow log entries kept"),
    _d("latency-monitor-threshold", "0", _int_range(0, 2 ** 63 - 1),
       help="milliseconds a command takes to be a latency event (0: monitor off)"),
    # Persistence
    _d("dir", "./data", str, help="data directory"),
    _d("dbfilename", "dump.dcs", str, help="snapshot file name inside dir"),
    _d("appendonly", "yes", **_BOOL, help="append every write to the log"),
    _d("appendfilename", "appendonly.aof", str, help="base name of the append-only log files"),
    _d("appenddirname", "appendonlydir", str, mutable=False,
       help="directory (inside dir) holding the log and its manifest"),
    _d("appendfsync", "everysec", _enum("always", "everysec", "no"),
       help="always (fsync before replying), everysec or no"),
    _d("save", "3600 1 300 100 60 10000", parse_save, _save_render,
       help="pairs of S C: snapshot after S seconds if C or more writes (save \"\" disables)"),
    _d("auto-aof-rewrite-percentage", "100", _int_range(0, INT_MAX),
       help="rewrite the log when it grew this much since the last rewrite"),
    _d("auto-aof-rewrite-min-size", "64mb", **_MEM, help="... and is at least this big"),
    _d("aof-load-truncated", "yes", **_BOOL,
       help="start anyway when the log's last record is torn"),
    _d("stop-writes-on-bgsave-error", "yes", **_BOOL,
       help="refuse writes (MISCONF) while the last background save failed"),
    _d("rdbcompression", "yes", **_BOOL, help="accepted for redis.conf compatibility"),
    _d("rdbchecksum", "yes", **_BOOL,
       help="CRC64 in RDB files written and checked when read (no: a zero CRC, no check)"),
    # Replication, the replica side (docs/replication.md)
    _d("replicaof", "", _replicaof, mutable=False,
       help="host port of the primary to replicate (alias slaveof; REPLICAOF at run time)"),
    _d("masterauth", "", str, help="password the replica sends to its primary (AUTH)"),
    _d("masteruser", "", str, help="ACL user the replica authenticates as with masterauth"),
    _d("replica-read-only", "yes", **_BOOL,
       help="a replica refuses writes from its clients (READONLY)"),
    _d("replica-serve-stale-data", "yes", **_BOOL,
       help="a replica whose link is down still answers (no: MASTERDOWN)"),
    _d("replica-priority", "100", _int_range(0, INT_MAX),
       help="Sentinel promotes the lowest non-zero priority first (0: never)"),
    _d("replica-announce-ip", "", str, help="address the replica reports to its primary"),
    _d("replica-announce-port", "0", _int_range(0, 65535),
       help="port the replica reports to its primary (0: its own)"),
    _d("replica-announced", "yes", **_BOOL, help="Sentinel lists this replica"),
    # Memory
    _d("maxmemory", "0", **_MEM, help="memory limit for the dataset (0: none); units like 100mb"),
    _d("maxmemory-policy", "noeviction",
       _enum("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru",
             "allkeys-lfu", "allkeys-random", "noeviction"),  # Redis's order (error text)
       help="what to do at the limit: noeviction or an eviction policy"),
    _d("maxmemory-clients", "0", _memory_or_percent, _memory_or_percent_render,
       help="close the clients using most memory once all of them use this much "
            "(bytes, or N% of maxmemory; 0: never)"),
    _d("maxmemory-samples", "5", _int_range(1, INT_MAX),
       help="keys sampled per eviction (approximate LRU/LFU)"),
    _d("hll-sparse-max-bytes", "3000", **_MEM,
       help="HyperLogLogs larger than this in the sparse encoding become dense"),
    _d("lfu-log-factor", "10", _int_range(0, INT_MAX), help="LFU counter logarithm factor"),
    _d("lfu-decay-time", "1", _int_range(0, INT_MAX),
       help="minutes for the LFU counter to decay by one"),
    # Keyspace notifications and client-side caching (docs/events.md)
    _d("notify-keyspace-events", "", _event_classes, _event_classes_render,
       help="keyspace event classes to publish: K E g $ l s h z x e t m d n A"),
    _d("tracking-table-max-keys", "1000000", _int_range(0, 2 ** 63 - 1),
       help="most keys CLIENT TRACKING remembers (0: no limit); beyond, the "
            "oldest are invalidated"),
    # Streams' node layout (docs/streams.md)
    _d("stream-node-max-bytes", "4096", lambda t: _memory_at_least(t, 0),
       help="bytes of Redis's listpack after which a stream starts a new node (0: no limit)"),
    _d("stream-node-max-entries", "100", _int_range(0, 2 ** 63 - 1),
       help="entries (deleted ones included) after which a stream starts a new node "
            "(0: no limit)"),
    # Replication, the primary side (docs/replication.md)
    _d("repl-diskless-sync", "yes", **_BOOL,
       help="full syncs stream the RDB to replicas' sockets (no: through a file)"),
    _d("repl-diskless-sync-delay", "5", _int_range(0, INT_MAX),
       help="seconds a diskless sync waits for more replicas to share it"),
    _d("repl-diskless-sync-max-replicas", "0", _int_range(0, INT_MAX),
       help="start a diskless sync early once this many replicas wait (0: no limit)"),
    _d("repl-backlog-size", "1mb", parse=lambda t: max(_memory_limit(t), 16 * 1024),
       help="bytes of the write stream kept for partial resyncs (at least 16kb, as Redis)"),
    _d("repl-backlog-ttl", "3600", _int_range(0, INT_MAX),
       help="seconds without replicas before the backlog is freed (0: never)"),
    _d("repl-ping-replica-period", "10", _int_range(1, INT_MAX),
       help="seconds between PINGs sent into the replication stream"),
    _d("repl-timeout", "60", _int_range(1, INT_MAX),
       help="seconds of silence (no ACK, no byte from the primary) before a link is dropped"),
    _d("min-replicas-to-write", "0", _int_range(0, INT_MAX),
       help="refuse writes (NOREPLICAS) with fewer good replicas than this"),
    _d("min-replicas-max-lag", "10", _int_range(0, INT_MAX),
       help="seconds since its last ACK for a replica to count as good"),
]}

#: Redis directives that mean nothing here (encodings, replication, modules...).
#: A redis.conf that sets them still loads; they are stored and reported.
REDIS_ONLY = frozenset("""
list-max-listpack-size list-max-ziplist-size list-compress-depth hash-max-listpack-entries
hash-max-listpack-value hash-max-ziplist-entries hash-max-ziplist-value set-max-intset-entries
set-max-listpack-entries set-max-listpack-value zset-max-listpack-entries zset-max-listpack-value
zset-max-ziplist-entries zset-max-ziplist-value
activerehashing activedefrag active-defrag-ignore-bytes
active-defrag-threshold-lower active-defrag-threshold-upper active-defrag-cycle-min
active-defrag-cycle-max active-defrag-max-scan-fields jemalloc-bg-thread lazyfree-lazy-eviction
lazyfree-lazy-expire lazyfree-lazy-server-del lazyfree-lazy-user-del lazyfree-lazy-user-flush
replica-lazy-flush repl-diskless-load repl-disable-tcp-nodelay propagation-error-behavior
replica-ignore-disk-write-errors cluster-enabled cluster-config-file
cluster-node-timeout cluster-port cluster-replica-validity-factor cluster-migration-barrier
cluster-allow-replica-migration cluster-require-full-coverage cluster-replica-no-failover
cluster-allow-reads-when-down cluster-allow-pubsubshard-when-down cluster-link-sendbuf-limit
cluster-announce-hostname cluster-preferred-endpoint-type cluster-announce-ip
cluster-announce-port cluster-announce-bus-port cluster-announce-tls-port
latency-tracking latency-tracking-info-percentiles
supervised syslog-enabled syslog-ident syslog-facility
always-show-logo set-proc-title proc-title-template crash-log-enabled crash-memcheck-enabled
unixsocket unixsocketperm io-threads io-threads-do-reads oom-score-adj oom-score-adj-values
disable-thp
enable-debug-command enable-module-command loadmodule rename-command include
rdb-del-sync-files rdb-key-save-delay key-load-delay sanitize-dump-payload
aof-use-rdb-preamble aof-rewrite-incremental-fsync rdb-save-incremental-fsync
aof-timestamp-enabled no-appendfsync-on-rewrite lfu-decay-time-ms maxmemory-eviction-tenacity
shutdown-timeout dynamic-hz
tls-client-cert-file tls-client-key-file tls-client-key-file-pass tls-replication
tls-cluster ignore-warnings locale-collate hide-user-data-from-log
""".split())

#: Directives CONFIG SET refuses unless ``enable-protected-configs`` allows it, as
#: Redis 7.0: together with SAVE they would let a client write a file anywhere.
PROTECTED = frozenset({"dir", "dbfilename"})

#: Other names of directives (Redis's old names).
ALIASES = {"lua-time-limit": "busy-reply-threshold", "slaveof": "replicaof",
           "slave-read-only": "replica-read-only", "slave-serve-stale-data": "replica-serve-stale-data",
           "slave-priority": "replica-priority", "slave-announce-ip": "replica-announce-ip",
           "slave-announce-port": "replica-announce-port",
           "repl-ping-slave-period": "repl-ping-replica-period",
           "min-slaves-to-write": "min-replicas-to-write",
           "min-slaves-max-lag": "min-replicas-max-lag"}
