"""Helpers of the replica-side tests: datasets compared key by key, sync waits, a
scriptable fake primary."""
from __future__ import annotations

import random
import socket
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from servers import wait_until

Dataset = Dict[Tuple[int, bytes], Tuple[str, Any, int]]


def link_up(client: Any) -> bool:
    return client.info("replication").get("master_link_status") == "up"


def wait_link_up(client: Any, timeout: float = 20.0) -> None:
    wait_until(lambda: link_up(client), timeout, message="replica link up")


def wait_in_sync(primary: Any, replica: Any, timeout: float = 20.0) -> int:
    """Until the replica applied everything the primary wrote; returns the offset."""
    def caught_up() -> Any:
        want = primary.info("replication")["master_repl_offset"]
        info = replica.info("replication")
        return want if info.get("master_link_status") == "up" and \
            info.get("slave_repl_offset") == want else None
    return wait_until(caught_up, timeout, message="replica caught up")


def _value(client: Any, kind: str, key: bytes) -> Any:
    if kind == "string":
        return client.get(key)
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "hash":
        return client.hgetall(key)
    if kind == "set":
        return client.smembers(key)
    if kind == "zset":
        return client.zrange(key, 0, -1, withscores=True)
    raise AssertionError(f"unexpected type {kind}")


def dataset(client: Any, databases: int = 4) -> Dataset:
    """Every key of the first ``databases`` databases: type, value, absolute deadline."""
    found: Dataset = {}
    for db in range(databases):
        client.execute_command("SELECT", db)
        for key in client.scan_iter(count=1000):
            kind = client.type(key).decode()
            if kind == "none":
                continue
            found[(db, key)] = (kind, _value(client, kind, key),
                                client.execute_command("PEXPIRETIME", key))
    client.execute_command("SELECT", 0)
    return found


def fill(client: Any, rng: random.Random, prefix: str, count: int, db: int = 0) -> None:
    """Keys of every type, some with a (long) TTL, in database ``db``."""
    client.execute_command("SELECT", db)
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        key = f"{prefix}:{i}"
        kind = i % 6
        if kind == 0:
            pipe.set(key, rng.randbytes(rng.randrange(1, 80)))
        elif kind == 1:
            pipe.rpush(key, *[rng.randbytes(5) for _ in range(rng.randrange(1, 20))])
        elif kind == 2:
            pipe.hset(key, mapping={f"f{j}": rng.randrange(1000) for j in range(rng.randrange(1, 9))})
        elif kind == 3:
            pipe.sadd(key, *{rng.randrange(10 ** 6) for _ in range(rng.randrange(1, 30))})
        elif kind == 4:
            pipe.zadd(key, {f"m{j}": rng.random() * 100 for j in range(rng.randrange(1, 20))})
        else:
            pipe.set(key, str(rng.randrange(10 ** 9)))  # an integer-encoded string
        if i % 4 == 0:
            pipe.pexpire(key, 3_600_000 + rng.randrange(10 ** 6))
    pipe.execute()
    client.execute_command("SELECT", 0)


def diff(a: Dataset, b: Dataset) -> List[str]:
    """Readable differences between two datasets (empty when equal)."""
    out = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            out.append(f"{key}: {a.get(key)!r:.120} != {b.get(key)!r:.120}")
    return out[:20]


class FakePrimary:
    """A primary that answers the handshake and then does what ``script`` says.

    ``script(conn_number, send)`` runs after the replica's PSYNC; ``send`` writes
    raw bytes. It returns True to keep the connection open until the replica
    closes it, False to close it.
    """

    def __init__(self, script: Callable[[int, Callable[[bytes], None]], bool]) -> None:
        self.script = script
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.commands: List[List[bytes]] = []
        self.closed = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn, self.connections),
                             daemon=True).start()

    def _handle(self, conn: socket.socket, number: int) -> None:
        reader = conn.makefile("rb")
        try:
            while True:
                args = _read_command(reader)
                if args is None:
                    return
                self.commands.append(args)
                name = args[0].upper()
                if name == b"PING":
                    conn.sendall(b"+PONG\r\n")
                elif name == b"PSYNC":
                    if self.script(number, conn.sendall):
                        while _read_command(reader) is not None:
                            pass  # ACKs, until the replica hangs up
                    return
                else:
                    conn.sendall(b"+OK\r\n")
        except OSError:
            pass
        finally:
            # The file object holds the socket open too: closed here, not by
            # reference counting, which PyPy does not have.
            reader.close()
            conn.close()

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def _read_command(reader: Any) -> Optional[List[bytes]]:
    line = reader.readline()
    if not line.startswith(b"*"):
        return None
    args = []
    for _ in range(int(line[1:])):
        size = int(reader.readline()[1:])
        args.append(reader.read(size + 2)[:-2])
    return args


def rdb_payload(keys: Dict[bytes, bytes], corrupt: bool = False) -> bytes:
    """An RDB file of string keys in database 0 (its checksum broken if ``corrupt``)."""
    import io

    from distcache.rdb import RdbFileWriter
    buf = io.BytesIO()
    writer = RdbFileWriter(buf)
    writer.select_db(0, len(keys), 0)
    for key, value in keys.items():
        writer.key(key, "string", value)
    writer.finish()
    data = buf.getvalue()
    if corrupt:
        data = data[:-8] + bytes(b ^ 0xFF for b in data[-8:])
    return data


def resp(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def connect(proc: Any) -> Any:
    """A redis-py client of a test server process."""
    import redis
    return redis.Redis(port=proc.port, socket_timeout=20)


def sync_stats(client: Any) -> Tuple[int, int]:
    """INFO stats' (sync_full, sync_partial_ok)."""
    info = client.info("stats")
    return info["sync_full"], info["sync_partial_ok"]


def assert_same(primary: Any, replica: Any, databases: int = 4) -> None:
    """Once the replica caught up, both hold the same keys, values and TTLs."""
    wait_in_sync(primary, replica)
    differences = diff(dataset(primary, databases), dataset(replica, databases))
    assert not differences, "\n".join(differences)
