"""ACL users: rules, AUTH/HELLO with a username, NOPERM, the ACL log, DRYRUN,
disconnects, the ACL file and ``user`` lines, and the distcache client as a user.

Most tests run the same assertions on distcache and on a real redis-server 7.0.15
(``target``), so what they check is Redis's behaviour, raw bytes included.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys

import pytest
import redis

from core_helpers import RawClient, start_target, wait_until
from servers import ROOT, distcache_server

_names = itertools.count()


@pytest.fixture(scope="module", params=["distcache", "redis"])
def target(request, tmp_path_factory):
    proc = start_target(request.param, tmp_path_factory.mktemp(f"acl-{request.param}"))
    yield proc
    proc.stop()


def _getuser_dict(response, **options):
    """ACL GETUSER's pairs as a dict (selectors too), as redis-py 8 returns them
    from execute_command; the redis-py for Python 3.9 (7.0) returns the raw list."""
    def pairs(items):
        return dict(zip(items[::2], items[1::2])) if isinstance(items, list) else items
    user = pairs(response)
    if isinstance(user, dict) and isinstance(user.get(b"selectors"), list):
        user[b"selectors"] = [pairs(sel) for sel in user[b"selectors"]]
    return user


def _acl_reply(response, **options):
    """redis-py 7: ACL GETUSER and ACL LOG as redis-py 8 returns them."""
    if isinstance(response, list) and response[:1] == [b"flags"]:
        return _getuser_dict(response)
    if isinstance(response, list) and response and isinstance(response[0], list) \
            and response[0][:1] == [b"count"]:
        return [_getuser_dict(entry) for entry in response]
    return response


@pytest.fixture
def admin(target):
    client = redis.Redis(port=target.port, socket_timeout=10)
    if int(redis.__version__.split(".")[0]) < 8:  # 7 keys callbacks by "ACL" alone
        client.set_response_callback("ACL", _acl_reply)
    client.execute_command("ACL", "LOG", "RESET")
    yield client
    client.close()


def new_user(admin, *rules: str) -> str:
    name = f"user{next(_names)}"
    assert admin.execute_command("ACL", "SETUSER", name, *rules) == b"OK"
    return name


def login(target, user: str, password: str = "pw") -> RawClient:
    raw = RawClient(target.port)
    assert raw.call("AUTH", user, password) == b"+OK\r\n"
    return raw


def noperm(what: str) -> bytes:
    return f"-NOPERM this user has no permissions to {what}\r\n".encode()


NO_KEY = noperm("access one of the keys used as arguments")
NO_CHANNEL = noperm("access one of the channels used as arguments")
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"


def test_default_user(admin):
    assert admin.execute_command("ACL", "WHOAMI") == b"default"
    assert b"user default on nopass ~* &* +@all" in admin.execute_command("ACL", "LIST")
    user = admin.execute_command("ACL", "GETUSER", "default")
    assert user[b"flags"] == [b"on", b"nopass"] and user[b"commands"] == b"+@all"
    assert user[b"keys"] == b"~*" and user[b"channels"] == b"&*"


def test_auth_with_a_username(target, admin):
    name = new_user(admin, "on", ">pw", "+@all", "~*")
    with RawClient(target.port) as raw:
        assert raw.call("AUTH", name, "bad") == WRONGPASS
        assert raw.call("AUTH", "nosuchuser", "pw") == WRONGPASS
        assert raw.call("AUTH", name, "pw") == b"+OK\r\n"
        assert raw.call("ACL", "WHOAMI") == b"$%d\r\n%s\r\n" % (len(name), name.encode())
        assert f"user={name} ".encode() in raw.call("CLIENT", "INFO")
    off = new_user(admin, "off", ">pw", "+@all")
    nopass = new_user(admin, "on", "nopass", "+@all")
    with RawClient(target.port) as raw:
        assert raw.call("AUTH", off, "pw") == WRONGPASS  # disabled
        assert raw.call("AUTH", nopass, "anything") == b"+OK\r\n"
        assert raw.call("HELLO", "3", "AUTH", name, "bad") == WRONGPASS
        assert raw.call("HELLO", "2", "AUTH", name, "pw").startswith(b"*")
        assert raw.call("ACL", "WHOAMI") == b"$%d\r\n%s\r\n" % (len(name), name.encode())
        assert raw.call("RESET") == b"+RESET\r\n"
        assert raw.call("ACL", "WHOAMI") == b"$7\r\ndefault\r\n"


def test_noperm_for_commands_keys_and_channels(target, admin):
    name = new_user(admin, "on", ">pw", "~app:*", "%R~shared:*", "&news.*", "+@read",
                    "+set", "+publish", "+subscribe", "-hget", "+select|0")
    with login(target, name) as raw:
        assert raw.call("GET", "app:1") == b"$-1\r\n"
        assert raw.call("SET", "app:1", "v") == b"+OK\r\n"
        assert raw.call("GET", "shared:x") == b"$-1\r\n"
        assert raw.call("SET", "shared:x", "v") == NO_KEY  # read-only pattern
        assert raw.call("GET", "other") == NO_KEY
        assert raw.call("MGET", "app:1", "other") == NO_KEY
        assert raw.call("HGET", "app:1", "f") == noperm("run the 'hget' command")
        assert raw.call("DEL", "app:1") == noperm("run the 'del' command")
        assert raw.call("CONFIG", "GET", "port") == noperm("run the 'config|get' command")
        assert raw.call("SELECT", "1") == noperm("run the 'select' command")
        assert raw.call("SELECT", "0") == b"+OK\r\n"
        assert raw.call("PUBLISH", "news.today", "m") == b":0\r\n"
        assert raw.call("PUBLISH", "sports", "m") == NO_CHANNEL
        assert raw.call("SUBSCRIBE", "news.x", "sports") == NO_CHANNEL
        assert raw.call("PING") == noperm("run the 'ping' command")
        # AUTH is always allowed (no_auth), whatever the rules.
        assert raw.call("AUTH", name, "pw") == b"+OK\r\n"


def test_acl_log_entries(target, admin):
    name = new_user(admin, "on", ">pw", "~k*", "&c*", "+get", "+publish", "+multi", "+exec")
    with login(target, name) as raw:
        raw.call("GET", "nokey")
        raw.call("GET", "nokey")
        raw.call("SET", "k", "v")
        raw.call("PUBLISH", "x", "m")
        raw.call("MULTI")
        assert raw.call("SET", "k1", "v") == noperm("run the 'set' command")
        assert raw.call("EXEC") == \
            b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    with RawClient(target.port) as raw:
        assert raw.call("AUTH", name, "bad") == WRONGPASS
    entries = admin.execute_command("ACL", "LOG")
    assert [(e[b"reason"], e[b"context"], e[b"object"], e[b"count"]) for e in entries] == [
        (b"auth", b"toplevel", b"AUTH", 1), (b"command", b"multi", b"set", 1),
        (b"channel", b"toplevel", b"x", 1), (b"command", b"toplevel", b"set", 1),
        (b"key", b"toplevel", b"nokey", 2)]
    assert list(entries[1]) == [b"count", b"reason", b"context", b"object", b"username",
                                b"age-seconds", b"client-info"]
    assert entries[1][b"username"] == name.encode()
    assert f"user={name} ".encode() in entries[1][b"client-info"]
    assert len(admin.execute_command("ACL", "LOG", "2")) == 2
    assert admin.execute_command("ACL", "LOG", "RESET") == b"OK"
    assert admin.execute_command("ACL", "LOG") == []


def test_rules_changed_before_exec(target, admin):
    name = new_user(admin, "on", ">pw", "~*", "+multi", "+exec", "+get", "+set")
    with login(target, name) as raw:
        assert raw.call("MULTI") == b"+OK\r\n"
        assert raw.call("SET", "a", "1") == b"+QUEUED\r\n"
        assert raw.call("GET", "a") == b"+QUEUED\r\n"
        admin.execute_command("ACL", "SETUSER", name, "-set")
        assert raw.call("EXEC") == (
            b"*2\r\n-NOPERM ACLs rules changed between the moment the transaction was "
            b"accumulated and the EXEC call. This command is no longer allowed for the "
            b"following reason: no permission to execute the command or subcommand\r\n"
            b"$-1\r\n")


def test_setuser_errors_change_nothing(admin):
    name = new_user(admin, "on", "+get")
    for op, reason in [
            ("bogus", "Syntax error"), ("+nosuch", "Unknown command or category name in ACL"),
            ("+@nosuch", "Unknown command or category name in ACL"),
            ("#abc", "The password hash must be exactly 64 characters and contain only "
                     "lowercase hexadecimal characters"),
            ("<nope", "The password you are trying to remove from the user does not exist"),
            ("+client|id|x", "Allowing first-arg of a subcommand is not supported")]:
        with pytest.raises(redis.ResponseError) as err:
            admin.execute_command("ACL", "SETUSER", name, "+set", op)
        assert str(err.value) == f"Error in ACL SETUSER modifier '{op}': {reason}"
    assert admin.execute_command("ACL", "GETUSER", name)[b"commands"] == b"-@all +get"
    with pytest.raises(redis.ResponseError, match="Unmatched parenthesis"):
        admin.execute_command("ACL", "SETUSER", name, "(+get")
    with pytest.raises(redis.ResponseError, match="can't contain spaces"):
        admin.execute_command("ACL", "SETUSER", "a b")


def test_passwords_and_hashes(target, admin):
    digest = hashlib.sha256(b"second").hexdigest()
    name = new_user(admin, "on", ">first", "#" + digest, "+@all")
    assert admin.execute_command("ACL", "GETUSER", name)[b"passwords"] == [
        hashlib.sha256(b"first").hexdigest().encode(), digest.encode()]
    with RawClient(target.port) as raw:
        assert raw.call("AUTH", name, "second") == b"+OK\r\n"
    admin.execute_command("ACL", "SETUSER", name, "<first", "!" + digest)
    assert admin.execute_command("ACL", "GETUSER", name)[b"passwords"] == []
    with RawClient(target.port) as raw:
        assert raw.call("AUTH", name, "second") == WRONGPASS


def test_selectors(target, admin):
    name = new_user(admin, "on", ">pw", "~a*", "+get", "(~b* +set)", "(%R~c* +@string)")
    assert admin.execute_command("ACL", "GETUSER", name)[b"selectors"] == [
        {b"commands": b"-@all +set", b"keys": b"~b*", b"channels": b""},
        {b"commands": b"-@all +@string", b"keys": b"%R~c*", b"channels": b""}]
    with login(target, name) as raw:
        assert raw.call("GET", "a1") == b"$-1\r\n"
        assert raw.call("SET", "b1", "v") == b"+OK\r\n"
        assert raw.call("GET", "c1") == b"$-1\r\n"
        assert raw.call("SET", "a1", "v") == NO_KEY
        assert raw.call("GET", "b1") == NO_KEY
    assert admin.execute_command("ACL", "DRYRUN", name, "SET", "c1", "v") == \
        b"This user has no permissions to access the 'c1' key"
    admin.execute_command("ACL", "SETUSER", name, "clearselectors")
    assert admin.execute_command("ACL", "GETUSER", name)[b"selectors"] == []


def test_dryrun(admin):
    name = new_user(admin, "on", "~k*", "&ch", "+get", "+publish")
    assert admin.execute_command("ACL", "DRYRUN", name, "GET", "k1") == b"OK"
    assert admin.execute_command("ACL", "DRYRUN", name, "GET", "x") == \
        b"This user has no permissions to access the 'x' key"
    assert admin.execute_command("ACL", "DRYRUN", name, "SET", "k", "v") == \
        b"This user has no permissions to run the 'set' command"
    assert admin.execute_command("ACL", "DRYRUN", name, "PUBLISH", "x", "m") == \
        b"This user has no permissions to access the 'x' channel"
    for args, error in [(("nouser", "GET", "k"), "User 'nouser' not found"),
                        ((name, "NOCMD"), "Command 'NOCMD' not found"),
                        ((name, "GET"), "wrong number of arguments for 'get' command")]:
        with pytest.raises(redis.ResponseError, match=error):
            admin.execute_command("ACL", "DRYRUN", *args)


def test_deluser_and_client_kill_user_disconnect(target, admin):
    name = new_user(admin, "on", ">pw", "+@all", "~*")
    first, second = login(target, name), login(target, name)
    try:
        # A password change keeps the connection, as Redis 7.0 does.
        admin.execute_command("ACL", "SETUSER", name, "resetpass", ">new")
        assert first.call("PING") == b"+PONG\r\n"
        assert admin.execute_command("CLIENT", "KILL", "USER", name) == 2
        assert first.read_until_closed() == b"" and second.read_until_closed() == b""
        third = login(target, name, "new")
        with pytest.raises(redis.ResponseError, match="No such user 'nosuch'"):
            admin.execute_command("CLIENT", "KILL", "USER", "nosuch")
        assert admin.execute_command("ACL", "DELUSER", name, "nosuch") == 1
        assert third.read_until_closed() == b""
        assert name.encode() not in admin.execute_command("ACL", "USERS")
        with pytest.raises(redis.ResponseError, match="The 'default' user cannot be removed"):
            admin.execute_command("ACL", "DELUSER", "default")
    finally:
        first.close()
        second.close()


def test_subscriber_losing_its_channel_is_disconnected(target, admin):
    name = new_user(admin, "on", ">pw", "&news", "+subscribe", "+ping")
    with login(target, name) as raw:
        assert raw.call("SUBSCRIBE", "news").startswith(b"*3\r\n$9\r\nsubscribe")
        admin.execute_command("ACL", "SETUSER", name, "resetchannels", "&other")
        assert raw.read_until_closed() == b""


def test_cat_and_genpass(admin):
    categories = admin.execute_command("ACL", "CAT")
    assert categories[:3] == [b"keyspace", b"read", b"write"] and len(categories) == 21
    assert b"get" in admin.execute_command("ACL", "CAT", "string")
    assert b"config|get" in admin.execute_command("ACL", "CAT", "admin")
    with pytest.raises(redis.ResponseError, match="Unknown category 'nosuch'"):
        admin.execute_command("ACL", "CAT", "nosuch")
    assert len(admin.execute_command("ACL", "GENPASS")) == 64
    assert len(admin.execute_command("ACL", "GENPASS", "5")) == 2
    with pytest.raises(redis.ResponseError, match="a positive number up to 4096"):
        admin.execute_command("ACL", "GENPASS", "4097")


@pytest.mark.parametrize("kind", ["distcache", "redis"])
def test_requirepass_is_the_default_users_password(kind, tmp_path):
    with start_target(kind, tmp_path, "--requirepass", "s3cret") as proc:
        with RawClient(proc.port) as raw:
            assert raw.call("AUTH", "default", "s3cret") == b"+OK\r\n"
            digest = hashlib.sha256(b"s3cret").hexdigest()
            line = f"user default on #{digest} ~* &* +@all".encode()
            assert raw.call("ACL", "LIST") == b"*1\r\n$%d\r\n%s\r\n" % (len(line), line)
            assert raw.call("CONFIG", "SET", "requirepass", "") == b"+OK\r\n"
            assert raw.call("ACL", "GETUSER", "default").startswith(
                b"*12\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$6\r\nnopass\r\n")


@pytest.mark.parametrize("kind", ["distcache", "redis"])
def test_aclfile_load_and_save(kind, tmp_path):
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("user alice on >pw ~a:* +get\nuser default on nopass ~* &* +@all\n")
    with start_target(kind, tmp_path, "--aclfile", str(aclfile)) as proc:
        admin = redis.Redis(port=proc.port)
        assert admin.execute_command("ACL", "USERS") == [b"alice", b"default"]
        alice = login(proc, "alice")
        assert alice.call("GET", "b") == NO_KEY
        admin.execute_command("ACL", "SETUSER", "bob", "on", "nopass", "+@read")
        assert admin.execute_command("ACL", "SAVE") == b"OK"
        saved = aclfile.read_text().splitlines()
        assert saved[0].startswith("user alice on #") and saved[0].endswith(
            " ~a:* resetchannels -@all +get")
        assert saved[1] == "user bob on nopass resetchannels -@all +@read"
        aclfile.write_text("user carol on nopass +@all\n")
        assert admin.execute_command("ACL", "LOAD") == b"OK"
        assert admin.execute_command("ACL", "USERS") == [b"carol", b"default"]
        assert alice.read_until_closed() == b""  # its user is gone
        aclfile.write_text("user dave on bogus\n")
        with pytest.raises(redis.ResponseError, match="Syntax error"):
            admin.execute_command("ACL", "LOAD")
        assert admin.execute_command("ACL", "USERS") == [b"carol", b"default"]
        alice.close()
        admin.close()


def test_user_lines_in_the_config_file(tmp_path):
    conf = tmp_path / "distcache.conf"
    conf.write_text("user app on >pw ~app:* +@all\nuser ro on >pw %R~* +@read\n")
    with distcache_server(tmp_path, "--config", str(conf)) as proc:
        with login(proc, "app") as raw:
            assert raw.call("SET", "app:1", "v") == b"+OK\r\n"
            assert raw.call("SET", "x", "v") == NO_KEY
        with login(proc, "ro") as raw:
            assert raw.call("GET", "app:1") == b"$1\r\nv\r\n"
            assert raw.call("SET", "app:1", "w") == noperm("run the 'set' command")


@pytest.mark.parametrize("kind", ["distcache", "redis"])
def test_the_distcache_client_as_an_acl_user(kind, tmp_path):
    from distcache import CacheClient
    from distcache.client.errors import AuthenticationError, ResponseError
    with start_target(kind, tmp_path, "--requirepass", "adminpw") as proc:
        admin = redis.Redis(port=proc.port, password="adminpw")
        admin.execute_command("ACL", "SETUSER", "app", "on", ">apppw", "~app:*", "+@all",
                              "-flushall")
        client = CacheClient([f"127.0.0.1:{proc.port}"], username="app", password="apppw",
                             health_interval=None)
        try:
            client.set("app:1", 41)
            assert client.incr("app:n") == 1
            assert client.get("app:1") == 41
            with pytest.raises(ResponseError, match="NOPERM"):
                client.set("other", 1)
        finally:
            client.close()
        wrong = CacheClient([f"127.0.0.1:{proc.port}"], username="app", password="bad",
                            health_interval=None, failover="error", retries=0)
        try:
            with pytest.raises(AuthenticationError):
                wrong.get("app:1")
        finally:
            wrong.close()
        admin.close()


def test_full_users_stay_unrestricted():
    """The dispatcher's fast path: only limited users' clients pay for the check."""
    from distcache.server.app import CacheServer
    from distcache.server.connection import Client

    class Transport:
        def write(self, data):
            pass

        def get_extra_info(self, name):
            return ("127.0.0.1", 1)

        def close(self):
            pass

    server = CacheServer("127.0.0.1", 0, appendonly="no", save="")
    client = Client(server)
    client.connection_made(Transport())
    assert not client.restricted
    out = []
    client.execute([b"ACL", b"SETUSER", b"lim", b"on", b"nopass", b"+get", b"~*"], out)
    client.execute([b"AUTH", b"lim", b"x"], out)
    assert client.restricted
    client.execute([b"AUTH", b"default", b"x"], out)
    assert not client.restricted
    client.execute([b"ACL", b"SETUSER", b"default", b"-get"], out)
    assert client.restricted  # the default user itself was limited


def test_pubsub_default_and_log_length(target, admin):
    admin.config_set("acl-pubsub-default", "allchannels")
    try:
        name = new_user(admin, "on")
        assert admin.execute_command("ACL", "GETUSER", name)[b"channels"] == b"&*"
    finally:
        admin.config_set("acl-pubsub-default", "resetchannels")
    assert admin.execute_command("ACL", "GETUSER", new_user(admin, "on"))[b"channels"] == b""
    admin.config_set("acllog-max-len", "2")
    try:
        name = new_user(admin, "on", ">pw")
        with login(target, name) as raw:
            for command in ("GET", "SET", "DEL", "TYPE"):
                raw.call(command, "k")
        assert [e[b"object"] for e in admin.execute_command("ACL", "LOG")] == [b"type", b"del"]
    finally:
        admin.config_set("acllog-max-len", "128")


def test_binary_patterns_round_trip(admin):
    name = new_user(admin, "on", b"~\xff*", b"&\xfe")
    user = admin.execute_command("ACL", "GETUSER", name)
    assert (user[b"keys"], user[b"channels"]) == (b"~\xff*", b"&\xfe")
    assert admin.execute_command("ACL", "DRYRUN", name, "SET", b"\xffx", "v") == \
        b"This user has no permissions to run the 'set' command"


def test_config_rewrite_keeps_users(tmp_path):
    conf = tmp_path / "distcache.conf"
    conf.write_text("port 0\n")
    with distcache_server(tmp_path, "--config", str(conf)) as proc:
        admin = redis.Redis(port=proc.port)
        admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", "~app:*", "+get")
        assert admin.config_rewrite()
        admin.close()
    lines = conf.read_text().splitlines()
    assert any(line.startswith("user app on #")
               and line.endswith("~app:* resetchannels -@all +get") for line in lines)
    with distcache_server(tmp_path, "--config", str(conf)) as proc:
        with login(proc, "app") as raw:
            assert raw.call("GET", "app:1") == b"$-1\r\n"
            assert raw.call("GET", "x") == NO_KEY


def test_bad_acl_file_stops_startup(tmp_path):
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("user alice on bogus\n")
    result = subprocess.run(
        [sys.executable, "-m", "distcache", "server", "--port", "0", "--aclfile", str(aclfile),
         "--appendonly", "no", "--save", ""],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1
    assert "Syntax error" in result.stderr and "users.acl:1" in result.stderr


def test_movable_keys_and_variable_flags(admin):
    name = new_user(admin, "on", "~a*", "%R~r*", "+@all")
    for call, verdict in [
            (("ZUNIONSTORE", "d", "x", "a"), b"OK"),  # a bad key count finds no keys
            (("ZUNIONSTORE", "a", "5", "a"), b"OK"),  # too few: that spec finds none
            (("ZUNIONSTORE", "a", "2", "a", "b"),
             b"This user has no permissions to access the 'b' key"),
            (("LMPOP", "2", "a1", "a2", "LEFT"), b"OK"),
            (("SET", "r1", "v"), b"This user has no permissions to access the 'r1' key"),
            (("GET", "r1"), b"OK")]:
        assert admin.execute_command("ACL", "DRYRUN", name, *call) == verdict, call
    writer = new_user(admin, "on", "%W~w*", "+@all")
    assert admin.execute_command("ACL", "DRYRUN", writer, "SET", "w1", "v") == b"OK"
    assert admin.execute_command("ACL", "DRYRUN", writer, "SET", "w1", "v", "GET") == \
        b"This user has no permissions to access the 'w1' key"  # GET reads it


def test_many_rules_in_one_setuser_stay_linear(server):
    """Adding a pattern, channel or password checks for duplicates in O(1): 50k of
    them in one call must not stall the server (quadratic, as Redis's lists are,
    takes minutes). distcache only, for that reason."""
    admin = redis.Redis(port=server.port, socket_timeout=60)
    count = 50_000
    rules = [f"~k{i}" for i in range(count)] + [f"&c{i}" for i in range(count)] + \
        [f">p{i}" for i in range(count // 10)] + ["~k1", "&c1", ">p1"]
    name = new_user(admin, "on", *rules)
    user = _getuser_dict(admin.execute_command("ACL", "GETUSER", name))
    assert user[b"keys"].count(b" ") == count - 1 and len(user[b"passwords"]) == count // 10
    assert admin.execute_command("ACL", "DRYRUN", name, "GET", f"k{count - 1}") == \
        b"This user has no permissions to run the 'get' command"
    admin.close()
