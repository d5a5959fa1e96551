"""Connection commands: PING, AUTH, HELLO, SELECT, RESET, CLIENT..."""
from __future__ import annotations

from typing import Any, Callable, Dict, List

from ... import __version__
from ...protocol import OK, PONG, Raw, Verbatim
from ..errors import CommandError, SYNTAX, WRONGPASS, wrong_arity, subcommand_syntax
from ..pubsub import subscribed
from .args import to_int
from .keys import db_index
from .table import command, container, help_reply

REDIS_VERSION = "7.0.15"
_CONN = dict(group="connection")


@command("ping", -1, "fast pubsub_ok", **_CONN)
def ping(c: Any, args: List[bytes]) -> Any:
    """PONG, or the message given."""
    if len(args) > 2:
        raise wrong_arity("ping")
    if (c.channels or c.patterns or c.shard_channels) and not c.resp3:
        return [b"pong", args[1] if len(args) == 2 else b""]
    return args[1] if len(args) == 2 else PONG


@command("echo", 2, "fast loading stale", **_CONN)
def echo(c: Any, args: List[bytes]) -> Any:
    """Return the message."""
    return args[1]


@command("quit", -1, "fast no_auth loading allow_busy noscript stale", **_CONN)
def quit_(c: Any, args: List[bytes]) -> Any:
    """Close the connection after replying OK."""
    c.closing = True
    return OK


def _check_password(c: Any, user: bytes, password: bytes, command: bytes) -> None:
    # A "nopass" user (the default one without requirepass) takes any password.
    if not c.server.acl.authenticate(c, user, password, command):
        raise CommandError(WRONGPASS)


@command("auth", -2, "fast no_auth loading allow_busy noscript stale", **_CONN)
def auth(c: Any, args: List[bytes]) -> Any:
    """Authenticate with the server password (user ``default``)."""
    if len(args) > 3:
        raise CommandError(SYNTAX)
    if len(args) == 2 and "nopass" in c.server.acl.default.flags:
        raise CommandError("ERR AUTH <password> called without any password configured for "
                           "the default user. Are you sure your configuration is correct?")
    user, password = (b"default", args[1]) if len(args) == 2 else (args[1], args[2])
    _check_password(c, user, password, args[0])
    return OK


@command("hello", -1, "fast no_auth loading allow_busy noscript stale", since="6.0.0",
         **_CONN)
def hello(c: Any, args: List[bytes]) -> Any:
    """Handshake: pick RESP2 or RESP3, optionally AUTH and SETNAME."""
    proto = None
    if len(args) >= 2:
        try:
            proto = to_int(args[1])
        except CommandError:
            raise CommandError("ERR Protocol version is not an integer or out of range") \
                from None
        if proto not in (2, 3):
            raise CommandError("NOPROTO unsupported protocol version")
    i = 2
    name = None
    while i < len(args):
        opt = args[i].upper()
        if opt == b"AUTH" and i + 2 < len(args):
            _check_password(c, args[i + 1], args[i + 2], args[0])
            i += 3
        elif opt == b"SETNAME" and i + 1 < len(args):
            name = _valid_name(args[i + 1])
            i += 2
        else:
            option = args[i].decode("utf-8", "replace")
            raise CommandError(f"ERR Syntax error in HELLO option '{option}'")
    if not c.authenticated:
        raise CommandError("NOAUTH HELLO must be called with the client already authenticated, "
                           "otherwise the HELLO AUTH <user> <pass> option can be used "
                           "to authenticate the client and select the RESP protocol version at "
                           "the same time")
    if name is not None:
        c.name = name
    if proto is not None:
        c.resp3 = proto == 3
    return {b"server": b"redis", b"version": REDIS_VERSION.encode(),
            b"proto": 3 if c.resp3 else 2, b"id": c.id, b"mode": b"standalone",
            b"role": b"replica" if c.server.replication.link is not None else b"master",
            b"modules": [],
            b"distcache_version": __version__.encode()}


@command("select", 2, "fast loading stale", **_CONN)
def select(c: Any, args: List[bytes]) -> Any:
    """Switch to another database."""
    c.db = c.keyspace.dbs[db_index(c, args[1])]
    return OK


@command("reset", 1, "fast no_auth loading allow_busy noscript stale", since="6.2.0",
         **_CONN)
def reset(c: Any, args: List[bytes]) -> Any:
    """Return the connection to its initial state."""
    for hook in c.server.reset_hooks:
        hook(c)
    c.db = c.keyspace.dbs[0]
    c.resp3 = False
    c.name = b""
    c.user = default = c.server.acl.default
    c.authenticated = default.enabled and "nopass" in default.flags
    c.reply_off = c.skip_next = False  # CLIENT REPLY ON again, as Redis
    c.update_restricted()
    return Raw(b"+RESET\r\n")


#: The bytes a client name may hold: Redis allows '!' to '~' only.
_NAME_BYTES = bytes(range(ord("!"), ord("~") + 1))


def _valid_name(name: bytes) -> bytes:
    # What is left once the allowed bytes are deleted: C speed, for names can
    # be as long as a bulk string.
    if name.translate(None, _NAME_BYTES):
        raise CommandError("ERR Client names cannot contain spaces, newlines or special "
                           "characters.")
    return name


# -- CLIENT ---------------------------------------------------------------------------

container("client", -2, "", group="connection", summary="Manage client connections.")
_CLIENT_TYPES = (b"normal", b"master", b"replica", b"slave", b"pubsub")
_SUB = dict(parent="client", group="connection")


@command("id", 2, "noscript loading stale", **_SUB)
def client_id(c: Any, args: List[bytes]) -> Any:
    """This connection's id."""
    return c.id


@command("setname", 3, "noscript loading stale", **_SUB)
def client_setname(c: Any, args: List[bytes]) -> Any:
    """Name this connection."""
    c.name = _valid_name(args[2])
    return OK


@command("getname", 2, "noscript loading stale", **_SUB)
def client_getname(c: Any, args: List[bytes]) -> Any:
    """This connection's name, or nil."""
    return c.name or None


@command("setinfo", 4, "noscript loading stale", since="7.2.0", **_SUB)
def client_setinfo(c: Any, args: List[bytes]) -> Any:
    """Record the client library's name or version."""
    attr = args[2].upper()
    if attr == b"LIB-NAME":
        c.lib_name = _valid_name(args[3])
    elif attr == b"LIB-VER":
        c.lib_ver = _valid_name(args[3])
    else:
        raise CommandError(f"ERR Unrecognized option '{args[2].decode('utf-8', 'replace')}'")
    return OK


@command("info", 2, "noscript loading stale", **_SUB)
def client_info(c: Any, args: List[bytes]) -> Any:
    """This connection's CLIENT LIST line."""
    return Verbatim((c.info_line(args) + "\n").encode())


@command("list", -2, "admin noscript loading stale", **_SUB)
def client_list(c: Any, args: List[bytes]) -> Any:
    """Every connection, one line each (TYPE, ID filters)."""
    clients = list(c.server.clients.values())
    i = 2
    while i < len(args):
        opt = args[i].upper()
        if opt == b"TYPE" and i + 1 < len(args):
            kind = args[i + 1].lower()
            if kind not in _CLIENT_TYPES:
                raise CommandError(f"ERR Unknown client type '{args[i + 1].decode()}'")
            clients = [x for x in clients if _is_type(x, kind)]
            i += 2
        elif opt == b"ID" and i + 1 < len(args):
            ids = set()
            for arg in args[i + 1:]:
                try:
                    ids.add(to_int(arg))
                except CommandError:
                    raise CommandError("ERR Invalid client ID") from None
            clients = [x for x in clients if x.id in ids]
            i = len(args)
        else:
            raise CommandError(SYNTAX)
    # The caller's line shows this command's arguments (argv-mem), as Redis's.
    return Verbatim("".join(x.info_line(args if x is c else None) + "\n"
                            for x in clients).encode())


@command("kill", -3, "admin noscript loading stale", **_SUB)
def client_kill(c: Any, args: List[bytes]) -> Any:
    """Close connections by address, or by filters (ID, ADDR, LADDR, SKIPME)."""
    clients = c.server.clients
    if len(args) == 3:
        addr = args[2].decode("utf-8", "replace")
        for other in list(clients.values()):
            if other.addr == addr:
                _kill(c, other)
                return OK
        raise CommandError("ERR No such client")
    # One filter per kind, the last given wins (as Redis): thousands of filters
    # cost no more than one per client.
    filters: Dict[bytes, Callable[[Any], bool]] = {}
    skipme = True
    i = 2
    while i < len(args):
        if i + 1 >= len(args):
            raise CommandError(SYNTAX)
        opt, value = args[i].upper(), args[i + 1]
        if opt == b"ID":
            wanted_id = to_int(value, "ERR client-id should be greater than 0")
            if wanted_id < 1:
                raise CommandError("ERR client-id should be greater than 0")
            filters[opt] = lambda x, v=wanted_id: x.id == v
        elif opt == b"ADDR":
            filters[opt] = lambda x, v=value.decode("utf-8", "replace"): x.addr == v
        elif opt == b"LADDR":
            filters[opt] = lambda x, v=value.decode("utf-8", "replace"): x.laddr == v
        elif opt == b"USER":
            user = c.server.acl.users.get(value)
            if user is None:
                raise CommandError(f"ERR No such user '{value.decode('utf-8', 'replace')}'")
            filters[opt] = lambda x, u=user: x.user is u
        elif opt == b"TYPE":
            kind = value.lower()
            if kind not in _CLIENT_TYPES:
                raise CommandError(f"ERR Unknown client type '{value.decode('utf-8', 'replace')}'")
            filters[opt] = lambda x, k=kind: _is_type(x, k)
        elif opt == b"SKIPME":
            if value.lower() not in (b"yes", b"no"):
                raise CommandError(SYNTAX)
            skipme = value.lower() == b"yes"
        else:
            raise CommandError(SYNTAX)
        i += 2
    checks = list(filters.values())
    killed = 0
    for other in list(clients.values()):
        if skipme and other is c:
            continue
        if all(f(other) for f in checks):
            _kill(c, other)
            killed += 1
    return killed


def _is_type(c: Any, kind: bytes) -> bool:
    """CLIENT LIST/KILL TYPE: a replica's connection (flag S) is of type replica only."""
    if getattr(c, "is_replica", False):
        return kind in (b"replica", b"slave")
    if getattr(c, "is_primary_link", False):
        return kind == b"master"
    if kind == b"pubsub":
        return subscribed(c)
    return kind == b"normal" and not subscribed(c)


def _kill(c: Any, other: Any) -> None:
    if other is c:
        c.closing = True
    else:
        other.close_now()


@command("no-evict", 3, "admin noscript loading stale", since="7.0.0", **_SUB)
def client_no_evict(c: Any, args: List[bytes]) -> Any:
    """Exclude this connection from client eviction (maxmemory-clients), or not."""
    if args[2].upper() not in (b"ON", b"OFF"):
        raise CommandError(SYNTAX)
    c.no_evict = args[2].upper() == b"ON"
    return OK


@command("unblock", -3, "admin noscript loading stale", since="5.0.0", **_SUB)
def client_unblock(c: Any, args: List[bytes]) -> Any:
    """End a client's blocking command now, as a timeout (or with an error)."""
    if len(args) > 4:
        raise CommandError(subcommand_syntax(args))
    error = None
    if len(args) == 4:  # the reason is checked before the id, as Redis does
        reason = args[3].upper()
        if reason not in (b"TIMEOUT", b"ERROR"):
            raise CommandError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        if reason == b"ERROR":
            error = "UNBLOCKED client unblocked via CLIENT UNBLOCK"
    target = c.server.clients.get(to_int(args[2]))
    return int(target is not None and target.unblock_now(error))


@command("help", 2, "loading stale", **_SUB)
def client_help(c: Any, args: List[bytes]) -> Any:
    """Subcommands of CLIENT."""
    return help_reply("CLIENT", ["ID, SETNAME, GETNAME, SETINFO, INFO, LIST, KILL, UNBLOCK, "
                                 "PAUSE, UNPAUSE, REPLY, NO-EVICT, TRACKING, CACHING, GETREDIR, "
                                 "TRACKINGINFO, HELP"])
