"""Key placement: libmemcached-compatible ketama consistent hashing.

The continuum is built exactly as libmemcached builds it for
``MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED`` (the classic last.fm ketama, the one
PHP's ``memcached.sess_consistent_hash``/``libketama_compatible``, pylibmc's
``ketama_weighted`` and other libmemcached-based clients use):

* each server gets ``floor(weight / total_weight * 40 * live_servers) * 4``
  points on a 32-bit circle (160 points when all weights are equal), the
  share computed in single precision as libmemcached does;
* the points of server ``S`` are the four little-endian 32-bit words of
  ``md5(b"S-N")`` for ``N = 0, 1, ...``, where ``S`` is ``host:port`` or
  just ``host`` when the port is memcached's default, 11211 (libmemcached's
  point name format);
* a key is hashed with the first four bytes of its MD5 (little-endian) and
  belongs to the first point at or after that value, wrapping around.

Hash tags follow the Redis Cluster rule: when a key contains ``{`` followed
later by ``}`` with at least one byte between them, only those bytes are
hashed, so ``user:{42}:name`` and ``user:{42}:mail`` live together.

Python's ``hash()`` is never used: placement is the same in every process.
"""
from __future__ import annotations

import math
import struct
from bisect import bisect_left
from hashlib import md5
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

__all__ = [
    "DEFAULT_PORT", "MEMCACHED_DEFAULT_PORT", "POINTS_PER_SERVER", "ServerSpec",
    "parse_servers", "pool_items", "hash_key", "key_hash", "point_name", "KetamaRing",
]

#: The port a server spec without one gets (the distcache server's default).
DEFAULT_PORT = 2050
#: libmemcached leaves the port out of point names when it is this one.
MEMCACHED_DEFAULT_PORT = 11211
#: Points per server when all weights are equal (40 hashes x 4 points).
POINTS_PER_SERVER = 160


class ServerSpec(NamedTuple):
    """One server: ``host``, ``port``, a relative ``weight`` (default 1) and
    whether it is reached over TLS (a ``rediss://`` spec). Placement uses
    only the address."""

    host: str
    port: int
    weight: int = 1
    tls: bool = False

    @property
    def address(self) -> str:
        """``"host:port"`` (``"[v6]:port"`` for IPv6 literals)."""
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        text = "rediss://" + self.address if self.tls else self.address
        if self.weight != 1:
            return f"{text} weight={self.weight}"
        return text


ServerLike = Union[ServerSpec, str, Tuple[Any, ...]]


def _parse_one(item: Any) -> ServerSpec:
    if isinstance(item, ServerSpec):
        return item
    if isinstance(item, (tuple, list)):
        if not 1 <= len(item) <= 3 or not isinstance(item[0], str):
            raise ValueError(f"bad server tuple {item!r}: expected (host, port[, weight])")
        host = item[0]
        port = int(item[1]) if len(item) > 1 else DEFAULT_PORT
        weight = int(item[2]) if len(item) > 2 else 1
        return _checked(host, port, weight, item)
    if isinstance(item, bytes):
        item = item.decode()
    if not isinstance(item, str):
        raise TypeError(f"cannot parse a server from {item!r}")
    text = item.strip()
    tls = False
    for prefix in ("redis://", "tcp://", "rediss://"):
        if text.lower().startswith(prefix):
            text = text[len(prefix):]
            tls = prefix == "rediss://"
    weight = 1
    parts = text.split()
    if not parts:
        raise ValueError("empty server spec")
    address = parts[0]
    for option in parts[1:]:
        name, sep, value = option.partition("=")
        if name.lower() != "weight" or not sep:
            raise ValueError(f"bad server option {option!r} in {item!r} (expected weight=N)")
        weight = _int(value, item)
    if address.startswith("["):  # [v6]:port
        host, sep, rest = address[1:].partition("]")
        if not sep:
            raise ValueError(f"bad server address {item!r}")
        port = _int(rest[1:], item) if rest.startswith(":") else DEFAULT_PORT
    else:
        host, sep, rest = address.partition(":")
        if not sep:
            port = DEFAULT_PORT
        else:
            port_text, sep, weight_text = rest.partition(":")  # host:port:weight
            port = _int(port_text, item)
            if sep:
                weight = _int(weight_text, item)
    return _checked(host, port, weight, item)._replace(tls=tls)


def _int(text: str, item: Any) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"bad number {text!r} in server spec {item!r}") from None


def _checked(host: str, port: int, weight: int, item: Any) -> ServerSpec:
    if not host:
        raise ValueError(f"missing host in server spec {item!r}")
    if not 0 < port < 65536:
        raise ValueError(f"bad port {port} in server spec {item!r}")
    if weight < 1:
        raise ValueError(f"weight must be >= 1 in server spec {item!r}")
    return ServerSpec(host, int(port), int(weight))


def _is_single_tuple(value: Any) -> bool:
    return (isinstance(value, tuple) and not isinstance(value, ServerSpec)
            and 2 <= len(value) <= 3 and isinstance(value[0], str)
            and isinstance(value[1], int))


def pool_items(value: Any, single: Tuple[type, ...] = ()) -> List[Any]:
    """The entries of a server list: a comma-separated string is split, one
    server (a spec, a tuple or an instance of ``single``) is a list of one."""
    if value is None:
        return []
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return [part for part in value.split(",") if part.strip()]
    if isinstance(value, (ServerSpec,) + single) or _is_single_tuple(value):
        return [value]
    return list(value)


def parse_servers(value: Any) -> List[ServerSpec]:
    """Normalise a server list.

    Accepts ``"h:p"``, ``"h:p weight=2"`` (or ``"h:p:2"``), ``("h", p)`` and
    ``("h", p, w)`` tuples, :class:`ServerSpec`, a comma-separated string of
    those (the ``DISTCACHE_SERVERS`` format) or any iterable of them.
    Duplicated addresses are an error.
    """
    servers = [_parse_one(item) for item in pool_items(value)]
    seen = set()
    for server in servers:
        if server.address in seen:
            raise ValueError(f"server {server.address} is listed twice")
        seen.add(server.address)
    return servers


def hash_key(key: Union[bytes, str]) -> bytes:
    """The part of ``key`` that decides placement (Redis Cluster hash tags)."""
    if isinstance(key, str):
        key = key.encode()
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            return bytes(key[start + 1:end])
    return bytes(key)


_unpack_u32 = struct.Struct("<I").unpack_from


def key_hash(key: Union[bytes, str]) -> int:
    """The 32-bit position of ``key`` on the circle (hash tags applied)."""
    if key.__class__ is not bytes or b"{" in key:  # type: ignore[operator]
        key = hash_key(key)
    return _unpack_u32(md5(key).digest())[0]


def point_name(server: ServerSpec, index: int) -> bytes:
    """libmemcached's name for a server's ``index``-th point hash."""
    # Port 0: a named shard (distcache.client.shards), placed by its name.
    if server.port == MEMCACHED_DEFAULT_PORT or server.port == 0:
        return f"{server.host}-{index}".encode()
    return f"{server.host}:{server.port}-{index}".encode()


def _f32(value: float) -> float:
    """Round to IEEE single precision, as C's ``float`` arithmetic does."""
    return struct.unpack("f", struct.pack("f", value))[0]


def _points_for(weight: int, total_weight: int, live: int) -> int:
    """libmemcached's ``pointer_per_server`` for the weighted continuum."""
    pct = _f32(_f32(weight) / _f32(total_weight))
    share = _f32(_f32(_f32(pct * 160) / 4) * _f32(live))
    return int(math.floor(_f32(share + 0.0000000001))) * 4


#: Points per server of libmemcached's unweighted ``ketama`` behaviour.
_UNWEIGHTED_POINTS = 100


class KetamaRing:
    """A ketama continuum over ``servers`` (anything :func:`parse_servers` takes).

    The default is the classic weighted ketama (libmemcached's
    ``ketama_weighted``: 160 points a server when weights are equal).
    ``weighted=False`` reproduces libmemcached's plain ``ketama`` behaviour
    with the MD5 hash (100 points a server, one per MD5) for interoperating
    with clients configured that way; it only differs while all weights are 1.
    """

    def __init__(self, servers: Any, weighted: bool = True) -> None:
        self.servers: List[ServerSpec] = parse_servers(servers)
        if not self.servers:
            raise ValueError("a ring needs at least one server")
        # libmemcached switches to the weighted continuum as soon as a
        # server has a weight above 1, whatever the behaviour asked for.
        self.weighted = weighted or any(s.weight != 1 for s in self.servers)
        total = sum(server.weight for server in self.servers)
        live = len(self.servers)
        points: List[Tuple[int, int]] = []
        for index, server in enumerate(self.servers):
            if self.weighted:
                count = _points_for(server.weight, total, live)
                for n in range(count // 4):
                    digest = md5(point_name(server, n)).digest()
                    for value in struct.unpack("<4I", digest):
                        points.append((value, index))
            else:  # libmemcached's plain "ketama" (with the MD5 hash): 100 points
                for n in range(_UNWEIGHTED_POINTS):
                    value = struct.unpack_from("<I", md5(point_name(server, n)).digest())[0]
                    points.append((value, index))
        points.sort()
        self._values: List[int] = [value for value, _ in points]
        self._owners: List[int] = [index for _, index in points]
        self._by_address: Dict[str, ServerSpec] = {s.address: s for s in self.servers}
        # Owner by bisect position; the extra last entry wraps to the first point.
        self._by_position: List[ServerSpec] = [self.servers[i] for i in self._owners]
        self._by_position.append(self._by_position[0])

    # -- lookups ---------------------------------------------------------
    def _point(self, key: Union[bytes, str]) -> int:
        position = bisect_left(self._values, key_hash(key))
        return 0 if position == len(self._values) else position

    def get_server(self, key: Union[bytes, str]) -> ServerSpec:
        """The server that owns ``key``."""
        if key.__class__ is not bytes or b"{" in key:  # type: ignore[operator]
            key = hash_key(key)
        position = bisect_left(self._values, _unpack_u32(md5(key).digest())[0])
        return self._by_position[position]

    def iter_servers(self, key: Union[bytes, str]) -> Iterator[ServerSpec]:
        """The owner of ``key``, then each other server in clockwise order.

        This is the failover order: the next server yielded is the one that
        would own the key if every server before it were removed.
        """
        owners = self._owners
        count = len(owners)
        start = self._point(key)
        wanted = len(self.servers)
        seen: set = set()
        for step in range(count):
            index = owners[(start + step) % count]
            if index not in seen:
                seen.add(index)
                yield self.servers[index]
                if len(seen) == wanted:
                    return

    # -- introspection ---------------------------------------------------
    @property
    def points(self) -> List[Tuple[int, ServerSpec]]:
        """The continuum: sorted ``(position, server)`` pairs."""
        return [(value, self.servers[index]) for value, index in zip(self._values, self._owners)]

    def shares(self) -> Dict[str, float]:
        """Fraction of the 32-bit circle each server owns, by address."""
        result = {server.address: 0.0 for server in self.servers}
        values, owners = self._values, self._owners
        previous = values[-1] - (1 << 32)
        for value, index in zip(values, owners):
            result[self.servers[index].address] += (value - previous) / float(1 << 32)
            previous = value
        return result

    def server(self, address: str) -> Optional[ServerSpec]:
        """The spec of the server at ``"host:port"``, or None."""
        return self._by_address.get(address)

    def __len__(self) -> int:
        return len(self.servers)

    def __contains__(self, server: object) -> bool:
        address = server.address if isinstance(server, ServerSpec) else str(server)
        return address in self._by_address

    def __repr__(self) -> str:
        return f"KetamaRing({[str(s) for s in self.servers]!r})"
