"""ACL selectors: the command universe (from the table), one selector's rules,
its permission check and its description (ACL LIST / GETUSER).

Part of the ACL (acl.py): a user (acl_user.py) holds a root selector and any
``(...)`` ones.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from .commands.table import ACL_CATEGORIES, COMMANDS, CommandSpec, keys_with_access
from .glob import compile_glob

OK, DENIED_CMD, DENIED_KEY, DENIED_AUTH, DENIED_CHANNEL = range(5)
READ, WRITE = 1, 2
#: Commands that name channels: (first argument, last (negative: from the end), patterns?).
_CHANNEL_ARGS = {"subscribe": (1, -1, False), "ssubscribe": (1, -1, False),
                 "psubscribe": (1, -1, True), "publish": (1, 1, False),
                 "spublish": (1, 1, False)}

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

class Selector:
    """One set of command, key and channel permissions."""

    __slots__ = ("allkeys", "allchannels", "allcommands", "allowed", "future", "firstargs",
                 "keys", "channels", "_matchers")

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
        # pattern: compiled glob. glob_match's cache holds 256 patterns: a user with
        # 1,000 key patterns recompiled every one per key, 120 ms a denied GET
        # (redis-server: 9 us).
        self._matchers: Dict[bytes, Callable[[bytes], bool]] = {}

    def _matcher(self, pattern: bytes) -> Callable[[bytes], bool]:
        match = self._matchers.get(pattern)
        if match is None:
            if len(self._matchers) > 2 * (len(self.keys) + len(self.channels)):
                self._matchers.clear()  # patterns since removed
            match = self._matchers[pattern] = compile_glob(pattern)
        return match

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
            if flags & access == access and self._matcher(pattern)(key):
                return True
        return False

    def channel_allowed(self, channel: bytes, is_pattern: bool) -> bool:
        """A pattern (PSUBSCRIBE) must be listed literally; a channel must match one."""
        for pattern in self.channels:
            if (pattern == channel) if is_pattern else self._matcher(pattern)(channel):
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

