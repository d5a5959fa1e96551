"""RDB value encodings over a stream: lengths, strings, and every value type.

:class:`RdbReader` reads from any binary stream (``read(n)``) and
:class:`RdbWriter` writes to any (``write(b)``); both keep a running CRC64
when asked, so the file frame (``file.py``), DUMP payloads (``dump.py``) and a
replication stream all share them, as Redis's rdb.c shares ``rio``.

Values are plain Python: ``("string", bytes)``, ``("list", [bytes])``,
``("set", {bytes})``, ``("hash", {bytes: bytes})``, ``("zset", [(member,
score)])``, ``("stream", StreamData)`` (streams.py). The writer picks the encoding Redis 7.0 would hold with its
default thresholds (:class:`Limits`), so DUMP output matches redis-server's.

Hostile input: every length is checked against the bytes left (when the size
is known) before anything is read or allocated, and a collection is built as
its elements arrive, so a claim of 2**63 elements costs nothing but an error.
"""
from __future__ import annotations

import struct
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from . import lzf
from .crc64 import crc64
from .errors import RdbError, RdbUnsupported
from .packed import (as_int64, intset, intset_decode, lp_build, lp_decode, lp_entry,
                     zipmap_decode, zl_decode)
from .streams import encode_stream, read_stream

RDB_VERSION = 10

# Value types (rdb.h).
TYPE_STRING = 0
TYPE_LIST = 1
TYPE_SET = 2
TYPE_ZSET = 3
TYPE_HASH = 4
TYPE_ZSET_2 = 5
TYPE_MODULE_PRE_GA = 6
TYPE_MODULE_2 = 7
TYPE_HASH_ZIPMAP = 9
TYPE_LIST_ZIPLIST = 10
TYPE_SET_INTSET = 11
TYPE_ZSET_ZIPLIST = 12
TYPE_HASH_ZIPLIST = 13
TYPE_LIST_QUICKLIST = 14
TYPE_STREAM_LISTPACKS = 15
TYPE_HASH_LISTPACK = 16
TYPE_ZSET_LISTPACK = 17
TYPE_LIST_QUICKLIST_2 = 18
TYPE_STREAM_LISTPACKS_2 = 19

_ENC_INT8, _ENC_INT16, _ENC_INT32, _ENC_LZF = 0, 1, 2, 3
#: Read-ahead and write-behind size: the CRC and the stream see whole chunks.
_CHUNK = 1 << 16
_MAX_READ = 1 << 20
_QUICKLIST_PLAIN, _QUICKLIST_PACKED = 1, 2
#: Redis never tries LZF on shorter strings ("unable to compress even aaaa...").
LZF_MIN = 21
#: Bytes of strings one request on the event loop (DUMP, MIGRATE, FUNCTION DUMP) may
#: LZF-compress: pure-Python LZF does 1-3 MB/s where liblzf does hundreds, so a
#: DUMP of a 50 MB string held the loop 16 s (redis-server: 0.14 s). Strings past
#: the budget are written verbatim, which Redis reads as well; 128 kB keeps
#: Redis's exact bytes for collections up to about that size (about 0.1 s at most).
LZF_BUDGET = 128 << 10


class LzfBudget:
    """What is left of :data:`LZF_BUDGET` for one payload: pass it as ``compress``."""

    __slots__ = ("left",)

    def __init__(self, left: int = LZF_BUDGET) -> None:
        self.left = left

    def __bool__(self) -> bool:
        return self.left >= LZF_MIN

    def take(self, n: int) -> bool:
        """Whether a string of ``n`` bytes still fits (and spend it if so)."""
        if n > self.left:
            return False
        self.left -= n
        return True


class RdbEmptyKey(RdbError):
    """A collection with no elements: RESTORE refuses it, file loading skips it."""


class Limits:
    """Redis 7.0's encoding thresholds (its defaults; redis.conf can change them)."""

    hash_listpack_entries = 512
    hash_listpack_value = 64
    set_intset_entries = 512
    zset_listpack_entries = 128
    zset_listpack_value = 64
    #: list-max-listpack-size -2: a quicklist node's listpack holds at most 8 KB.
    list_node_bytes = 8192


DEFAULT_LIMITS = Limits()


# -- reading ---------------------------------------------------------------------------

class RdbReader:
    """Reads RDB encodings from ``stream``; ``size`` (bytes available, when
    known) bounds every length before it is used; ``checksum`` keeps a CRC64
    of everything read (:meth:`crc`).

    With a known size the stream is read ahead in chunks (within ``size``), so
    small reads cost no call and the CRC runs over whole chunks; with an unknown
    size (a socket whose later bytes are not ours) only what is asked is read."""

    def __init__(self, stream: Any, size: Optional[int] = None, checksum: bool = False,
                 offset: int = 0) -> None:
        self._read = stream.read
        self.offset = offset
        self.remaining = size
        self.checksum = checksum
        self._crc = 0
        self._buf = b""
        self._pos = 0
        self._summed = 0  # _buf[:_summed] is in _crc
        #: read-ahead size with a known size (bulk loads raise it: fewer, larger
        #: CRC passes, which run faster per byte)
        self.chunk = _CHUNK

    def fail(self, reason: str, offset: Optional[int] = None) -> RdbError:
        return RdbError(reason, self.offset if offset is None else offset)

    def crc(self) -> int:
        """The CRC64 of every byte consumed so far."""
        if self._summed < self._pos:
            self._crc = crc64(memoryview(self._buf)[self._summed:self._pos], self._crc)
            self._summed = self._pos
        return self._crc

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes; RdbError if the input holds fewer."""
        if self.remaining is not None:
            if n > self.remaining:
                raise self.fail(f"needs {n} bytes, {self.remaining} left (truncated?)")
            self.remaining -= n
        pos = self._pos
        end = pos + n
        if end > len(self._buf):
            self._fill(n)
            pos, end = 0, n
        self._pos = end
        self.offset += n
        return self._buf[pos:end]

    def _fill(self, n: int) -> None:
        """Make ``n`` bytes available from the start of the buffer."""
        if self.checksum:
            self.crc()
        rest = self._buf[self._pos:]
        want = n - len(rest)
        if self.remaining is not None:  # read ahead, never past the known size
            want = min(max(n - len(rest), self.chunk), self.remaining + n - len(rest))
        parts = [rest]
        got = 0
        while got < want:
            # in pieces: a stream may allocate what it is asked for, and with an
            # unknown size only the bytes that really arrive may cost memory
            data = self._read(min(want - got, _MAX_READ))
            if not data:
                break
            parts.append(data)
            got += len(data)
        if got < n - len(rest):
            self.offset += len(rest) + got
            raise self.fail(f"needs {n} bytes, input ended after {len(rest) + got}")
        self._buf = b"".join(parts)
        self._pos = self._summed = 0

    def byte(self) -> int:
        pos = self._pos
        buf = self._buf
        # Inlined read(1) when the byte is buffered: a full sync reads a few per key.
        if pos < len(buf) and (self.remaining is None or self.remaining > 0):
            if self.remaining is not None:
                self.remaining -= 1
            self._pos = pos + 1
            self.offset += 1
            return buf[pos]
        return self.read(1)[0]

    def need(self, count: int, each: int = 1) -> None:
        """Refuse a count of elements that cannot fit in what is left."""
        if self.remaining is not None and count * each > self.remaining:
            raise self.fail(f"claims {count} elements, only {self.remaining} bytes left")

    def length_or_encoding(self) -> Tuple[int, bool]:
        """(length, False), or (special encoding, True) for 11xxxxxx."""
        b = self.byte()
        kind = b >> 6
        if kind == 0:
            return b & 0x3F, False
        if kind == 1:
            return ((b & 0x3F) << 8) | self.byte(), False
        if kind == 3:
            return b & 0x3F, True
        if b == 0x80:
            return int.from_bytes(self.read(4), "big"), False
        if b == 0x81:
            return int.from_bytes(self.read(8), "big"), False
        raise self.fail(f"bad length encoding 0x{b:02x}", self.offset - 1)

    def length(self) -> int:
        n, special = self.length_or_encoding()
        if special:
            raise self.fail("expected a length, found a string encoding", self.offset - 1)
        return n

    def string(self) -> bytes:
        buf = self._buf
        pos = self._pos
        if pos < len(buf):
            n = buf[pos]
            # A raw string under 64 bytes, already buffered (most keys and small
            # values): its length byte and body in one step instead of two reads.
            end = pos + 1 + n
            if n < 0x40 and end <= len(buf) and \
                    (self.remaining is None or n < self.remaining):
                if self.remaining is not None:
                    self.remaining -= n + 1
                self._pos = end
                self.offset += n + 1
                return buf[pos + 1:end]
        n, special = self.length_or_encoding()
        if not special:
            return self.read(n)
        if n == _ENC_INT8:
            return b"%d" % int.from_bytes(self.read(1), "little", signed=True)
        if n == _ENC_INT16:
            return b"%d" % int.from_bytes(self.read(2), "little", signed=True)
        if n == _ENC_INT32:
            return b"%d" % int.from_bytes(self.read(4), "little", signed=True)
        if n == _ENC_LZF:
            start = self.offset
            clen = self.length()
            size = self.length()
            packed = self.read(clen)
            if size > clen * lzf.MAX_RATIO:  # checked before allocating the output
                raise self.fail(f"LZF claims {size} bytes from {clen}", start)
            try:
                return lzf.decompress(packed, size)
            except lzf.LzfError as e:
                raise self.fail(f"bad LZF data: {e}", start) from None
        raise self.fail(f"unknown string encoding {n}", self.offset - 1)

    def binary_double(self) -> float:
        return struct.unpack("<d", self.read(8))[0]

    def old_double(self) -> float:
        n = self.byte()
        if n == 253:
            return float("nan")
        if n == 254:
            return float("inf")
        if n == 255:
            return float("-inf")
        return _to_float(self, self.read(n))

    def value(self, rdb_type: int) -> Tuple[str, Any]:
        """The value of one key, of RDB type ``rdb_type``: (kind, value)."""
        decode = _DECODERS.get(rdb_type)
        if decode is None:
            if rdb_type in (TYPE_MODULE_PRE_GA, TYPE_MODULE_2):
                raise RdbUnsupported("module values are not supported", self.offset)
            raise self.fail(f"unknown value type {rdb_type}")
        start = self.offset
        kind, value = decode(self)
        if kind != "string" and not value:
            raise RdbEmptyKey(f"empty {kind}", start)
        return kind, value


def _to_float(r: RdbReader, text: bytes) -> float:
    try:
        score = float(text)
    except ValueError:
        raise r.fail(f"bad score {text[:40]!r}") from None
    if score != score:
        raise r.fail("NaN score")
    return score


def _strings(r: RdbReader) -> List[bytes]:
    count = r.length()
    r.need(count)
    string = r.string
    return [string() for _ in range(count)]


def _no_duplicates(r: RdbReader, kind: str, got: int, expected: int, start: int) -> None:
    if got != expected:
        raise r.fail(f"duplicate {kind} elements", start)


def _read_list(r: RdbReader) -> Tuple[str, Any]:
    return "list", _strings(r)


def _read_set(r: RdbReader) -> Tuple[str, Any]:
    start = r.offset
    members = _strings(r)
    value = set(members)
    _no_duplicates(r, "set", len(value), len(members), start)
    return "set", value


def _pairs_to_dict(r: RdbReader, flat: List[bytes], start: int) -> Dict[bytes, bytes]:
    if len(flat) % 2:
        raise r.fail("odd number of hash entries", start)
    value = dict(zip(flat[::2], flat[1::2]))
    _no_duplicates(r, "hash", len(value), len(flat) // 2, start)
    return value


def _read_hash(r: RdbReader) -> Tuple[str, Any]:
    start = r.offset
    count = r.length()
    r.need(count, 2)
    string = r.string
    flat = [string() for _ in range(2 * count)]
    return "hash", _pairs_to_dict(r, flat, start)


def _zset_pairs(r: RdbReader, pairs: List[Tuple[bytes, float]], start: int
                ) -> List[Tuple[bytes, float]]:
    _no_duplicates(r, "zset", len({m for m, _ in pairs}), len(pairs), start)
    return pairs


def _read_zset(r: RdbReader, score: Callable[[RdbReader], float]) -> Tuple[str, Any]:
    start = r.offset
    count = r.length()
    r.need(count, 2)
    pairs = []
    for _ in range(count):
        member = r.string()
        value = score(r)
        if value != value:
            raise r.fail("NaN score")
        pairs.append((member, value))
    return "zset", _zset_pairs(r, pairs, start)


def _blob(r: RdbReader, decode: Callable[[bytes], List[bytes]]) -> Tuple[List[bytes], int]:
    start = r.offset
    blob = r.string()
    try:
        return decode(blob), start
    except RdbError as e:
        raise RdbError(f"{e.reason} (inside the blob at offset {e.offset})", start) from None


def _flat_zset(r: RdbReader, flat: List[bytes], start: int) -> Tuple[str, Any]:
    if len(flat) % 2:
        raise r.fail("odd number of sorted set entries", start)
    pairs = [(m, _to_float(r, s)) for m, s in zip(flat[::2], flat[1::2])]
    return "zset", _zset_pairs(r, pairs, start)


def _read_quicklist(r: RdbReader, version: int) -> Tuple[str, Any]:
    nodes = r.length()
    r.need(nodes)
    items: List[bytes] = []
    for _ in range(nodes):
        container = _QUICKLIST_PACKED if version == 1 else r.length()
        if container == _QUICKLIST_PLAIN:
            items.append(r.string())
        elif container == _QUICKLIST_PACKED:
            entries, _ = _blob(r, zl_decode if version == 1 else lp_decode)
            items += entries  # an empty node is skipped, as Redis does
        else:
            raise r.fail(f"bad quicklist container {container}")
    return "list", items


def _packed(decode: Callable[[bytes], List[bytes]], build: Callable[..., Tuple[str, Any]]
            ) -> Callable[[RdbReader], Tuple[str, Any]]:
    def read(r: RdbReader) -> Tuple[str, Any]:
        flat, start = _blob(r, decode)
        return build(r, flat, start)
    return read


def _as_list(r: RdbReader, flat: List[bytes], start: int) -> Tuple[str, Any]:
    return "list", flat


def _as_set(r: RdbReader, flat: List[bytes], start: int) -> Tuple[str, Any]:
    value = set(flat)
    _no_duplicates(r, "set", len(value), len(flat), start)
    return "set", value


def _as_hash(r: RdbReader, flat: List[bytes], start: int) -> Tuple[str, Any]:
    return "hash", _pairs_to_dict(r, flat, start)


_DECODERS: Dict[int, Callable[[RdbReader], Tuple[str, Any]]] = {
    TYPE_STRING: lambda r: ("string", r.string()),
    TYPE_LIST: _read_list,
    TYPE_SET: _read_set,
    TYPE_ZSET: lambda r: _read_zset(r, RdbReader.old_double),
    TYPE_HASH: _read_hash,
    TYPE_ZSET_2: lambda r: _read_zset(r, RdbReader.binary_double),
    TYPE_HASH_ZIPMAP: _packed(zipmap_decode, _as_hash),
    TYPE_LIST_ZIPLIST: _packed(zl_decode, _as_list),
    TYPE_SET_INTSET: _packed(intset_decode, _as_set),
    TYPE_ZSET_ZIPLIST: _packed(zl_decode, _flat_zset),
    TYPE_HASH_ZIPLIST: _packed(zl_decode, _as_hash),
    TYPE_LIST_QUICKLIST: lambda r: _read_quicklist(r, 1),
    TYPE_HASH_LISTPACK: _packed(lp_decode, _as_hash),
    TYPE_ZSET_LISTPACK: _packed(lp_decode, _flat_zset),
    TYPE_LIST_QUICKLIST_2: lambda r: _read_quicklist(r, 2),
    TYPE_STREAM_LISTPACKS: lambda r: read_stream(r, TYPE_STREAM_LISTPACKS),
    TYPE_STREAM_LISTPACKS_2: lambda r: read_stream(r, TYPE_STREAM_LISTPACKS_2),
}


# -- writing ---------------------------------------------------------------------------

def encode_length(n: int) -> bytes:
    if n < 64:
        return bytes((n,))
    if n < 16384:
        return bytes((0x40 | (n >> 8), n & 0xFF))
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def encode_string(s: bytes, compress: Union[bool, LzfBudget] = True) -> bytes:
    """rdbSaveRawString: an integer encoding for short canonical integers, LZF
    when it saves at least 5 bytes (strings over 20 bytes, while a budget lasts),
    else verbatim."""
    n = len(s)
    if n <= 11:
        v = as_int64(s)
        if v is not None:
            if -128 <= v <= 127:
                return bytes((0xC0, v & 0xFF))
            if -32768 <= v <= 32767:
                return b"\xc1" + (v & 0xFFFF).to_bytes(2, "little")
            if -2147483648 <= v <= 2147483647:
                return b"\xc2" + (v & 0xFFFFFFFF).to_bytes(4, "little")
    if compress and n >= LZF_MIN and (compress is True or compress.take(n)):
        packed = lzf.compress(s, n - 4)
        if packed is not None:
            return b"\xc3" + encode_length(len(packed)) + encode_length(n) + packed
    return encode_length(n) + s


def score_text(score: float) -> bytes:
    """Redis 7.0's d2string: how a listpack sorted set stores a score."""
    if score == 0:
        return b"-0" if str(score)[0] == "-" else b"0"
    if score != score:
        return b"nan"
    if score in (float("inf"), float("-inf")):
        return b"inf" if score > 0 else b"-inf"
    if -4503599627370495 < score < 4503599627370496 and score == int(score):
        return b"%d" % int(score)
    return b"%.17g" % score


def _quicklist_nodes(items: Iterable[bytes], node_bytes: int) -> List[bytes]:
    """Listpacks as Redis 7.0 fills quicklist nodes pushing at the tail: an
    element joins the tail node while the node's size plus the element's
    length plus 8 (SIZE_ESTIMATE_OVERHEAD) stays within ``node_bytes``."""
    nodes: List[bytes] = []
    entries: List[bytes] = []
    size = 7  # an empty listpack
    for item in items:
        if entries and size + len(item) + 8 > node_bytes:
            nodes.append(lp_build(entries))
            entries, size = [], 7
        entry = lp_entry(item)
        entries.append(entry)
        size += len(entry)
    if entries:
        nodes.append(lp_build(entries))
    return nodes


def encode_object(kind: str, value: Any, compress: Union[bool, LzfBudget] = True,
                  limits: Limits = DEFAULT_LIMITS) -> Tuple[int, bytes]:
    """(RDB type, encoded object) as Redis 7.0 saves ``value``."""
    s = encode_string
    if kind == "string":
        return TYPE_STRING, s(value, compress)
    if kind == "list":
        nodes = _quicklist_nodes(value, limits.list_node_bytes)
        parts = [encode_length(len(nodes))]
        for node in nodes:
            parts += (b"\x02", s(node, compress))
        return TYPE_LIST_QUICKLIST_2, b"".join(parts)
    if kind == "hash":
        pairs = value.items()
        if len(value) <= limits.hash_listpack_entries and all(
                len(f) <= limits.hash_listpack_value and len(v) <= limits.hash_listpack_value
                for f, v in pairs):
            entries = []
            for f, v in pairs:
                entries += (lp_entry(f), lp_entry(v))
            return TYPE_HASH_LISTPACK, s(lp_build(entries), compress)
        parts = [encode_length(len(value))]
        for f, v in pairs:
            parts += (s(f, compress), s(v, compress))
        return TYPE_HASH, b"".join(parts)
    if kind == "set":
        if len(value) <= limits.set_intset_entries:
            numbers = [as_int64(m) for m in value]
            if None not in numbers:
                return TYPE_SET_INTSET, s(intset(sorted(numbers)), compress)  # type: ignore
        return TYPE_SET, encode_length(len(value)) + b"".join(s(m, compress) for m in value)
    if kind == "zset":
        pairs = sorted(value, key=lambda p: (p[1], p[0]))
        if len(pairs) <= limits.zset_listpack_entries and all(
                len(m) <= limits.zset_listpack_value for m, _ in pairs):
            entries = []
            for m, score in pairs:
                entries += (lp_entry(m), lp_entry(score_text(score)))
            return TYPE_ZSET_LISTPACK, s(lp_build(entries), compress)
        parts = [encode_length(len(pairs))]
        pack = struct.Struct("<d").pack
        for m, score in reversed(pairs):  # Redis saves a skiplist from its tail
            parts += (s(m, compress), pack(score))
        return TYPE_ZSET_2, b"".join(parts)
    if kind == "stream":
        return TYPE_STREAM_LISTPACKS_2, encode_stream(value, lambda b: s(b, compress),
                                                      encode_length)
    raise ValueError(f"cannot encode a {kind!r} value")


class RdbWriter:
    """Writes RDB encodings to ``stream`` in chunks (call :meth:`flush` at the
    end), with a running CRC64 in ``crc``."""

    def __init__(self, stream: Any, compress: bool = True, checksum: bool = True,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self._write = stream.write
        self.compress = compress
        self.checksum = checksum
        self.limits = limits
        self.crc = 0
        self.written = 0
        self._pending: List[bytes] = []
        self._pending_size = 0
        #: bytes held before they go to the stream (and the CRC) in one piece
        self.chunk = _CHUNK

    def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_size += len(data)
        self.written += len(data)
        if self._pending_size >= self.chunk:
            self.flush()

    def flush(self) -> None:
        """Hand what is pending to the stream (and to the CRC)."""
        if self._pending:
            chunk = b"".join(self._pending)
            self._pending, self._pending_size = [], 0
            if self.checksum:
                self.crc = crc64(chunk, self.crc)
            self._write(chunk)

    def length(self, n: int) -> None:
        self.write(encode_length(n))

    def string(self, s: bytes) -> None:
        self.write(encode_string(s, self.compress))

    def value(self, kind: str, value: Any) -> None:
        """The type byte and the object."""
        rdb_type, body = encode_object(kind, value, self.compress, self.limits)
        self.write(bytes((rdb_type,)) + body)
