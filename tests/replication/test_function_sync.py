"""A full sync carries the FUNCTION libraries (the RDB's function opcodes): from a
distcache primary to a distcache replica, from a redis-server primary to a distcache
replica and from a distcache primary to a redis-server replica. A full sync replaces
the replica's own libraries, as Redis empties them before loading."""
from __future__ import annotations

import pytest

from replica_helpers import connect, wait_in_sync, wait_link_up
from servers import REDIS_SERVER, as_map, distcache_server, redis_server

pytestmark = pytest.mark.skipif(not REDIS_SERVER, reason="redis-server is not installed")
pytest.importorskip("lupa")

FAST_SYNC = ("--repl-diskless-sync-delay", "0")
LIBRARY = ("#!lua name=counters\n"
           "redis.register_function('bump', function(keys) "
           "return redis.call('incr', keys[1]) end)\n"
           "redis.register_function{function_name='peek', callback=function(keys) "
           "return redis.call('get', keys[1]) end, flags={'no-writes'}}")
OLD = "#!lua name=old\nredis.register_function('old', function() return 1 end)"

SERVERS = {"distcache": distcache_server, "redis": redis_server}


def libraries(client) -> list:
    """(name, code) of each library (redis-py makes each a dict)."""
    found = []
    for lib in client.execute_command("FUNCTION", "LIST", "WITHCODE"):
        lib = {k.decode() if isinstance(k, bytes) else k: v for k, v in as_map(lib).items()}
        found.append((lib["library_name"], lib["library_code"]))
    return sorted(found)


@pytest.mark.parametrize("primary_kind,replica_kind,diskless", [
    ("distcache", "distcache", "yes"), ("distcache", "distcache", "no"),
    ("redis", "distcache", "yes"), ("redis", "distcache", "no"),
    ("distcache", "redis", "yes")])
def test_a_full_sync_carries_the_functions(tmp_path, primary_kind, replica_kind, diskless):
    with SERVERS[primary_kind](tmp_path / "primary", *FAST_SYNC,
                               "--repl-diskless-sync", diskless) as p, \
            SERVERS[replica_kind](tmp_path / "replica") as r:
        primary, replica = connect(p), connect(r)
        primary.execute_command("FUNCTION", "LOAD", LIBRARY)
        primary.set("n", 41)
        replica.execute_command("FUNCTION", "LOAD", OLD)  # replaced by the sync
        replica.execute_command("REPLICAOF", "127.0.0.1", p.port)
        wait_link_up(replica)
        wait_in_sync(primary, replica)
        assert libraries(replica) == libraries(primary)
        assert replica.execute_command("FCALL_RO", "peek", 1, "n") == b"41"
        # the stream still carries what follows
        assert primary.execute_command("FCALL", "bump", 1, "n") == 42
        primary.execute_command("FUNCTION", "LOAD", OLD)
        wait_in_sync(primary, replica)
        assert replica.execute_command("FCALL_RO", "peek", 1, "n") == b"42"
        assert libraries(replica) == libraries(primary)
