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

Modules: acl_selector.py (the command universe, one selector's rules, check and
description), acl_user.py (users and their modifiers), acl_log.py (ACL LOG
entries); this one holds the server's users, the checks' errors and the ACL file.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

from .acl_log import LogEntry
# The model is split by responsibility; its names are importable from here.
from .acl_selector import (DENIED_AUTH, DENIED_CHANNEL, DENIED_CMD, DENIED_KEY,  # noqa: F401
                           OK, READ, WRITE, _ERRORS, RuleError, Selector, _bytes, _has_spaces,
                           _text, universe)
from .acl_user import User, _initial_default, hash_password, merge_selector_args  # noqa: F401
from .commands.table import CommandSpec

if TYPE_CHECKING:
    from .app import CacheServer


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
