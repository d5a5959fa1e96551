"""The RDB codec: Redis 7.0's serialization, streamed, for every user of it.

- :mod:`.codec` -- lengths, strings and value encodings over a stream
  (``RdbReader``, ``RdbWriter``, ``encode_object``);
- :mod:`.dump` -- DUMP/RESTORE payloads;
- :mod:`.file` -- the RDB file frame (``RdbFileReader``, ``RdbFileWriter``);
- :mod:`.packed` -- listpack, ziplist, intset, zipmap; :mod:`.lzf`; :mod:`.crc64`.

Every malformed input raises :class:`RdbError` (``offset``, ``reason``).
"""
from .codec import RDB_VERSION, Limits, RdbEmptyKey, RdbReader, RdbWriter, encode_object
from .crc64 import crc64
from .dump import PayloadVersionError, dump_payload, load_payload, verify_payload
from .errors import RdbError, RdbUnsupported
from .file import RdbEntry, RdbFileReader, RdbFileWriter

__all__ = ["RDB_VERSION", "Limits", "RdbEmptyKey", "RdbReader", "RdbWriter", "encode_object",
           "crc64", "PayloadVersionError", "dump_payload", "load_payload", "verify_payload",
           "RdbError", "RdbUnsupported", "RdbEntry", "RdbFileReader", "RdbFileWriter"]
