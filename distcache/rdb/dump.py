"""DUMP payloads: one encoded value, the 2-byte RDB version, and a CRC64.

Redis 7.0 layout: ``type, object, version (little-endian uint16), crc64 of
all before (little-endian uint64)``.
"""
from __future__ import annotations

import io
from typing import Any, Tuple, Union

from .codec import RDB_VERSION, LzfBudget, RdbReader, encode_object
from .crc64 import crc64
from .errors import RdbError

#: The shortest payload Redis looks into: its trailer.
_TRAILER = 10


class PayloadVersionError(RdbError):
    """A payload too short, from a newer RDB version, or with a wrong checksum:
    Redis's "DUMP payload version or checksum are wrong"."""


def dump_payload(kind: str, value: Any, compress: Union[bool, LzfBudget] = True) -> bytes:
    """The DUMP serialization of a value: LZF within a fresh :class:`LzfBudget`
    (``compress`` True) or the one given (MIGRATE's keys share one)."""
    rdb_type, body = encode_object(kind, value, LzfBudget() if compress is True else compress)
    data = bytes((rdb_type,)) + body + RDB_VERSION.to_bytes(2, "little")
    return data + crc64(data).to_bytes(8, "little")


def verify_payload(payload: bytes, checksum: bool = True) -> None:
    """Redis's verifyDumpPayload: the version must be ours or older, the CRC
    must match (unless ``checksum`` is off)."""
    if len(payload) < _TRAILER:
        raise PayloadVersionError("payload shorter than its trailer", 0)
    version = int.from_bytes(payload[-10:-8], "little")
    if version > RDB_VERSION:
        raise PayloadVersionError(f"RDB version {version} is newer than {RDB_VERSION}",
                                  len(payload) - 10)
    if not checksum:
        return
    stored = int.from_bytes(payload[-8:], "little")
    if stored != crc64(memoryview(payload)[:-8]):
        raise PayloadVersionError("bad checksum", len(payload) - 8)


def load_payload(payload: bytes, checksum: bool = True) -> Tuple[str, Any]:
    """(kind, value) of a DUMP payload; PayloadVersionError for the trailer,
    RdbError (RdbEmptyKey, RdbUnsupported) for the value.

    As in Redis (restoreCommand reads from a buffer over the whole payload),
    the value may run into the trailer's bytes and need not end where the
    trailer starts: the CRC already vouches for them, and a payload Redis
    accepts must restore here too."""
    verify_payload(payload, checksum)
    reader = RdbReader(io.BytesIO(payload), len(payload))
    rdb_type = reader.byte()
    return reader.value(rdb_type)
