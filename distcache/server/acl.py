"""ACL: users, their selectors and rules, permission checks, the ACL log, the ACL file.

Redis 7.0's model (acl.c). A user has flags (on/off, nopass), SHA-256 password
hashes and selectors: the root one plus any ``(...)`` ones. A selector allows
commands (one bit per command of the table, plus first arguments), key
patterns (``~`` read and write, ``%R~``/``%W~`` one of them) and channel
patterns. A command runs when any selector allows it with all its keys and
channels. Categories (``+@read``) are the table's ``acl_categories`` column,
and a command's keys come from the table's key specs, so nothing here lists
commands by hand.

The default user (``on nopass ~* &* +@all``, or ``requirepass``'s password) is
*full*: its clients stay unrestricted and the dispatcher never calls
:func:`check`; only a limited user's clients pay for the check, in ``_gate``.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from .commands.table import ACL_CATEGORIES, COMMANDS, CommandSpec, keys_with_access
from .glob import glob_match

if TYPE_CHECKING:
    from .app import CacheServer

OK, DENIED_CMD, DENIED_KEY, DENIED_AUTH, DENIED_CHANNEL = range(5)
READ, WRITE = 1, 2
_REASONS = {DENIED_CMD: "command", DENIED_KEY: "key", DENIED_AUTH: "auth",
            DENIED_CHANNEL: "channel"}
#: Commands that name channels: (first argument, last (negative: from the end), patterns?).
_CHANNEL_ARGS = {"subscribe": (1, -1, False), "ssubscribe": (1, -1, False),
                 "psubscribe": (1, -1, True), "publish": (1, 1, False),
                 "spublish": (1, 1, False)}
#: Entries closer in time than this merge into one (Redis's ACL_LOG_GROUPING_MAX_TIME_DELTA).
_LOG_GROUPING_SECONDS = 60.0

_ERRORS = {
    "ENOENT": "Unknown command or category name in ACL",
    "EINVAL": "Syntax error",
    "EEXIST": "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and "
              "does not have any effect. Try 'resetkeys' to start with an empty list of "
              "patterns",
    "EISDIR": "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid "
              "and does not have any effect. Try 'resetchannels' to start with an empty list "
              "of channels",
    "ENODEV": "The password you are trying to remove from the user does not exist",
    "EBADMSG": "The password hash must be exactly 64 characters and contain only lowercase "
               "hexadecimal characters",
    "EALREADY": "Duplicate user found. A user can only be defined once in config files",
    "ECHILD": "Allowing first-arg of a subcommand is not supported",
}


class RuleError(Exception):
    """A modifier that ACL SETUSER (or a user line) rejects; ``str`` is Redis's reason."""

    def __init__(self, code: str) -> None:
        super().__init__(_ERRORS[code])


# -- the command universe, from the table --------------------------------------------

class _Universe:
    """Every command and subcommand of the table, and each category's bits."""

    def __init__(self) -> None:
        self.top: List[CommandSpec] = list(COMMANDS.values())
        self.subs: Dict[int, List[CommandSpec]] = {}
        self.all_bits = 0
        for spec in self.top:
            subs = sorted({id(s): s for s in spec.subcommands.values()}.values(),
                          key=lambda s: s.name)
            self.subs[spec.id] = subs
            self.all_bits |= 1 << spec.id
            for sub in subs:
                self.all_bits |= 1 << sub.id
        #: category -> the bits ``+@category`` sets (a parent in it takes its subcommands).
        self.category_bits: Dict[str, int] = {}
        for category in ACL_CATEGORIES:
            bits = 0
            for spec in self.top:
                if category in spec.acl_categories:
                    bits |= self.family_bits(spec)
                for sub in self.subs[spec.id]:
                    if category in sub.acl_categories:
                        bits |= 1 << sub.id
            self.category_bits[category] = bits

    def family_bits(self, spec: CommandSpec) -> int:
        """A command's bit and its subcommands' (Redis's ACLChangeSelectorPerm)."""
        bits = 1 << spec.id
        for sub in self.subs.get(spec.id, ()):
            bits |= 1 << sub.id
        return bits

    def lookup(self, name: str) -> Optional[CommandSpec]:
        """``get`` or ``config|get``; None when unknown."""
        parent, bar, sub = name.lower().partition("|")
        spec = COMMANDS.get(parent)
        if spec is None or not bar:
            return spec
        if "|" in sub:
            return None
        return next((s for s in self.subs[spec.id] if s.name == sub), None)


_universe: Optional[_Universe] = None


def universe() -> _Universe:
    global _universe
    if _universe is None:
        _universe = _Universe()
    return _universe


# -- selectors and users -------------------------------------------------------------

class Selector:
    """One set of command, key and channel permissions."""

    __slots__ = ("allkeys", "allchannels", "allcommands", "allowed", "future", "firstargs",
                 "keys", "channels")

    def __init__(self, allchannels: bool = False) -> None:
        self.allkeys = False
        self.allchannels = allchannels
        self.allcommands = False
        self.allowed = 0  # one bit per command id
        self.future = False  # commands added later are allowed (+@all)
        # Dicts, in the order given: adding a rule stays O(1) however many there are.
        self.firstargs: Dict[int, Dict[bytes, bytes]] = {}  # command id: {lower: as given}
        self.keys: Dict[bytes, int] = {}  # pattern: READ|WRITE
        self.channels: Dict[bytes, None] = {}

    def copy(self) -> "Selector":
        new = Selector()
        new.allkeys, new.allchannels, new.allcommands = \
            self.allkeys, self.allchannels, self.allcommands
        new.allowed, new.future = self.allowed, self.future
        new.firstargs = {k: dict(v) for k, v in self.firstargs.items()}
        new.keys = dict(self.keys)
        new.channels = dict(self.channels)
        return new

    # -- rules ---------------------------------------------------------------------

    def _change(self, bits: int, allow: bool) -> None:
        if allow:
            self.allowed |= bits
        else:
            if bits:
                self.allcommands = False
            self.allowed &= ~bits
        for cid in [cid for cid in self.firstargs if bits >> cid & 1]:
            del self.firstargs[cid]

    def apply(self, op: bytes) -> None:
        """One selector rule (Redis's ACLSetSelector); raises RuleError."""
        lower = op.lower()
        u = universe()
        if lower == b"allkeys" or op == b"~*":
            self.allkeys = True
            self.keys = {}
        elif lower == b"resetkeys":
            self.allkeys = False
            self.keys = {}
        elif lower == b"allchannels" or op == b"&*":
            self.allchannels = True
            self.channels = {}
        elif lower == b"resetchannels":
            self.allchannels = False
            self.channels = {}
        elif lower in (b"allcommands", b"+@all"):
            self.allcommands = True
            self.future = True
            self.allowed = u.all_bits
            self.firstargs = {}
        elif lower in (b"nocommands", b"-@all"):
            self.allcommands = False
            self.future = False
            self.allowed = 0
            self.firstargs = {}
        elif op[:1] in (b"~", b"%"):
            self._add_key_pattern(op)
        elif op[:1] == b"&":
            if self.allchannels:
                raise RuleError("EISDIR")
            if _has_spaces(op[1:]):
                raise RuleError("EINVAL")
            self.channels[op[1:]] = None
        elif op[:2] in (b"+@", b"-@"):
            bits = u.category_bits.get(op[2:].decode("utf-8", "replace").lower())
            if bits is None:
                raise RuleError("ENOENT")
            self._change(bits, op[:1] == b"+")
        elif op[:1] == b"+":
            self._allow_command(_text(op[1:]))
        elif op[:1] == b"-":
            spec = u.lookup(_text(op[1:]))
            if spec is None:
                raise RuleError("ENOENT")
            self._change(u.family_bits(spec), False)
        else:
            raise RuleError("EINVAL")

    def _add_key_pattern(self, op: bytes) -> None:
        if self.allkeys:
            raise RuleError("EEXIST")
        offset = 1
        if op[:1] == b"%":
            flags = 0
            while offset < len(op):
                ch = op[offset:offset + 1].upper()
                offset += 1
                if ch == b"R" and not flags & READ:
                    flags |= READ
                elif ch == b"W" and not flags & WRITE:
                    flags |= WRITE
                elif ch == b"~":
                    break
                else:
                    raise RuleError("EINVAL")
            if not flags:
                raise RuleError("EINVAL")
        else:
            flags = READ | WRITE
        pattern = op[offset:]
        if _has_spaces(pattern):
            raise RuleError("EINVAL")
        self.keys[pattern] = self.keys.get(pattern, 0) | flags

    def _allow_command(self, name: str) -> None:
        u = universe()
        if "|" not in name:
            spec = u.lookup(name)
            if spec is None:
                raise RuleError("ENOENT")
            self._change(u.family_bits(spec), True)
            return
        parent_name, _, sub = name.partition("|")
        parent = u.lookup(parent_name)
        if parent is None:
            raise RuleError("ENOENT")
        if not sub:
            raise RuleError("EINVAL")
        if parent.handler is None or parent.subcommands:  # a container: a real subcommand
            if "|" in sub:
                raise RuleError("ECHILD")
            spec = u.lookup(name)
            if spec is None:
                raise RuleError("ENOENT")
            self._change(u.family_bits(spec), True)
        else:  # SELECT|0: the first-argument mechanism Redis keeps for compatibility
            arg = _bytes(sub)
            self.firstargs.setdefault(parent.id, {}).setdefault(arg.lower(), arg)

    # -- checks --------------------------------------------------------------------

    def check(self, spec: CommandSpec, args: List[bytes]) -> Tuple[int, int]:
        """(OK or the denial, the argument index of a denied key or channel)."""
        if not self.allcommands and not spec.no_auth and not self.allowed >> spec.id & 1:
            allowed = self.firstargs.get(spec.id)
            index = 2 if spec.parent else 1
            if not allowed or len(args) <= index:
                return DENIED_CMD, -1
            if args[index].lower() not in allowed:
                return DENIED_CMD, -1
        if not self.allkeys and spec.key_specs:
            for index, access in keys_with_access(spec, args):
                if not self.key_allowed(args[index], access):
                    return DENIED_KEY, index
        if not self.allchannels:
            channel_args = _CHANNEL_ARGS.get(spec.fullname)
            if channel_args is not None:
                first, last, is_pattern = channel_args
                stop = last if last >= 0 else len(args) + last
                for index in range(first, stop + 1):
                    if not self.channel_allowed(args[index], is_pattern):
                        return DENIED_CHANNEL, index
        return OK, 0

    def key_allowed(self, key: bytes, access: int) -> bool:
        for pattern, flags in self.keys.items():
            if flags & access == access and glob_match(pattern, key):
                return True
        return False

    def channel_allowed(self, channel: bytes, is_pattern: bool) -> bool:
        """A pattern (PSUBSCRIBE) must be listed literally; a channel must match one."""
        for pattern in self.channels:
            if (pattern == channel) if is_pattern else glob_match(pattern, channel):
                return True
        return False

    # -- descriptions --------------------------------------------------------------

    def describe_keys(self) -> List[str]:
        if self.allkeys:
            return ["~*"]
        return [_KEY_PREFIX[flags] + _text(pattern) for pattern, flags in self.keys.items()]

    def describe_channels(self) -> List[str]:
        if self.allchannels:
            return ["&*"]
        return ["&" + _text(pattern) for pattern in self.channels]

    def describe_commands(self) -> str:
        """Redis 7.0's best-fit description: ``+@all``/``-@all``, then the categories
        that cover more than they miss, then single commands and first arguments."""
        u = universe()
        additive = not self.future
        rules = ["-@all" if additive else "+@all"]
        fake = 0 if additive else u.all_bits
        temp = self.allowed
        applied = set()
        while True:
            best = None
            min_diff, max_same = 1 << 62, 0
            for category in ACL_CATEGORIES:
                if category in applied:
                    continue
                on = off = 0
                for spec in u.top:
                    if category in spec.acl_categories:
                        if temp >> spec.id & 1:
                            on += 1
                        else:
                            off += 1
                diff, same = (off, on) if additive else (on, off)
                if same > diff and (diff < min_diff or (diff == min_diff and same > max_same)):
                    best, min_diff, max_same = category, diff, same
            if best is None:
                break
            bits = u.category_bits[best]
            fake = fake | bits if additive else fake & ~bits
            temp = temp & ~bits if additive else temp | bits
            rules.append(("+@" if additive else "-@") + best)
            applied.add(best)
        for spec in u.top:
            for one in [spec] + u.subs[spec.id]:
                bit = self.allowed >> one.id & 1
                if bit != fake >> one.id & 1:
                    rules.append(("+" if bit else "-") + one.fullname)
                    family = u.family_bits(one)
                    fake = fake | family if bit else fake & ~family
            if not self.allowed >> spec.id & 1:
                rules.extend(f"+{spec.fullname}|{_text(arg)}"
                             for arg in self.firstargs.get(spec.id, {}).values())
        return " ".join(rules)

    def describe(self) -> str:
        """The selector as ACL LIST writes it."""
        parts = self.describe_keys()
        if not self.allchannels:
            parts.append("resetchannels")
        parts += self.describe_channels()
        parts.append(self.describe_commands())
        return " ".join(parts)

    def reply(self) -> Dict[bytes, Any]:
        """The selector's ACL GETUSER fields."""
        return {b"commands": _bytes(self.describe_commands()),
                b"keys": _bytes(" ".join(self.describe_keys())),
                b"channels": _bytes(" ".join(self.describe_channels()))}


_KEY_PREFIX = {READ | WRITE: "~", READ: "%R~", WRITE: "%W~"}


def _has_spaces(value: bytes) -> bool:
    """Spaces or NULs: a user name or pattern that the ACL file could not hold."""
    return any(ch in b" \t\r\n\v\f\0" for ch in value)


def _text(value: bytes) -> str:
    """Bytes as text and back (:func:`_bytes`) unchanged, whatever they hold."""
    return value.decode("utf-8", "surrogateescape")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


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


def noperm_text(result: int, spec: CommandSpec) -> str:
    """The error a denied command gets (Redis's processCommand)."""
    if result == DENIED_CMD:
        return f"NOPERM this user has no permissions to run the '{spec.fullname}' command"
    what = "keys" if result == DENIED_KEY else "channels"
    return f"NOPERM this user has no permissions to access one of the {what} used as arguments"


def exec_denied_text(result: int) -> str:
    """The error of a queued command that EXEC finds denied (the rules changed)."""
    reason = {DENIED_CMD: "no permission to execute the command or subcommand",
              DENIED_KEY: "no permission to touch the specified keys",
              DENIED_CHANNEL: "no permission to access one of the channels used as "
                              "arguments"}[result]
    return ("NOPERM ACLs rules changed between the moment the transaction was accumulated "
            f"and the EXEC call. This command is no longer allowed for the following reason: "
            f"{reason}")


def dryrun_text(result: int, spec: CommandSpec, args: List[bytes], index: int) -> str:
    """ACL DRYRUN's verdict for a denied call."""
    if result == DENIED_CMD:
        return f"This user has no permissions to run the '{spec.fullname}' command"
    what = "key" if result == DENIED_KEY else "channel"
    return f"This user has no permissions to access the '{_text(args[index])}' {what}"


# -- the server's users, log and file --------------------------------------------------

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


class ACL:
    """The server's users (by name), the ACL log, and the ACL file."""

    def __init__(self, server: "CacheServer") -> None:
        self.server = server
        self.users: Dict[bytes, User] = {}
        self.log: List[LogEntry] = []  # newest first
        self.default = self.users[b"default"] = _initial_default()
        self.set_requirepass(server.config["requirepass"])

    @property
    def pubsub_default(self) -> bool:
        return self.server.config["acl-pubsub-default"] == "allchannels"

    def set_requirepass(self, password: str) -> None:
        """``requirepass`` is the default user's only password ("" makes it nopass)."""
        self.default.apply(b"resetpass", False)
        self.default.apply(b">" + password.encode() if password else b"nopass", False)

    def set_user(self, name: bytes, ops: List[bytes]) -> User:
        """ACL SETUSER: all modifiers or none (raises ValueError with Redis's text)."""
        if _has_spaces(name):
            raise ValueError("Usernames can't contain spaces or null characters")
        ops = merge_selector_args(ops)
        existing = self.users.get(name)
        pubsub_default = self.pubsub_default
        user = existing.copy() if existing else User(name, pubsub_default)
        for op in ops:
            try:
                user.apply(op, pubsub_default)
            except RuleError as exc:
                raise ValueError(f"Error in ACL SETUSER modifier '{_text(op)}': {exc}") \
                    from None
        user.refresh()
        if existing is None:
            self.users[name] = user
            return user
        existing.assign(user)
        self.user_changed(existing)
        return existing

    def user_changed(self, user: User) -> None:
        """Its clients re-derive ``restricted``; subscribers to channels it may no longer
        use are disconnected, as Redis's ACLKillPubsubClientsIfNeeded."""
        for client in list(self.server.clients.values()):
            if client.user is not user:
                continue
            client.update_restricted()
            if user.root.allchannels or not (client.channels or client.patterns
                                             or client.shard_channels):
                continue
            if not self._may_keep_subscriptions(user, client):
                client.close_now()

    @staticmethod
    def _may_keep_subscriptions(user: User, client: Any) -> bool:
        def allowed(channel: bytes, is_pattern: bool) -> bool:
            return any(s.allchannels or s.channel_allowed(channel, is_pattern)
                       for s in user.selectors)
        return (all(allowed(ch, False) for ch in client.channels | client.shard_channels)
                and all(allowed(p, True) for p in client.patterns))

    def kill_clients(self, user: User, current: Any = None) -> int:
        """Disconnect every client authenticated as ``user`` (the current one after its
        reply)."""
        killed = 0
        for client in list(self.server.clients.values()):
            if client.user is user:
                killed += 1
                if client is current:
                    client.closing = True
                else:
                    client.close_now()
        return killed

    def authenticate(self, client: Any, name: bytes, password: bytes,
                     command: bytes = b"AUTH") -> bool:
        """AUTH/HELLO: on success the client is that user; a failure is logged (with
        the command name as the client typed it, as Redis)."""
        user = self.users.get(name)
        if user is None or not user.enabled or not user.check_password(password):
            self.add_log(client, DENIED_AUTH, command, name)
            return False
        client.user = user
        client.authenticated = True
        client.update_restricted()
        return True

    # -- checks ----------------------------------------------------------------------

    @staticmethod
    def check(user: User, spec: CommandSpec, args: List[bytes]) -> Tuple[int, int]:
        """Redis's ACLCheckAllUserCommandPerm: OK when any selector allows the call,
        else the most relevant denial (command < key < channel; the last position)."""
        relevant, last_index, index = DENIED_CMD, -1, -1
        for selector in user.selectors:
            result, found = selector.check(spec, args)
            if result == OK:
                return OK, 0
            if found >= 0:
                index = found
            if result > relevant or (result == relevant and index > last_index):
                relevant, last_index = result, index
        return relevant, last_index

    def add_log(self, client: Any, reason: int, obj: bytes, username: bytes) -> None:
        context = "multi" if client.in_multi else "toplevel"
        entry = LogEntry(reason, context, obj, username, client.info_line())
        for i, old in enumerate(self.log):
            if old.similar(entry):
                old.count += 1
                old.created = entry.created
                old.client_info = entry.client_info
                self.log.insert(0, self.log.pop(i))
                return
        self.log.insert(0, entry)
        del self.log[self.server.config["acllog-max-len"]:]

    # -- the ACL file ------------------------------------------------------------------

    def load_lines(self, lines: List[str], source: str) -> Dict[bytes, User]:
        """Users from ``user <name> <rules...>`` lines; raises ValueError naming the line."""
        import shlex
        users: Dict[bytes, User] = {}
        for lineno, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                words = shlex.split(line)
            except ValueError:
                raise ValueError(f"{source}:{lineno}: unbalanced quotes") from None
            if words[0] != "user" or len(words) < 2:
                raise ValueError(f"{source}:{lineno}: should start with user keyword")
            name = words[1].encode()
            if name in users:
                raise ValueError(f"{source}:{lineno}: {_ERRORS['EALREADY']}")
            user = User(name, self.pubsub_default)
            try:
                for op in merge_selector_args([w.encode("utf-8", "surrogateescape")
                                               for w in words[2:]]):
                    user.apply(op, self.pubsub_default)
            except (RuleError, ValueError) as exc:
                raise ValueError(f"{source}:{lineno}: {exc}") from None
            user.refresh()
            users[name] = user
        return users

    def install_users(self, users: Dict[bytes, User], current: Any = None) -> None:
        """Replace every user with ``users``. As Redis's ACL LOAD, the clients of every
        user but default are disconnected (their users are gone, even if redefined);
        default keeps its clients and takes the new rules (or the initial ones)."""
        if b"default" not in users:
            users[b"default"] = _initial_default()
        old, self.users = self.users, {}
        for name, user in old.items():
            if name != b"default":
                self.kill_clients(user, current)
        self.default.assign(users.pop(b"default"))
        self.users[b"default"] = self.default
        self.users.update(users)
        self.user_changed(self.default)

    def load_file(self, path: str, current: Any = None) -> None:
        """ACL LOAD: all users of the file, or none (ValueError)."""
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                lines = fh.read().splitlines()
        except OSError as exc:
            raise ValueError(f"Error loading ACLs, opening file '{path}': "
                             f"{exc.strerror}") from None
        self.install_users(self.load_lines(lines, path), current)

    def config_lines(self) -> List[str]:
        """Every user but an untouched default, as ``user`` directive values."""
        lines = []
        for name in sorted(self.users):
            text = self.users[name].describe()
            if name != b"default" or text != _initial_default().describe():
                lines.append(f"{_text(name)} {text}")
        return lines

    def save_file(self, path: str) -> None:
        """ACL SAVE: every user, written to a temp file then renamed over ``path``."""
        text = "".join(f"user {_text(name)} {self.users[name].describe()}\n"
                       for name in sorted(self.users))
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def install(server: "CacheServer") -> ACL:
    """Create the server's users from ``user`` lines and ``aclfile``, as Redis at startup."""
    from ..config import ConfigError
    acl = ACL(server)
    config = server.config
    lines = config.users
    if lines and config["aclfile"]:
        raise ConfigError("Configuring Redis with users defined in redis.conf and at the same "
                         "setting an ACL file path is invalid. This setup is very likely to "
                         "lead to configuration errors and security holes, please define "
                         "either an ACL file or declare users directly in your redis.conf, "
                         "but not both.")
    try:
        if lines:
            acl.install_users(acl.load_lines(["user " + line for line in lines], "config"))
        elif config["aclfile"]:
            acl.load_file(config["aclfile"])
    except ValueError as exc:
        raise ConfigError(f"Aborting startup because of ACL errors: {exc}") from None
    return acl
