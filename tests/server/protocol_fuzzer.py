"""A seeded, scalable fuzzer for a running distcache server (issue #12).

Three kinds of input, each counted as one input:

- *commands*: structurally valid requests of the server's own commands (read
  from its ``COMMAND`` reply) with random arguments (keys of every type,
  numbers up to the 64-bit extremes and past them, option words, glob patterns
  with many stars), sent pipelined in batches over a few long-lived
  connections; every batch ends with ``RESET`` and ``PING <token>``, read back
  before the next batch (RESET leaves MULTI, pub/sub and RESP3);
- *mutations*: one to three valid requests, bit-flipped, truncated, spliced,
  with repeated headers, huge, negative or overflowing lengths, or rendered as
  inline requests (quotes included);
- *random bytes*: byte soup, some of it drawn from RESP's own alphabet.

A mutation or random input travels alone on a fresh connection that is then
half-closed, so that every one of them reaches the parser whatever the one
before it did (a protocol error closes the connection).

After every round the server process must still run, a fresh connection must
answer PING within a deadline, its RSS must stay under a bound, and no reply
may be ``-ERR internal error`` (the dispatcher's catch-all for a handler that
raised: a bug). The data set is flushed every few rounds so that RSS growth
means a leak, not data. The inputs depend only on the seed; the interleaving
of the connections does not.
"""
from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

try:  # replies are read with hiredis; not installed under PyPy (the fuzz test skips)
    import hiredis
except ImportError:  # pragma: no cover
    hiredis = None

from core_helpers import rss_kb
from servers import wait_for_ping

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
#: Commands that stop the server, fork it, or change what the fuzzer relies on.
EXCLUDED = {"shutdown", "bgsave", "bgrewriteaof", "save", "client|kill", "config|set",
            "client|pause", "client|reply", "monitor", "debug", "replicaof", "slaveof",
            "sync", "psync", "migrate", "failover", "wait", "acl|setuser", "acl|deluser"}
#: Commands that change a connection's mode for the rest of its batch, or
#: answer with the whole command table: rare.
RARE = {"quit": 0.02, "reset": 0.1, "subscribe": 0.1, "psubscribe": 0.1, "ssubscribe": 0.1,
        "multi": 0.3, "hello": 0.3, "select": 0.5, "flushall": 0.05, "flushdb": 0.1,
        "swapdb": 0.3, "command": 0.1, "info": 0.3}  # the last two: big replies
BLOCKING_WEIGHT = 0.2
#: Timeouts a blocking command may get: short, or wrong (0 would block forever).
TIMEOUTS = [b"0.001", b"0.001", b"0.002", b"1e-4", b"-1", b"x", b"-0.5", b"nan"]
NUMBERS = [
    b"0", b"1", b"-1", b"2", b"3", b"10", b"100", b"-100", b"1000", b"65536",
    b"9223372036854775807", b"-9223372036854775808", b"9223372036854775808",
    b"-9223372036854775809", b"18446744073709551615", b"99999999999999999999999",
    b"2147483647", b"-2147483648", b"2147483648", b"4294967295", b"4294967296",
    b"536870911", b"536870912", b"8388607", b"1.5", b"-0.5", b"0.0", b"-0", b"1e308",
    b"-1e308", b"1e309", b"5e-324", b"1e-400", b"inf", b"-inf", b"+inf", b"nan", b"-nan",
    b"infinity", b" 1", b"1 ", b"+1", b"01", b"0x10", b"1e3", b"", b"9223372036854775806",
    b"-9223372036854775807", b"17976931348623157e292", b"0.1", b"3.0000000000000001",
    # Past int()'s 4300-digit limit (a ValueError that is not a parse error).
    b"1" * 5000, b"-" + b"9" * 4400, b"0" * 5000, b"1e" + b"9" * 5000, b"0." + b"0" * 5000 + b"1",
    b"(" + b"1" * 5000,
    # Exponents that scale to nothing or to huge powers.
    b"0e9999999", b"0e-9999999", b"-0.0e99999", b"1e5000", b"1e-5000", b"0x1p99999",
    b"0x0p-99999999", b"0x1.8p3", b"1e" + b"0" * 4500 + b"3",
]
WORDS = [
    b"EX", b"PX", b"EXAT", b"PXAT", b"KEEPTTL", b"NX", b"XX", b"GT", b"LT", b"CH", b"INCR",
    b"GET", b"PERSIST", b"LIMIT", b"WITHSCORES", b"WITHSCORE", b"BYSCORE", b"BYLEX", b"REV",
    b"MATCH", b"COUNT", b"TYPE", b"RANK", b"MAXLEN", b"LEFT", b"RIGHT", b"BEFORE", b"AFTER",
    b"WEIGHTS", b"AGGREGATE", b"SUM", b"MIN", b"MAX", b"WITHVALUES", b"REPLACE", b"DB",
    b"ABSTTL", b"IDLETIME", b"FREQ", b"SAMPLES", b"ASYNC", b"SYNC", b"ID", b"USER", b"ADDR",
    b"LADDR", b"SKIPME", b"ERROR", b"TIMEOUT", b"LIB-NAME", b"LIB-VER", b"AUTH", b"SETNAME",
    b"default", b"(1", b"[a", b"-", b"+", b"(", b"[", b"(-inf", b"(+inf", b"(nan", b"[\xff",
    b"string", b"list", b"set", b"zset", b"hash", b"none", b"*", b"maxmemory", b"port",
    b"NOSAVE", b"RESP3", b"3", b"2",
]
PATTERNS = [
    b"*", b"k*", b"*1", b"k?", b"k[0-9]", b"k[^0]*", b"[", b"[a-", b"\\", b"k\\*", b"[]]",
    b"*?*?*?*?*?*?*?*?", b"*" * 40 + b"x", b"*a" * 30 + b"b", b"a*" * 50, b"?" * 70,
    b"[a-z" * 20, b"*[" * 20, b"**********k*********1*******",
]
ALPHABET = b"*$+-:\r\n0123456789-abcPING \"'\\x"


def encode(args: Sequence[bytes]) -> bytes:
    """One request as a RESP multibulk."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


@dataclass
class Spec:
    """What the generator needs of one command table entry."""

    name: bytes
    arity: int
    first: int
    last: int
    step: int
    weight: float
    subcommands: List["Spec"] = field(default_factory=list)
    #: The key prefix of the command's data type ("k" when it has none).
    prefix: bytes = b"k"


TYPE_PREFIX = {b"@string": b"s", b"@list": b"l", b"@hash": b"h", b"@set": b"t",
               b"@sortedset": b"z"}


def _spec(entry: Sequence[Any]) -> Spec:
    name = entry[0].lower()
    prefix = next((TYPE_PREFIX[c] for c in entry[6] if c in TYPE_PREFIX), b"k") \
        if len(entry) > 6 else b"k"
    return Spec(name, entry[1], entry[3], entry[4], entry[5], 1.0,
                [_spec(sub) for sub in (entry[9] if len(entry) > 9 else [])], prefix)


def load_specs(command_reply: Sequence[Any]) -> List[Spec]:
    """The fuzzable commands of a ``COMMAND`` reply (RESP2), with weights."""
    specs = []
    for entry in command_reply:
        spec = _spec(entry)
        name = spec.name.decode()
        if name in EXCLUDED:
            continue
        spec.subcommands = [sub for sub in spec.subcommands
                            if sub.name.decode() not in EXCLUDED]
        spec.weight = BLOCKING_WEIGHT if b"blocking" in entry[2] else RARE.get(name, 1.0)
        specs.append(spec)
    return specs


class Generator:
    """Inputs from one seeded RNG."""

    def __init__(self, specs: List[Spec], rng: random.Random) -> None:
        self.specs = specs
        self.weights = [spec.weight for spec in specs]
        self.rng = rng

    # -- arguments ---------------------------------------------------------
    def key(self, prefix: bytes = b"k") -> bytes:
        """Mostly a key of the command's own type; now and then any other."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.8:
            if prefix == b"k":  # keyspace commands: keys of every type
                prefix = bytes([rng.choice(b"sltzh")])
            return prefix + b"%d" % rng.randrange(6)
        if roll < 0.92:
            return bytes([rng.choice(b"ksltzh")]) + b"%d" % rng.randrange(6)
        if roll < 0.96:
            return rng.choice([b"", b"\x00", b"k" * 300, b"{k1}", b"*"])
        return rng.randbytes(rng.randrange(1, 20))

    def value(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.25:
            return self.key()
        if roll < 0.5:
            if rng.random() < 0.7:
                return rng.choice(NUMBERS)
            return b"%d" % rng.randint(-(1 << 70), 1 << 70) if rng.random() < 0.3 \
                else b"%d" % rng.randint(-50, 50)
        if roll < 0.68:
            word = rng.choice(WORDS)
            return word.lower() if rng.random() < 0.3 else word
        if roll < 0.76:
            return rng.choice(PATTERNS)
        if roll < 0.93:
            return bytes(rng.choice(b"abcxyz019") for _ in range(rng.randrange(1, 9)))
        size = rng.choice([0, 1, 10, 100, 1000, 5000])
        return rng.randbytes(size)

    def num(self) -> bytes:
        """Mostly a small integer (an index, a count), else an extreme."""
        rng = self.rng
        return b"%d" % rng.randint(-10, 20) if rng.random() < 0.75 else rng.choice(NUMBERS)

    def score(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.5:
            return b"%d" % rng.randint(-5, 5) if rng.random() < 0.5 else b"%.3f" % rng.uniform(-9, 9)
        if roll < 0.8:
            return rng.choice([b"-inf", b"+inf", b"(1", b"(-1", b"(0", b"(+inf", b"(-inf", b"1e300"])
        return rng.choice(NUMBERS)

    def lex(self) -> bytes:
        rng = self.rng
        return rng.choice([b"-", b"+", b"[a", b"(a", b"[m", b"(z", b"[", b"(", b"a", b"[\xff"])

    def member(self) -> bytes:
        rng = self.rng
        return b"m%d" % rng.randrange(12) if rng.random() < 0.85 else self.value()

    def some(self, *words: bytes) -> List[bytes]:
        """A random subset of option words, in random order."""
        picked = [w for w in words if self.rng.random() < 0.3]
        self.rng.shuffle(picked)
        return picked

    def keys(self, prefix: bytes) -> List[bytes]:
        """numkeys and that many keys (the count is wrong now and then)."""
        rng = self.rng
        keys = [self.key(prefix) for _ in range(rng.randint(1, 4))]
        count = b"%d" % len(keys) if rng.random() < 0.85 else self.num()
        return [count] + keys

    def shaped(self, name: bytes, p: bytes) -> Optional[List[bytes]]:
        """Arguments in the command's own shape (so handlers get past parsing),
        for the commands whose random arguments almost never are."""
        rng, k, n, sc, m = self.rng, self.key, self.num, self.score, self.member
        limit = [b"LIMIT", n(), n()] if rng.random() < 0.3 else []
        side = lambda: rng.choice([b"LEFT", b"RIGHT"])  # noqa: E731
        ttl = lambda: rng.choice([[], [b"EX", n()], [b"PX", n()], [b"EXAT", n()],  # noqa: E731
                                  [b"PXAT", n()], [b"KEEPTTL"], [b"PERSIST"]])
        shapes = {
            b"zadd": lambda: [k(p)] + self.some(b"NX", b"XX", b"GT", b"LT", b"CH", b"INCR")
            + [x for _ in range(rng.randint(1, 4)) for x in (sc(), m())],
            b"zrange": lambda: [k(p), n(), n()] + self.some(b"BYSCORE", b"BYLEX", b"REV")
            + limit + self.some(b"WITHSCORES"),
            b"zrangestore": lambda: [k(p), k(p), sc(), sc()] + self.some(b"BYSCORE", b"REV")
            + limit,
            b"zrevrange": lambda: [k(p), n(), n()] + self.some(b"WITHSCORES"),
            b"zrangebyscore": lambda: [k(p), sc(), sc()] + self.some(b"WITHSCORES") + limit,
            b"zrangebylex": lambda: [k(p), self.lex(), self.lex()] + limit,
            b"zremrangebyrank": lambda: [k(p), n(), n()],
            b"zunionstore": lambda: [k(p)] + self.keys(p) + rng.choice([[], [b"WEIGHTS", sc()], [b"AGGREGATE", rng.choice([b"SUM", b"MIN", b"MAX", b"x"])]]),
            b"zunion": lambda: self.keys(p) + rng.choice([[], [b"WEIGHTS", sc(), sc()],
                                                           [b"AGGREGATE", b"MAX"]])
            + self.some(b"WITHSCORES"),
            b"zintercard": lambda: self.keys(p) + ([b"LIMIT", n()] if rng.random() < 0.4 else []),
            b"zmpop": lambda: self.keys(p) + [rng.choice([b"MIN", b"MAX"])]
            + ([b"COUNT", n()] if rng.random() < 0.4 else []),
            b"lmpop": lambda: self.keys(p) + [side()] + ([b"COUNT", n()] if rng.random() < 0.4
                                                         else []),
            b"zincrby": lambda: [k(p), sc(), m()],
            b"zrank": lambda: [k(p), m()] + self.some(b"WITHSCORE"),
            b"zrandmember": lambda: [k(p), n()] + self.some(b"WITHSCORES"),
            b"lmove": lambda: [k(p), k(p), side(), side()],
            b"linsert": lambda: [k(p), rng.choice([b"BEFORE", b"AFTER", b"x"]), m(), m()],
            b"lrange": lambda: [k(p), n(), n()],
            b"lset": lambda: [k(p), n(), m()],
            b"lpos": lambda: [k(p), m()] + [x for w in self.some(b"RANK", b"COUNT", b"MAXLEN")
                                            for x in (w, n())],
            b"getrange": lambda: [k(p), n(), n()],
            b"setrange": lambda: [k(p), n(), self.value()],
            b"hincrby": lambda: [k(p), m(), n()],
            b"hincrbyfloat": lambda: [k(p), m(), sc()],
            b"hset": lambda: [k(p)] + [x for _ in range(rng.randint(1, 4)) for x in (m(), m())],
            b"hrandfield": lambda: [k(p), n()] + self.some(b"WITHVALUES"),
            b"incrbyfloat": lambda: [k(p), sc()],
            b"pexpire": lambda: [k(p), n()] + self.some(b"NX", b"XX", b"GT", b"LT"),
            b"swapdb": lambda: [b"%d" % rng.randrange(16), b"%d" % rng.randrange(16)],
            b"select": lambda: [b"%d" % rng.randrange(16)],
            b"move": lambda: [k(p), b"%d" % rng.randrange(16)],
            b"copy": lambda: [k(p), k(p)] + self.some(b"REPLACE") + rng.choice(
                [[], [b"DB", b"%d" % rng.randrange(16)]]),
            b"set": lambda: [k(p), self.value()] + self.some(b"NX", b"XX", b"GET") + ttl(),
            b"getex": lambda: [k(p)] + ttl(),
            b"scan": lambda: [n()] + rng.choice([[], [b"MATCH", rng.choice(PATTERNS)]])
            + rng.choice([[], [b"COUNT", n()]])
            + rng.choice([[], [b"TYPE", rng.choice([b"string", b"list", b"zset", b"x"])]]),
            b"sscan": lambda: [k(p), n()] + rng.choice([[], [b"MATCH", rng.choice(PATTERNS)]])
            + rng.choice([[], [b"COUNT", n()]]),
            b"sadd": lambda: [k(p)] + [m() for _ in range(rng.randint(1, 5))],
            b"spop": lambda: [k(p), n()],
            b"smove": lambda: [k(p), k(p), m()],
            b"sintercard": lambda: self.keys(p) + ([b"LIMIT", n()] if rng.random() < 0.4 else []),
            b"rpush": lambda: [k(p)] + [m() for _ in range(rng.randint(1, 5))],
        }
        aliases = {b"zrevrangebyscore": b"zrangebyscore", b"zcount": b"zrangebyscore",
                   b"zremrangebyscore": b"zrangebyscore", b"zrevrangebylex": b"zrangebylex",
                   b"zlexcount": b"zrangebylex", b"zremrangebylex": b"zrangebylex",
                   b"zinterstore": b"zunionstore", b"zdiffstore": b"zunionstore",
                   b"zinter": b"zunion", b"zdiff": b"zunion", b"zrevrank": b"zrank",
                   b"ltrim": b"lrange", b"lindex": b"getrange", b"expire": b"pexpire",
                   b"expireat": b"pexpire", b"pexpireat": b"pexpire", b"lpush": b"rpush",
                   b"hsetnx": b"hset", b"hmset": b"hset", b"srem": b"sadd", b"sismember": b"smove",
                   b"zscan": b"sscan", b"hscan": b"sscan", b"srandmember": b"spop",
                   b"incrby": b"spop", b"decrby": b"spop", b"psetex": b"getrange",
                   b"setex": b"getrange", b"substr": b"getrange", b"blmove": b"lmove",
                   b"blmpop": b"lmpop", b"bzmpop": b"zmpop", b"zmscore": b"smove"}
        shape = shapes.get(aliases.get(name, name))
        return shape() if shape else None

    def request(self) -> List[bytes]:
        """A request of a real command with random arguments."""
        rng = self.rng
        spec = rng.choices(self.specs, self.weights)[0]
        args = [spec.name.upper() if rng.random() < 0.7 else spec.name]
        if spec.subcommands and rng.random() < 0.95:
            spec = rng.choice(spec.subcommands)
            args.append(spec.name.split(b"|")[-1])
        shaped = self.shaped(spec.name, spec.prefix) if rng.random() < 0.7 else None
        if shaped is not None:
            args += shaped
            if spec.name in (b"blmpop", b"bzmpop"):  # the timeout comes first
                args.insert(1, b"0")
            elif spec.name == b"blmove":
                args.append(b"0")
        else:
            arity = spec.arity
            total = arity if arity > 0 else -arity + rng.choice([0, 0, 1, 1, 2, 3, 4, 6, 10])
            if rng.random() < 0.03:  # a wrong arity now and then
                total = max(1, total + rng.choice([-1, 1]))
            last = spec.last if spec.last >= 0 else total + spec.last
            keys = set(range(spec.first, last + 1, spec.step or 1)) if spec.first else set()
            while len(args) < total:
                args.append(self.key(spec.prefix) if len(args) in keys else self.value())
        if spec.name in BLOCKING and len(args) > 1:  # never 0 (forever)
            args[1 if spec.name in (b"blmpop", b"bzmpop") else -1] = rng.choice(TIMEOUTS)
        return args

    def batch(self, size: int) -> List[bytes]:
        """``size`` encoded requests, some of them wrapped in MULTI ... EXEC."""
        rng = self.rng
        out: List[bytes] = []
        while len(out) < size:
            if rng.random() < 0.03 and size - len(out) >= 3:
                queued = [encode(self.request()) for _ in range(rng.randint(1, size - len(out) - 2))
                          ][:4]
                end = b"EXEC" if rng.random() < 0.85 else b"DISCARD"
                out += [encode([b"MULTI"])] + queued + [encode([end])]
            else:
                out.append(encode(self.request()))
        return out

    # -- malformed inputs --------------------------------------------------
    def mutation(self) -> bytes:
        rng = self.rng
        requests = [self.request() for _ in range(rng.choice([1, 1, 2, 3]))]
        if rng.random() < 0.15:
            return self.inline(requests)
        data = bytearray(b"".join(encode(req) for req in requests))
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            data = self.mutate(data)
        return bytes(data)

    def inline(self, requests: List[List[bytes]]) -> bytes:
        rng = self.rng
        lines = []
        for req in requests:
            words = []
            for arg in req:
                how = rng.random()
                if how < 0.7:
                    words.append(arg)
                elif how < 0.85:
                    words.append(b'"' + arg.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
                                 + rng.choice([b'"', b'"', b'"', b"", b'"x']))
                else:
                    words.append(b"'" + arg + rng.choice([b"'", b"'", b""]))
            lines.append(b" ".join(words) + rng.choice([b"\r\n", b"\n", b"\r\n", b""]))
        return b"".join(lines)

    def mutate(self, data: bytearray) -> bytearray:
        rng = self.rng
        if not data:
            return bytearray(rng.randbytes(8))
        op = rng.randrange(9)
        pos = rng.randrange(len(data))
        if op == 0:  # bit flips
            for _ in range(rng.choice([1, 1, 2, 8])):
                pos = rng.randrange(len(data))
                data[pos] ^= 1 << rng.randrange(8)
        elif op == 1:  # truncation
            del data[pos:]
        elif op == 2:  # splice with another request
            other = encode(self.request())
            data = data[:pos] + other[rng.randrange(len(other)):]
        elif op in (3, 4):  # repeated or rewritten length headers
            headers = [m.span() for m in re.finditer(rb"[*$][^\r\n]*\r\n", bytes(data))]
            if headers:
                start, end = rng.choice(headers)
                if op == 3:
                    data[start:start] = data[start:end] * rng.choice([1, 2, 50])
                else:
                    data[start + 1:end - 2] = rng.choice(NUMBERS + [
                        b"-2", b"-1", b"0", b"600000000", b"1" * 30, b"abc", b"2147483648",
                        b"16777217", b"4294967297"])
        elif op == 5:  # random bytes in the middle
            data[pos:pos] = rng.randbytes(rng.choice([1, 4, 100]))
        elif op == 6:  # a slice deleted
            del data[pos:pos + rng.randrange(1, 20)]
        elif op == 7:  # a slice repeated
            piece = data[pos:pos + rng.randrange(1, 40)]
            data[pos:pos] = piece * rng.choice([1, 3, 200])
        else:  # line ends broken
            data = bytearray(bytes(data).replace(b"\r\n", rng.choice([b"\n", b"\r", b"\r\r\n"]),
                                                 rng.choice([1, 2, -1])))
        return data

    def random_bytes(self) -> bytes:
        rng = self.rng
        size = rng.choice([1, 2, 10, 100, 1000, 20000, 70000])
        if rng.random() < 0.5:
            data = bytes(rng.choice(ALPHABET) for _ in range(min(size, 2000)))
        else:
            data = rng.randbytes(size)
        return data + rng.choice([b"", b"\r\n"])


BLOCKING = {b"blpop", b"brpop", b"brpoplpush", b"blmove", b"blmpop", b"bzpopmin",
            b"bzpopmax", b"bzmpop"}


@dataclass
class Stats:
    inputs: int = 0
    commands: int = 0
    mutations: int = 0
    random: int = 0
    replies: int = 0
    closed: int = 0
    rounds: int = 0
    rss_start_kb: int = 0
    rss_max_kb: int = 0
    rss_end_kb: int = 0
    ping_max_ms: float = 0.0
    #: The slowest lone input or batch (seconds, what): slow is measured, only
    #: a connection silent for io_timeout is a finding.
    slowest: Tuple[float, str] = (0.0, "")
    seconds: float = 0.0
    findings: List[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0


NOT_YET = object()
#: Long enough to catch one chunk of the marker split over two reads.
MARKER = b"-ERR internal error"


def named(errors: List[bytes], requests: Sequence[bytes]) -> Sequence[bytes]:
    """The requests of the command the first internal error names."""
    match = re.search(rb"running '([^'|]*)", errors[0]) if errors else None
    if match:
        picked = [r for r in requests if r.split(b"\r\n")[2:3] == [match.group(1)]
                  or r.split(b"\r\n")[2:3] == [match.group(1).upper()]]
        if picked:
            return picked[:5]
    return requests[:3]


class Fuzzer:
    """Drives one server; ``run`` returns the statistics and findings."""

    def __init__(self, port: int, seed: int, inputs: int, *, lanes: int = 3,
                 batch: int = 100, garbage_workers: int = 8, garbage_per_worker: int = 20,
                 flush_every: int = 10, rss_limit_kb: int = 1 << 20,
                 log_path: Optional[Path] = None, io_timeout: float = 120.0,
                 progress_every: float = 0.0) -> None:
        self.port = port
        self.seed = seed
        self.target = inputs
        self.lanes = lanes
        self.batch = batch
        self.garbage_workers = garbage_workers
        self.garbage_per_worker = garbage_per_worker
        self.flush_every = flush_every
        self.rss_limit_kb = rss_limit_kb
        self.log_path = log_path
        self.io_timeout = io_timeout
        self.progress_every = progress_every
        self.stats = Stats()
        self.conns: List[Optional[Tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = \
            [None] * lanes
        self.sentinels = 0
        self.specs: List[Spec] = []
        self.pid = 0
        self.log_offset = 0

    # -- plumbing ----------------------------------------------------------
    async def call(self, *args: bytes) -> Any:
        """One request on a fresh connection; its parsed reply."""
        reader, writer = await asyncio.open_connection(HOST, self.port)
        try:
            writer.write(encode(args))
            parser = hiredis.Reader(notEnoughData=NOT_YET)
            while True:
                reply = parser.gets()
                if reply is not NOT_YET:
                    return reply
                chunk = await asyncio.wait_for(reader.read(1 << 16), self.io_timeout)
                if not chunk:
                    raise ConnectionError("closed")
                parser.feed(chunk)
        finally:
            writer.close()

    def check_replies(self, data: bytes, tail: bytes, where: str,
                      sent: Sequence[bytes]) -> None:
        """Record any internal error among the replies, with the requests that
        may have caused it (those of the command it names)."""
        if MARKER in tail + data:
            found = re.findall(rb"-ERR internal error[^\r]*", tail + data)
            self.finding(f"{where}: {found[:3]!r} after sending "
                                       f"{[bytes(s[:300]) for s in named(found, sent)]!r}")

    # -- the three kinds of input ------------------------------------------
    async def command_batch(self, lane: int, gen: Generator, size: int) -> None:
        requests = gen.batch(size)
        self.stats.commands += len(requests)
        if self.conns[lane] is None:
            self.conns[lane] = await asyncio.open_connection(HOST, self.port)
        reader, writer = self.conns[lane]
        self.sentinels += 1
        token = b"\x00fuzz-sentinel-%d" % self.sentinels
        writer.write(b"".join(requests) + encode([b"RESET"]) + encode([b"PING", token]))
        parser = hiredis.Reader(notEnoughData=NOT_YET)
        tail = b""
        started = time.monotonic()
        try:
            while True:
                chunk = await asyncio.wait_for(reader.read(1 << 16), self.io_timeout)
                if not chunk:  # QUIT, or the server closed it: allowed
                    self.stats.closed += 1
                    self.conns[lane] = None
                    writer.close()
                    return
                self.check_replies(chunk, tail, f"lane {lane}", requests)
                tail = chunk[-len(MARKER):]
                parser.feed(chunk)
                while True:
                    reply = parser.gets()
                    if reply is NOT_YET:
                        break
                    self.stats.replies += 1
                    if reply == token:
                        self.took(started, f"lane batch starting {requests[0][:100]!r}")
                        return
        except asyncio.TimeoutError:
            self.finding(f"lane {lane}: no reply to the batch for "
                         f"{self.io_timeout}s; batch starts "
                         f"{[r[:200] for r in requests[:3]]!r}")
        except hiredis.ProtocolError as exc:
            self.finding(f"lane {lane}: malformed reply ({exc})")
        self.conns[lane] = None
        writer.close()

    def took(self, started: float, what: str) -> None:
        elapsed = time.monotonic() - started
        if elapsed > self.stats.slowest[0]:
            self.stats.slowest = (elapsed, what)

    def finding(self, text: str) -> None:
        self.stats.findings.append(text)
        if self.progress_every:  # a long run shows them as they come
            print(f"fuzz: FINDING after {self.stats.inputs} inputs: {text[:3000]}", flush=True)

    async def lone_input(self, data: bytes, where: str) -> None:
        """One malformed input on its own half-closed connection, read to the end."""
        started = time.monotonic()
        reader, writer = await asyncio.open_connection(HOST, self.port)
        received = []
        try:
            writer.write(data)
            writer.write_eof()
            while True:
                chunk = await asyncio.wait_for(reader.read(1 << 16), self.io_timeout)
                if not chunk:
                    break
                received.append(chunk)
        except asyncio.TimeoutError:  # first: an OSError too since Python 3.11
            self.finding(f"{where}: connection silent for {self.io_timeout}s "
                         f"after EOF; input {data[:300]!r}")
        except OSError:
            pass  # closed on a protocol error while we were still sending: allowed
        finally:
            writer.close()
        self.took(started, f"{where} {data[:200]!r}")
        reply = b"".join(received)
        self.check_replies(reply, b"", where, [data])
        parser = hiredis.Reader(notEnoughData=NOT_YET)
        parser.feed(reply)
        try:
            while parser.gets() is not NOT_YET:
                self.stats.replies += 1
        except hiredis.ProtocolError as exc:
            self.finding(f"{where}: malformed reply ({exc}) to {data[:300]!r}")
        if parser.has_data():
            self.finding(f"{where}: truncated reply {reply[-200:]!r} "
                                       f"to {data[:300]!r}")

    async def garbage(self, worker: int, gen: Generator, count: int) -> None:
        for _ in range(count):
            if gen.rng.random() < 0.75:
                data, kind = gen.mutation(), "mutation"
                self.stats.mutations += 1
            else:
                data, kind = gen.random_bytes(), "random"
                self.stats.random += 1
            await self.lone_input(data, kind)

    # -- rounds and invariants ---------------------------------------------
    def new_log_lines(self) -> str:
        if self.log_path is None:
            return ""
        with open(self.log_path, "rb") as fh:
            fh.seek(self.log_offset)
            text = fh.read()
        self.log_offset += len(text)
        return text.decode(errors="replace")

    async def check_server(self) -> None:
        """Alive, answering a fresh PING within a deadline, RSS under the bound."""
        try:
            rss = rss_kb(self.pid)
        except (OSError, AssertionError):
            raise AssertionError(f"server process {self.pid} is gone "
                                 f"after {self.stats.inputs} inputs")
        started = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(
            None, wait_for_ping, self.port, started + 10)
        self.stats.ping_max_ms = max(self.stats.ping_max_ms, 1000 * (time.monotonic() - started))
        self.stats.rss_max_kb = max(self.stats.rss_max_kb, rss)
        if rss > self.rss_limit_kb:
            raise AssertionError(f"server RSS {rss} kB over the bound {self.rss_limit_kb} kB "
                                 f"after {self.stats.inputs} inputs")
        text = self.new_log_lines()
        for match in re.finditer(r"Traceback", text):  # with the line that logged it
            start = text.rfind("\n", 0, max(0, match.start() - 1)) + 1
            self.finding(f"server log: {text[start:match.start() + 3000]}")

    async def run(self) -> Stats:
        info = await self.call(b"INFO", b"server")
        self.pid = int(re.search(rb"process_id:(\d+)", info).group(1))
        self.specs = load_specs(await self.call(b"COMMAND"))
        await self.call(b"FLUSHALL")
        self.stats.rss_start_kb = rss_kb(self.pid)
        self.new_log_lines()
        started = last_report = time.monotonic()
        per_round = self.lanes * self.batch + self.garbage_workers * self.garbage_per_worker
        round_no = 0
        while self.stats.inputs < self.target:
            share = min(1.0, (self.target - self.stats.inputs) / per_round)
            batch = max(1, round(self.batch * share))
            garbage = max(1, round(self.garbage_per_worker * share))
            jobs = []
            for lane in range(self.lanes):
                gen = Generator(self.specs, random.Random(f"{self.seed}/{round_no}/c{lane}"))
                jobs.append(self.command_batch(lane, gen, batch))
            for worker in range(self.garbage_workers):
                gen = Generator(self.specs, random.Random(f"{self.seed}/{round_no}/g{worker}"))
                jobs.append(self.garbage(worker, gen, garbage))
            await asyncio.gather(*jobs)
            self.stats.inputs = self.stats.commands + self.stats.mutations + self.stats.random
            round_no += 1
            self.stats.rounds = round_no
            await self.check_server()
            if round_no % self.flush_every == 0:
                await self.call(b"FLUSHALL")
            now = time.monotonic()
            if self.progress_every and now - last_report > self.progress_every:
                last_report = now
                print(f"fuzz: {self.stats.inputs} inputs, {self.stats.inputs / (now - started):.0f}"
                      f"/s, RSS {self.stats.rss_max_kb} kB max, "
                      f"{len(self.stats.findings)} findings", flush=True)
        self.stats.seconds = time.monotonic() - started
        for lane, conn in enumerate(self.conns):
            if conn is not None:
                conn[1].close()
        await self.call(b"FLUSHALL")
        self.stats.rss_end_kb = rss_kb(self.pid)
        return self.stats
