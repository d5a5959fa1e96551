"""The one exception every malformed RDB input raises."""
from __future__ import annotations


class RdbError(ValueError):
    """Malformed or unsupported RDB data, at ``offset`` bytes into the input."""

    def __init__(self, reason: str, offset: int = -1) -> None:
        self.reason = reason
        self.offset = offset
        super().__init__(f"{reason} at offset {offset}" if offset >= 0 else reason)


class RdbUnsupported(RdbError):
    """Valid RDB data of a kind distcache does not hold yet (streams, modules)."""
