"""Keys and values: how Python objects become Redis strings and back.

The default ``"auto"`` serializer (format documented in ``docs/values.md``):

- an ``int`` is stored as plain decimal text, so INCR works on it from any
  client, and a value another client INCRed comes back as an ``int``;
- a ``str`` is stored as plain UTF-8, unless it would read back as something
  else (it looks like an int, or cannot be encoded as strict UTF-8);
- everything else uses a compact tagged binary format that starts with the
  magic bytes ``b"\\xff\\xdc"`` (0xFF never occurs in UTF-8, so no plain text
  can be mistaken for it), then a version/flags byte, then one tagged item.

Decoding never executes code and only instantiates classes registered with
:func:`register`. Malformed input raises :class:`DecodeError`.

>>> s = AutoSerializer()
>>> s.loads(s.dumps({"a": (1, 2.5, None)}))
{'a': (1, 2.5, None)}
>>> s.dumps(42), s.dumps("hi")
(b'42', b'hi')
"""
from __future__ import annotations

import dataclasses
import json
import re
import struct
import zlib
from typing import Any, Callable, Dict, List, Optional, Tuple

from .errors import DecodeError

__all__ = ["AutoSerializer", "JsonSerializer", "RawSerializer", "PickleSerializer",
           "make_serializer", "register", "encode_key", "MAGIC", "VERSION"]

MAGIC = b"\xff\xdc"
VERSION = 1
FLAG_ZLIB = 0x01
_HEADER = bytes([VERSION << 4])
_HEADER_Z = bytes([VERSION << 4 | FLAG_ZLIB])

# Canonical decimal integers only: "007", "+1", "-0" or " 1" stay text.
_INT_RE = re.compile(rb"(?:0|-?[1-9][0-9]*)\Z")
_INT_STR_RE = re.compile(r"(?:0|-?[1-9][0-9]*)\Z")
# Python refuses int<->str conversions beyond 4300 digits by default; bigger
# ints use the binary form (13000 bits is about 3900 digits).
_MAX_DECIMAL_BITS = 13000
_MAX_DECIMAL_LEN = 4000
_DOUBLE = struct.Struct(">d")


# -- keys ----------------------------------------------------------------------

def encode_key(key: Any) -> bytes:
    """str -> UTF-8, bytes as is, int -> its decimal text (``5`` and ``"5"`` are one key)."""
    cls = key.__class__
    if cls is str:
        return key.encode()
    if cls is bytes:
        return key
    if cls is int:
        return b"%d" % key
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    if isinstance(key, str):
        return str.encode(key)
    raise TypeError(f"cache keys must be str, bytes or int, not {cls.__name__}")


# -- registered classes --------------------------------------------------------

_BY_NAME: Dict[str, type] = {}
_BY_CLASS: Dict[type, Tuple[str, Optional[Tuple[str, ...]]]] = {}


def register(cls: type, name: Optional[str] = None) -> type:
    """Allow instances of ``cls`` to be stored; usable as a class decorator.

    Dataclasses store their fields; other classes their ``__dict__`` (and
    ``__slots__``). Attribute values must themselves be storable. ``name``
    (default ``module.QualName``) is what is written, so keep it stable.

    >>> @register
    ... @dataclasses.dataclass
    ... class Point:
    ...     x: int
    ...     y: int
    """
    if not isinstance(cls, type):
        raise TypeError("register() expects a class")
    name = name or f"{cls.__module__}.{cls.__qualname__}"
    fields = (tuple(f.name for f in dataclasses.fields(cls))
              if dataclasses.is_dataclass(cls) else None)
    _BY_NAME[name] = cls
    _BY_CLASS[cls] = (name, fields)
    return cls


def _object_state(obj: Any, fields: Optional[Tuple[str, ...]]) -> List[Tuple[str, Any]]:
    if fields is not None:
        return [(f, getattr(obj, f)) for f in fields]
    state = list(getattr(obj, "__dict__", {}).items())
    for klass in type(obj).__mro__:
        for slot in getattr(klass, "__slots__", ()):
            if slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                state.append((slot, getattr(obj, slot)))
    return state


def _unregistered(value: Any) -> TypeError:
    cls = type(value)
    return TypeError(
        f"cannot store a {cls.__module__}.{cls.__qualname__}: only int, float, str, bytes, "
        "bool, None, list, tuple, dict, set, frozenset and registered classes are "
        f"supported; call distcache.register({cls.__qualname__}) to store it")


# -- the tagged binary format --------------------------------------------------

def _varint(n: int, out: bytearray) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


class AutoSerializer:
    """The default serializer: plain text for int/str, tagged binary otherwise."""

    name = "auto"

    def __init__(self, compress_threshold: Optional[int] = None,
                 max_size: int = 64 * 1024 * 1024, max_depth: int = 200) -> None:
        self.compress_threshold = compress_threshold
        self.max_size = max_size      # largest (decompressed) value accepted
        self.max_depth = max_depth    # deepest nesting encoded or decoded

    # encoding
    def dumps(self, value: Any) -> bytes:
        cls = value.__class__
        data: Optional[bytes] = None
        if cls is str:
            if not value or (value[0] not in "-0123456789" or not _INT_STR_RE.match(value)):
                try:
                    data = value.encode()
                except UnicodeEncodeError:  # lone surrogates: tagged form keeps them
                    data = None
        elif cls is int and value.bit_length() <= _MAX_DECIMAL_BITS:
            data = b"%d" % value
        threshold = self.compress_threshold
        if data is not None and (threshold is None or len(data) < threshold):
            return data
        out = bytearray()
        self._encode(value, out, 0)
        if threshold is not None and len(out) >= threshold:
            packed = zlib.compress(bytes(out))
            if len(packed) < len(out):
                return MAGIC + _HEADER_Z + packed
        return MAGIC + _HEADER + bytes(out)

    def _encode(self, value: Any, out: bytearray, depth: int) -> None:
        cls = value.__class__
        if cls is str:
            raw = value.encode("utf-8", "surrogatepass")
            out.append(0x73)  # s
            _varint(len(raw), out)
            out += raw
        elif cls is int:
            raw = value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)
            out.append(0x69)  # i
            _varint(len(raw), out)
            out += raw
        elif value is None:
            out.append(0x4E)  # N
        elif value is True:
            out.append(0x54)  # T
        elif value is False:
            out.append(0x46)  # F
        elif cls is float:
            out.append(0x66)  # f
            out += _DOUBLE.pack(value)
        elif cls is bytes:
            out.append(0x62)  # b
            _varint(len(value), out)
            out += value
        else:
            if depth >= self.max_depth:
                raise ValueError(f"value nested deeper than {self.max_depth} levels "
                                 "(or it contains itself)")
            depth += 1
            encode = self._encode
            if cls is list or cls is tuple or cls is set or cls is frozenset:
                out.append(_SEQ_TAGS[cls])
                _varint(len(value), out)
                for item in value:
                    encode(item, out, depth)
            elif cls is dict:
                out.append(0x64)  # d
                _varint(len(value), out)
                for k, v in value.items():
                    encode(k, out, depth)
                    encode(v, out, depth)
            elif cls in _BY_CLASS:
                name, fields = _BY_CLASS[cls]
                state = _object_state(value, fields)
                raw = name.encode()
                out.append(0x6F)  # o
                _varint(len(raw), out)
                out += raw
                _varint(len(state), out)
                for k, v in state:
                    encode(k, out, depth)
                    encode(v, out, depth)
            else:
                raise _unregistered(value)

    # decoding
    def loads(self, data: bytes) -> Any:
        if data[:1] == b"\xff":
            if data[1:2] != b"\xdc":
                return bytes(data)  # foreign binary data (not UTF-8, not ours)
            return self._loads_tagged(data)
        if data[:1] in _INT_START and len(data) <= _MAX_DECIMAL_LEN and _INT_RE.match(data):
            return int(data)
        try:
            return data.decode()
        except UnicodeDecodeError:
            return bytes(data)

    def _loads_tagged(self, data: bytes) -> Any:
        if len(data) < 3:
            raise DecodeError("truncated value header")
        header = data[2]
        if header >> 4 != VERSION or header & ~FLAG_ZLIB & 0x0F:
            raise DecodeError(f"unsupported value format (version {header >> 4}, "
                              f"flags {header & 0x0F:#x})")
        payload = data[3:]
        if header & FLAG_ZLIB:
            payload = _inflate(payload, self.max_size)
        elif len(payload) > self.max_size:
            raise DecodeError("value larger than max_size")
        try:
            value, pos = _Decoder(payload, self.max_depth).item(0, 0)
        except (IndexError, struct.error):
            raise DecodeError("truncated value") from None
        except (TypeError, UnicodeDecodeError) as exc:  # e.g. unhashable dict key
            raise DecodeError(f"malformed value: {exc}") from None
        if pos != len(payload):
            raise DecodeError("trailing bytes after value")
        return value


def _inflate(payload: bytes, limit: int) -> bytes:
    """zlib-decompress at most ``limit`` bytes: a bomb fails fast, not after eating RAM."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(payload, limit)
    except zlib.error as exc:
        raise DecodeError(f"corrupt compressed value: {exc}") from None
    if inflater.unconsumed_tail:
        raise DecodeError(f"compressed value expands beyond max_size ({limit} bytes)")
    if not inflater.eof or inflater.unused_data:
        raise DecodeError("truncated or padded compressed value")
    return out


_SEQ_TAGS = {list: 0x6C, tuple: 0x74, set: 0x53, frozenset: 0x7A}  # l t S z
_INT_START = frozenset(bytes([c]) for c in b"-0123456789")


class _Decoder:
    __slots__ = ("data", "max_depth")

    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.max_depth = max_depth

    def varint(self, pos: int) -> Tuple[int, int]:
        data = self.data
        result = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result, pos
            shift += 7
            if shift > 63:
                raise DecodeError("length field too long")

    def sized(self, pos: int) -> Tuple[bytes, int]:
        size = self.data[pos]
        if size < 0x80:  # one-byte length: the common case
            pos += 1
        else:
            size, pos = self.varint(pos)
        end = pos + size
        if end > len(self.data):
            raise DecodeError("truncated value")
        return self.data[pos:end], end

    def count(self, pos: int) -> Tuple[int, int]:
        n, pos = self.varint(pos)
        if n > len(self.data) - pos:  # every item takes at least one byte
            raise DecodeError("item count larger than the value")
        return n, pos

    def item(self, pos: int, depth: int) -> Tuple[Any, int]:
        data = self.data
        tag = data[pos]
        if tag == 0x73 or tag == 0x69:  # s, i: the usual leaves, inlined
            size = data[pos + 1]
            if size < 0x80:
                pos += 2
            else:
                size, pos = self.varint(pos + 1)
            end = pos + size
            if end > len(data):
                raise DecodeError("truncated value")
            if tag == 0x69:
                return int.from_bytes(data[pos:end], "big", signed=True), end
            return data[pos:end].decode("utf-8", "surrogatepass"), end
        pos += 1
        if tag == 0x4E:
            return None, pos
        if tag == 0x54:
            return True, pos
        if tag == 0x46:
            return False, pos
        if tag == 0x66:  # f
            if pos + 8 > len(self.data):
                raise DecodeError("truncated float")
            return _DOUBLE.unpack_from(self.data, pos)[0], pos + 8
        if tag == 0x62:  # b
            return self.sized(pos)
        if depth >= self.max_depth:
            raise DecodeError(f"value nested deeper than {self.max_depth} levels")
        depth += 1
        if tag in _SEQ_BUILD:
            n, pos = self.count(pos)
            items = []
            for _ in range(n):
                item, pos = self.item(pos, depth)
                items.append(item)
            return _SEQ_BUILD[tag](items), pos
        if tag == 0x64:  # d
            n, pos = self.count(pos)
            result = {}
            for _ in range(n):
                k, pos = self.item(pos, depth)
                result[k], pos = self.item(pos, depth)
            return result, pos
        if tag == 0x6F:  # o
            raw, pos = self.sized(pos)
            name = raw.decode("utf-8", "replace")
            cls = _BY_NAME.get(name)
            if cls is None:
                raise DecodeError(f"value is a {name!r}, which is not registered here "
                                  "(distcache.register)")
            n, pos = self.count(pos)
            fields = _BY_CLASS[cls][1]
            obj = cls.__new__(cls)
            for _ in range(n):
                attr, pos = self.item(pos, depth)
                value, pos = self.item(pos, depth)
                if attr.__class__ is not str or attr.startswith("__") or (
                        fields is not None and attr not in fields):
                    raise DecodeError(f"bad attribute {attr!r} for {name}")
                object.__setattr__(obj, attr, value)  # works for frozen dataclasses too
            return obj, pos
        raise DecodeError(f"unknown type tag {tag:#04x}")


_SEQ_BUILD: Dict[int, Callable[[list], Any]] = {0x6C: list, 0x74: tuple, 0x53: set,
                                                 0x7A: frozenset}


# -- other serializers ---------------------------------------------------------

class JsonSerializer:
    """JSON text: readable by anything, but tuples/sets/bytes do not survive."""

    name = "json"

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(self, data: bytes) -> Any:
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise DecodeError(f"not JSON: {exc}") from None


class RawSerializer:
    """No conversion: str is UTF-8-encoded, int/float become text, reads give bytes."""

    name = "raw"

    def dumps(self, value: Any) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return repr(value).encode()
        raise TypeError(f"the raw serializer stores bytes, str, int and float, "
                        f"not {type(value).__name__}")

    def loads(self, data: bytes) -> Any:
        return bytes(data)


class PickleSerializer:
    """pickle: any object, but loading runs code. Only for data you fully trust."""

    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        import pickle
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        import pickle
        try:
            return pickle.loads(data)  # opt-in only: serializer="pickle", never the default
        except Exception as exc:
            raise DecodeError(f"not a pickle: {exc}") from None


def make_serializer(spec: Any = "auto", compress_threshold: Optional[int] = None) -> Any:
    """``"auto"``, ``"json"``, ``"raw"``, ``"pickle"``, or any object with dumps/loads."""
    if spec is None or spec == "auto":
        return AutoSerializer(compress_threshold)
    if isinstance(spec, str):
        table = {"json": JsonSerializer, "raw": RawSerializer, "pickle": PickleSerializer}
        if spec not in table:
            raise ValueError(f"unknown serializer {spec!r} (auto, json, raw, pickle)")
        return table[spec]()
    if not (callable(getattr(spec, "dumps", None)) and callable(getattr(spec, "loads", None))):
        raise TypeError("serializer must be a name or an object with dumps() and loads()")
    return spec
