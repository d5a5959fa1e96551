"""min-replicas-to-write without enough replicas, against redis-server 7.0: what is
refused before it runs (a write queued in MULTI, EXEC of a queued write, a script
whose shebang may write) and what is refused as it runs (a script's redis.call)."""
from __future__ import annotations

import pytest
import redis

from servers import REDIS_SERVER, distcache_server, redis_server

FLAGS = ("--min-replicas-to-write", "1")
REFUSED = "NOREPLICAS Not enough good replicas to write."
ABORTED = "Transaction discarded because of"  # redis-py drops the EXECABORT code


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(distcache, redis-server), both refusing writes: no replica is attached."""
    if not REDIS_SERVER:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with distcache_server(tmp_path_factory.mktemp("dc"), *FLAGS) as dc, \
            redis_server(tmp_path_factory.mktemp("redis"), *FLAGS) as ref:
        yield dc, ref


@pytest.fixture
def clients(pair):
    """Per server: a connection for the transaction and one to change the config."""
    made = [(redis.Redis(port=p.port, socket_timeout=10, single_connection_client=True),
             redis.Redis(port=p.port, socket_timeout=10)) for p in pair]
    for _, admin in made:
        admin.config_set("min-replicas-to-write", 1)
    yield [c for c, _ in made], [a for _, a in made]
    for client, admin in made:
        client.close()
        admin.close()


def reply(client, *command):
    """The reply, errors (also inside EXEC's array) as ("error", text)."""
    try:
        value = client.execute_command(*command)
    except redis.ResponseError as exc:
        return ("error", str(exc))
    if isinstance(value, list):
        return [("error", str(v)) if isinstance(v, redis.ResponseError) else v for v in value]
    return value


def run(clients, *steps):
    """Each step on both servers, the same reply required; returns the replies."""
    replies = []
    for step in steps:
        ours, theirs = (reply(client, *step) for client in clients)
        assert ours == theirs, f"{step}: distcache {ours!r} != redis {theirs!r}"
        replies.append(ours)
    return replies


def test_plain_writes_are_refused_reads_served(clients):
    c, _ = clients
    assert run(c, ("SET", "a", "1"), ("DEL", "a"), ("FLUSHALL",), ("SET", "a", "1", "GET")) \
        == [("error", REFUSED)] * 4
    assert run(c, ("GET", "a"), ("PUBLISH", "ch", "x")) == [None, 0]


def test_a_write_queued_in_multi_is_refused_and_exec_aborts(clients):
    c, _ = clients
    replies = run(c, ("MULTI",), ("SET", "a", "1"), ("GET", "a"), ("EXEC",))
    assert replies[1] == ("error", REFUSED)
    assert replies[3] == ("error", ABORTED + " previous errors.")
    assert run(c, ("MULTI",), ("GET", "a"), ("EXEC",))[2] == [None]


def test_exec_of_a_write_queued_before_the_refusal_aborts(clients):
    c, admin = clients
    for a in admin:
        a.config_set("min-replicas-to-write", 0)
    run(c, ("MULTI",), ("SET", "a", "1"), ("GET", "a"))
    for a in admin:
        a.config_set("min-replicas-to-write", 1)
    exec_reply, after = run(c, ("EXEC",), ("EXEC",))
    assert exec_reply == ("error", ABORTED + ": " + REFUSED)
    assert after == ("error", "EXEC without MULTI")  # the transaction was discarded
    assert run(c, ("GET", "a")) == [None]
    # a transaction of reads still runs
    for a in admin:
        a.config_set("min-replicas-to-write", 0)
    run(c, ("MULTI",), ("GET", "a"))
    for a in admin:
        a.config_set("min-replicas-to-write", 1)
    assert run(c, ("EXEC",)) == [[None]]


def test_scripts(clients):
    c, _ = clients
    pytest.importorskip("lupa")
    plain = "return redis.call('set', 'x', '1')"
    shebang = "#!lua\nreturn redis.call('set', 'x', '1')"
    reads = "#!lua flags=no-writes\nreturn redis.call('get', 'x')"
    replies = run(c, ("EVAL", plain, "0"),            # refused by redis.call, with the script
                  ("EVAL", plain.replace("call", "pcall"), "0"),
                  ("EVAL", shebang, "0"),             # refused before it runs
                  ("EVAL_RO", shebang, "0"),
                  ("EVAL", reads, "0"),
                  ("EVAL", "#!lua flags=no-writes\nreturn redis.call('set', 'x', 1)", "0"),
                  ("EVAL", "#!lua badoption\nreturn 1", "0"))
    assert replies[0][1].startswith(REFUSED + " script: ")
    assert replies[1:4] == [("error", REFUSED)] * 3
    assert replies[4] is None
    sha = run(c, ("SCRIPT", "LOAD", shebang))[0]
    assert run(c, ("EVALSHA", sha, "0")) == [("error", REFUSED)]
    queued = run(c, ("MULTI",), ("EVAL", shebang, "0"), ("EVAL", plain, "0"), ("EXEC",))
    assert queued[1] == ("error", REFUSED) and queued[3][1].startswith(ABORTED)
    queued = run(c, ("MULTI",), ("EVAL", plain, "0"), ("EXEC",))
    assert queued[2][0][1].startswith(REFUSED + " script: ")


def test_functions(clients):
    c, admin = clients
    pytest.importorskip("lupa")
    for a in admin:
        a.config_set("min-replicas-to-write", 0)
    library = ("#!lua name=noreplicas\n"
               "redis.register_function('w', function() return redis.call('set', 'f', 1) end)\n"
               "redis.register_function{function_name='r', callback=function() "
               "return redis.call('get', 'f') end, flags={'no-writes'}}")
    run(c, ("FUNCTION", "LOAD", "REPLACE", library))
    for a in admin:
        a.config_set("min-replicas-to-write", 1)
    assert run(c, ("FCALL", "w", "0"), ("FCALL", "r", "0"), ("FCALL_RO", "r", "0"),
               ("FCALL", "nope", "0")) \
        == [("error", REFUSED), None, None, ("error", "Function not found")]
    replies = run(c, ("MULTI",), ("FCALL", "w", "0"), ("FCALL", "r", "0"), ("EXEC",))
    assert replies[1] == ("error", REFUSED) and replies[3][1].startswith(ABORTED)
