"""The ACL command: users (SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI), categories
(CAT), passwords (GENPASS), the log (LOG), checks (DRYRUN) and the file (SAVE, LOAD).

The model and the checks are in ``server/acl.py``; these are thin handlers.
"""
from __future__ import annotations

import secrets
import time
from typing import Any, List

from ...protocol import OK
from .. import acl as acl_mod
from ..errors import CommandError, NOT_INTEGER, wrong_arity
from .args import to_int
from .table import ACL_CATEGORIES, command, container, help_reply

container("acl", -2, "", group="server", summary="A container for Access List Control "
                                                   "commands.", since="6.0.0")
_SUB = dict(parent="acl", group="server", since="6.0.0", complexity="O(N)")
_ADMIN = "admin noscript loading stale"


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


@command("setuser", -3, _ADMIN, **_SUB)
def acl_setuser(c: Any, args: List[bytes]) -> Any:
    """Create or modify a user with the specified attributes."""
    try:
        c.server.acl.set_user(args[2], args[3:])
    except ValueError as exc:
        raise CommandError(f"ERR {exc}") from None
    return OK


@command("getuser", 3, _ADMIN, **_SUB)
def acl_getuser(c: Any, args: List[bytes]) -> Any:
    """A user's flags, password hashes, commands, keys, channels and selectors."""
    user = c.server.acl.users.get(args[2])
    return user.reply() if user is not None else None


@command("deluser", -3, _ADMIN, **_SUB)
def acl_deluser(c: Any, args: List[bytes]) -> Any:
    """Delete users (their clients are disconnected)."""
    acl = c.server.acl
    if b"default" in args[2:]:
        raise CommandError("ERR The 'default' user cannot be removed")
    deleted = 0
    for name in args[2:]:
        user = acl.users.pop(name, None)
        if user is not None:
            deleted += 1
            acl.kill_clients(user, c)
    return deleted


@command("list", 2, _ADMIN, **_SUB)
def acl_list(c: Any, args: List[bytes]) -> Any:
    """Every user, in config file form."""
    users = c.server.acl.users
    return [b"user " + name + b" " + acl_mod._bytes(users[name].describe())
            for name in sorted(users)]


@command("users", 2, _ADMIN, **_SUB)
def acl_users(c: Any, args: List[bytes]) -> Any:
    """Every user name."""
    return sorted(c.server.acl.users)


@command("whoami", 2, "noscript loading stale", **_SUB)
def acl_whoami(c: Any, args: List[bytes]) -> Any:
    """This connection's user."""
    return c.user.name


@command("cat", -2, "noscript loading stale", **_SUB)
def acl_cat(c: Any, args: List[bytes]) -> Any:
    """The categories, or the commands of one."""
    if len(args) > 3:
        raise wrong_arity("acl|cat")
    if len(args) == 2:
        return [name.encode() for name in ACL_CATEGORIES]
    category = _text(args[2]).lower()
    if category not in ACL_CATEGORIES:
        raise CommandError(f"ERR Unknown category '{_text(args[2])[:128]}'")
    u = acl_mod.universe()
    names = []
    for spec in u.top:
        for one in [spec] + u.subs[spec.id]:
            if category in one.acl_categories:
                names.append(one.fullname.encode())
    return names


@command("genpass", -2, "noscript loading stale", **_SUB)
def acl_genpass(c: Any, args: List[bytes]) -> Any:
    """A random password: 256 bits, or the bits asked for, in hex."""
    if len(args) > 3:
        raise wrong_arity("acl|genpass")
    bits = 256
    if len(args) == 3:
        bits = to_int(args[2])
        if bits <= 0 or bits > 4096:
            raise CommandError("ERR ACL GENPASS argument must be the number of bits for the "
                               "output password, a positive number up to 4096")
    chars = (bits + 3) // 4
    return secrets.token_hex((chars + 1) // 2)[:chars].encode()


@command("log", -2, _ADMIN, **_SUB)
def acl_log(c: Any, args: List[bytes]) -> Any:
    """The newest denials (10, or as many as asked), or RESET."""
    acl = c.server.acl
    if len(args) > 3:
        raise CommandError("ERR unknown subcommand or wrong number of arguments for 'log'. "
                           "Try ACL HELP.")
    count = 10
    if len(args) == 3:
        if args[2].lower() == b"reset":
            acl.log.clear()
            return OK
        try:
            count = to_int(args[2])
        except CommandError:
            raise CommandError(NOT_INTEGER) from None
    now = time.time()
    return [entry.reply(now) for entry in acl.log[:max(count, 0)]]


@command("dryrun", -4, _ADMIN, **{**_SUB, "since": "7.0.0"})
def acl_dryrun(c: Any, args: List[bytes]) -> Any:
    """Whether a user may run a command, without running it."""
    user = c.server.acl.users.get(args[2])
    if user is None:
        raise CommandError(f"ERR User '{_text(args[2])}' not found")
    call = args[3:]
    spec = c.table.get(call[0]) or c.table.get(call[0].lower())
    if spec is not None and spec.subcommands:
        sub = spec.subcommands.get(call[1].lower()) if len(call) > 1 else None
        spec = sub
    if spec is None:
        raise CommandError(f"ERR Command '{_text(call[0])}' not found")
    arity = spec.arity
    if (len(call) != arity) if arity > 0 else (len(call) < -arity):
        raise CommandError(f"ERR wrong number of arguments for '{spec.fullname}' command")
    result, index = acl_mod.ACL.check(user, spec, call)
    if result != acl_mod.OK:
        return acl_mod.dryrun_text(result, spec, call, index).encode()
    return OK


def _acl_file(c: Any) -> str:
    path = c.server.config["aclfile"]
    if not path:
        raise CommandError("ERR This Redis instance is not configured to use an ACL file. You "
                           "may want to specify users via the ACL SETUSER command and then "
                           "issue a CONFIG REWRITE (assuming you have a Redis configuration "
                           "file set) in order to store users in the Redis configuration.")
    return path


@command("save", 2, _ADMIN, **_SUB)
def acl_save(c: Any, args: List[bytes]) -> Any:
    """Write every user to the ACL file."""
    path = _acl_file(c)
    try:
        c.server.acl.save_file(path)
    except OSError as exc:
        raise CommandError(f"ERR There was an error trying to save the ACLs. Please check "
                           f"the server logs for more information ({exc.strerror})") from None
    return OK


@command("load", 2, _ADMIN, **_SUB)
def acl_load(c: Any, args: List[bytes]) -> Any:
    """Replace every user with the ACL file's (all or nothing)."""
    path = _acl_file(c)
    try:
        c.server.acl.load_file(path, c)
    except ValueError as exc:
        raise CommandError(f"ERR {exc}") from None
    return OK


@command("help", 2, "loading stale", **_SUB)
def acl_help(c: Any, args: List[bytes]) -> Any:
    """Subcommands of ACL."""
    return help_reply("ACL", [
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the "
        "command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Prints this help."])
