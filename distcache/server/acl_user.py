"""ACL users: flags, password hashes and selectors, their rules (ACL SETUSER's
modifiers) and description; the default user. Part of the ACL (acl.py)."""
from __future__ import annotations

import hashlib
import hmac
from typing import Any, Dict, List, Optional

from .acl_selector import RuleError, Selector, _text

#: User flags in Redis's order (GETUSER and LIST show them so).
_USER_FLAGS = ("on", "off", "nopass", "skip-sanitize-payload", "sanitize-payload")


class User:
    """A user: flags, password hashes and selectors (the root one first)."""

    __slots__ = ("name", "flags", "passwords", "selectors", "full")

    def __init__(self, name: bytes, pubsub_default: bool = False) -> None:
        self.name = name
        self.flags = {"off"}
        self.passwords: Dict[str, None] = {}  # SHA-256 hex digests, in the order added
        self.selectors = [Selector(allchannels=pubsub_default)]
        self.full = False

    @property
    def root(self) -> Selector:
        return self.selectors[0]

    @property
    def enabled(self) -> bool:
        return "on" in self.flags

    def copy(self) -> "User":
        new = User(self.name)
        new.flags = set(self.flags)
        new.passwords = dict(self.passwords)
        new.selectors = [s.copy() for s in self.selectors]
        new.full = self.full
        return new

    def assign(self, other: "User") -> None:
        """Take ``other``'s rules (clients authenticated as this user keep it)."""
        self.flags, self.passwords, self.selectors = other.flags, other.passwords, \
            other.selectors
        self.refresh()

    def refresh(self) -> None:
        root = self.root
        self.full = (len(self.selectors) == 1 and root.allkeys and root.allchannels
                     and root.allcommands)

    def apply(self, op: bytes, pubsub_default: bool) -> None:
        """One ACL SETUSER modifier (Redis's ACLSetUser); raises RuleError."""
        lower = op.lower()
        if lower == b"on":
            self.flags = (self.flags - {"off"}) | {"on"}
        elif lower == b"off":
            self.flags = (self.flags - {"on"}) | {"off"}
        elif lower == b"skip-sanitize-payload":
            self.flags = (self.flags - {"sanitize-payload"}) | {"skip-sanitize-payload"}
        elif lower == b"sanitize-payload":
            self.flags = (self.flags - {"skip-sanitize-payload"}) | {"sanitize-payload"}
        elif lower == b"nopass":
            self.flags.add("nopass")
            self.passwords = {}
        elif lower == b"resetpass":
            self.flags.discard("nopass")
            self.passwords = {}
        elif op[:1] in (b">", b"#"):
            digest = hash_password(op[1:]) if op[:1] == b">" else _valid_hash(op[1:])
            self.passwords[digest] = None
            self.flags.discard("nopass")
        elif op[:1] in (b"<", b"!"):
            digest = hash_password(op[1:]) if op[:1] == b"<" else _valid_hash(op[1:])
            if digest not in self.passwords:
                raise RuleError("ENODEV")
            del self.passwords[digest]
        elif lower == b"reset":
            for rule in (b"resetpass", b"resetkeys", b"resetchannels"):
                self.apply(rule, pubsub_default)
            if pubsub_default:
                self.apply(b"allchannels", pubsub_default)
            for rule in (b"off", b"sanitize-payload", b"clearselectors", b"-@all"):
                self.apply(rule, pubsub_default)
        elif lower == b"clearselectors":
            del self.selectors[1:]
        elif op[:1] == b"(" and op[-1:] == b")":
            selector = Selector(allchannels=pubsub_default)
            for rule in op[1:-1].split():
                selector.apply(rule)
            self.selectors.append(selector)
        else:
            self.root.apply(op)

    def describe(self) -> str:
        """The user as ACL LIST writes it (without ``user <name>``)."""
        parts = [flag for flag in _USER_FLAGS if flag in self.flags]
        parts += ["#" + digest for digest in self.passwords]
        text = " ".join(parts + [self.root.describe()])
        for selector in self.selectors[1:]:
            text += f" ({selector.describe()})"
        return text

    def reply(self) -> Dict[bytes, Any]:
        """ACL GETUSER's map."""
        from ..protocol import RespSet
        out: Dict[bytes, Any] = {
            b"flags": RespSet(flag.encode() for flag in _USER_FLAGS if flag in self.flags),
            b"passwords": [digest.encode() for digest in self.passwords]}
        out.update(self.root.reply())
        out[b"selectors"] = [s.reply() for s in self.selectors[1:]]
        return out

    def check_password(self, password: bytes) -> bool:
        if "nopass" in self.flags:
            return True
        digest = hash_password(password)
        return any(hmac.compare_digest(digest, known) for known in self.passwords)


def _initial_default() -> User:
    """Redis's default user: ``on nopass ~* &* +@all``."""
    default = User(b"default")
    for rule in (b"+@all", b"~*", b"&*", b"on", b"nopass"):
        default.apply(rule, False)
    default.refresh()
    return default


def hash_password(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


def _valid_hash(text: bytes) -> str:
    if len(text) != 64 or any(ch not in b"0123456789abcdef" for ch in text):
        raise RuleError("EBADMSG")
    return text.decode()


def merge_selector_args(ops: List[bytes]) -> List[bytes]:
    """Join a selector given over several arguments (``(~a`` ``+get)``) into one."""
    merged: List[bytes] = []
    pending: Optional[List[bytes]] = None
    for op in ops:
        if pending is None:
            if op[:1] == b"(" and op[-1:] != b")":
                pending = [op]
            else:
                merged.append(op)
        else:
            pending.append(op)
            if op[-1:] == b")":
                merged.append(b" ".join(pending))
                pending = None
    if pending is not None:
        raise ValueError("Unmatched parenthesis in acl selector starting at "
                         f"'{_text(pending[0])}'.")
    return merged

