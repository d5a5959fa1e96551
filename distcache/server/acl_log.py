"""ACL LOG entries: denials and failed AUTHs, similar ones merged. Part of the
ACL (acl.py), which keeps the log."""
from __future__ import annotations

import time
from typing import Any, Dict

from .acl_selector import DENIED_AUTH, DENIED_CHANNEL, DENIED_CMD, DENIED_KEY

_REASONS = {DENIED_CMD: "command", DENIED_KEY: "key", DENIED_AUTH: "auth",
            DENIED_CHANNEL: "channel"}
#: Entries closer in time than this merge into one (Redis's ACL_LOG_GROUPING_MAX_TIME_DELTA).
_LOG_GROUPING_SECONDS = 60.0


class LogEntry:
    __slots__ = ("count", "reason", "context", "object", "username", "created", "client_info")

    def __init__(self, reason: int, context: str, obj: bytes, username: bytes,
                 client_info: str) -> None:
        self.count = 1
        self.reason = reason
        self.context = context
        self.object = obj
        self.username = username
        self.created = time.time()
        self.client_info = client_info

    def similar(self, other: "LogEntry") -> bool:
        return (self.reason == other.reason and self.context == other.context
                and self.object == other.object and self.username == other.username
                and other.created - self.created < _LOG_GROUPING_SECONDS)

    def reply(self, now: float) -> Dict[bytes, Any]:
        return {b"count": self.count, b"reason": _REASONS[self.reason].encode(),
                b"context": self.context.encode(), b"object": self.object,
                b"username": self.username,
                b"age-seconds": round(now - self.created, 3),
                b"client-info": self.client_info.encode()}

