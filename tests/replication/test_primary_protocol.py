"""The primary's side of the protocol, spoken by a hand-written replica: REPLCONF
replies, the FULLRESYNC and EOF-marked payload framing, PSYNC2 continuation through
replid2, and ROLE/INFO. In-process server (no redis-server needed), reading its
clients through asyncio's reads, through the shared buffer (BufferedClient) and
through the server's own socket I/O (SocketTransport, PyPy's default): a
connection that becomes a replica keeps its way of reading."""
from __future__ import annotations

import io
import socket
import time

import pytest

from distcache.rdb import RdbFileReader
from distcache.server.app import CacheServer


#: (socket_io, buffered_reads) of each read path.
PATHS = {"asyncio-reads": (False, False), "buffered": (False, True), "socket-io": (True, None)}


@pytest.fixture(params=list(PATHS))
def server(request, tmp_path):
    srv = CacheServer("127.0.0.1", 0, appendonly="no", save="", dir=str(tmp_path),
                      **{"repl-diskless-sync-delay": "0", "event-loop": "asyncio"})
    srv.socket_io, srv.buffered_reads = PATHS[request.param]
    with srv:
        yield srv


class Peer:
    """A raw connection that reads exactly what it is told to."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, *args: bytes) -> None:
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(parts))

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        self.buf += data

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def until(self, mark: bytes) -> bytes:
        while mark not in self.buf:
            self._fill()
        data, self.buf = self.buf.split(mark, 1)
        return data

    def call(self, *args: bytes) -> bytes:
        self.send(*args)
        return self.line()


def full_sync(peer: Peer, eof: bool = True):
    assert peer.call(b"REPLCONF", b"listening-port", b"6380") == b"+OK"
    capa = [b"capa", b"eof", b"capa", b"psync2"] if eof else [b"capa", b"psync2"]
    assert peer.call(b"REPLCONF", *capa) == b"+OK"
    head = peer.call(b"PSYNC", b"?", b"-1").split()
    assert head[0] == b"+FULLRESYNC" and len(head[1]) == 40
    bulk = peer.line()
    if eof:
        assert bulk.startswith(b"$EOF:") and len(bulk) == 45
        payload = peer.until(bulk[5:])
    else:
        payload = peer.exactly(int(bulk[1:]))
    return head[1].decode(), int(head[2]), payload


@pytest.mark.parametrize("eof", [True, False])
def test_full_sync_framing_and_aux_fields(server, eof):
    c = Peer(server.port)
    c.call(b"SET", b"k", b"v")
    c.call(b"SELECT", b"2")
    c.call(b"SET", b"k2", b"v2")
    server.config.set("repl-diskless-sync", "yes" if eof else "no")
    replid, offset, payload = full_sync(replica := Peer(server.port), eof)
    reader = RdbFileReader(io.BytesIO(payload), size=len(payload))
    keys = {(e.db, e.key): e.value for e in reader}
    assert keys == {(0, b"k"): b"v", (2, b"k2"): b"v2"}
    assert reader.aux[b"repl-id"] == replid.encode()
    assert int(reader.aux[b"repl-offset"]) == offset
    # The stream starts with a SELECT; in diskless mode only after the first ACK.
    c.call(b"SET", b"k3", b"v3")
    if eof:
        replica.send(b"REPLCONF", b"ACK", b"%d" % offset)
    assert replica.line() == b"*2"
    assert replica.exactly(len(b"$6\r\nSELECT\r\n$1\r\n2\r\n")) == b"$6\r\nSELECT\r\n$1\r\n2\r\n"


def test_a_replica_link_keeps_reading_its_acks(server):
    """The connection turned replica still reads the way it did (the shared buffer
    included): its ACKs reach WAIT, and the link lives on."""
    writer = Peer(server.port)
    replica = Peer(server.port)
    _, offset, _ = full_sync(replica)
    replica.send(b"REPLCONF", b"ACK", b"%d" % offset)
    set_k = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
    assert writer.call(b"SET", b"k", b"v") == b"+OK"
    offset += len(replica.until(set_k)) + len(set_k)  # the SELECT, then the SET
    replica.send(b"REPLCONF", b"ACK", b"%d" % offset)
    assert writer.call(b"WAIT", b"1", b"5000") == b":1"
    head = writer.call(b"INFO", b"replication")
    assert b",offset=%d," % offset in writer.exactly(int(head[1:]) + 2)


def test_replconf_errors_and_silences(server):
    c = Peer(server.port)
    assert c.call(b"REPLCONF") == b"+OK"
    assert c.call(b"REPLCONF", b"foo", b"1") == b"-ERR Unrecognized REPLCONF option: foo"
    assert c.call(b"REPLCONF", b"listening-port") == b"-ERR syntax error"
    assert c.call(b"REPLCONF", b"listening-port", b"x") == \
        b"-ERR value is not an integer or out of range"
    assert c.call(b"REPLCONF", b"ip-address", b"a" * 256) == \
        b"-ERR REPLCONF ip-address provided by replica instance is too long: 256 bytes"
    assert c.call(b"REPLCONF", b"ip-address", b"a" * 255) == b"+OK"
    c.send(b"REPLCONF", b"ACK", b"5")  # no reply, as Redis: the PING answers first
    assert c.call(b"PING") == b"+PONG"


def test_psync2_continues_through_replid2(server):
    writer = Peer(server.port)
    replica = Peer(server.port)
    old_id, offset, _ = full_sync(replica)
    replica.send(b"REPLCONF", b"ACK", b"%d" % offset)
    writer.call(b"SET", b"a", b"1")
    state = server.replication
    deadline = time.monotonic() + 10
    while state.master_repl_offset == offset and time.monotonic() < deadline:
        time.sleep(0.01)
    here = state.master_repl_offset
    # A promotion (as the replica side does): new id, the old one as replid2.
    server.loop.call_soon_threadsafe(state.shift_replid)
    while state.replid == old_id and time.monotonic() < deadline:
        time.sleep(0.01)
    sibling = Peer(server.port)
    sibling.call(b"REPLCONF", b"capa", b"psync2")
    assert sibling.call(b"PSYNC", old_id.encode(), b"%d" % (offset + 1)) == \
        b"+CONTINUE %s" % state.replid.encode()
    missed = sibling.exactly(here - offset)
    assert missed.endswith(b"$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n")
    # Past the point where the old history ended: a full resync.
    other = Peer(server.port)
    assert other.call(b"PSYNC", old_id.encode(), b"%d" % (here + 5)).startswith(b"+FULLRESYNC")


def test_continue_sends_each_byte_once(server):
    """A write in the same loop turn as the PSYNC is in the backlog part, not again
    in the live stream."""
    first = Peer(server.port)
    replid, offset, _ = full_sync(first)
    first.send(b"REPLCONF", b"ACK", b"%d" % offset)
    writer = Peer(server.port)
    assert writer.call(b"SET", b"warm", b"1") == b"+OK"
    state = server.replication
    deadline = time.monotonic() + 10
    while state.master_repl_offset == offset and time.monotonic() < deadline:
        time.sleep(0.01)
    here = state.master_repl_offset
    second = Peer(server.port)
    second.sock.sendall(b"*3\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$6\r\npsync2\r\n"
                        b"*3\r\n$3\r\nSET\r\n$1\r\nz\r\n$1\r\n1\r\n"
                        b"*3\r\n$5\r\nPSYNC\r\n$40\r\n%s\r\n$%d\r\n%d\r\n"
                        % (replid.encode(), len(b"%d" % (here + 1)), here + 1))
    assert second.line() == b"+OK" and second.line() == b"+OK"
    assert second.line() == b"+CONTINUE %s" % replid.encode()
    set_z = b"*3\r\n$3\r\nSET\r\n$1\r\nz\r\n$1\r\n1\r\n"
    assert second.exactly(len(set_z)) == set_z
    assert writer.call(b"SET", b"next", b"2") == b"+OK"
    set_next = b"*3\r\n$3\r\nSET\r\n$4\r\nnext\r\n$1\r\n2\r\n"
    assert second.exactly(len(set_next)) == set_next


def test_a_replica_that_never_reads_its_sync_is_cut_off(server):
    """The RDB waits in the child while the socket is full (no memory); the writes
    queued for the replica meanwhile hit its output-buffer limit and end the link."""
    filler = Peer(server.port)
    assert filler.call(b"CONFIG", b"SET", b"client-output-buffer-limit",
                       b"replica 1mb 0 0") == b"+OK"
    for i in range(40):
        assert filler.call(b"SET", b"fill:%d" % i, b"x" * 100_000) == b"+OK"
    lazy = socket.socket()
    lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lazy.connect(("127.0.0.1", server.port))
    lazy.sendall(b"*3\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n"
                 b"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n")
    primary = server.replication.primary
    # Deadlines of their own, and generous: one 10 s deadline for the whole story ran
    # out under PyPy at -n 4 on a loaded host.
    deadline = time.monotonic() + 30
    while not primary.replicas and time.monotonic() < deadline:
        time.sleep(0.01)
    for i in range(30):  # 3 MB written while the sync cannot progress
        assert filler.call(b"SET", b"during:%d" % i, b"y" * 100_000) == b"+OK"
    deadline = time.monotonic() + 30
    while primary.replicas and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not primary.replicas and not primary.jobs  # the child was stopped too
    assert server.stats["client_output_buffer_limit_disconnections"] == 1
    assert filler.call(b"PING") == b"+PONG"
    lazy.close()


def test_replicas_within_the_diskless_delay_share_one_rdb(server):
    server.config.set("repl-diskless-sync-delay", "1")
    Peer(server.port).call(b"SET", b"k", b"v")
    peers = [Peer(server.port) for _ in range(2)]
    for peer in peers:
        peer.send(b"REPLCONF", b"capa", b"eof")
        assert peer.line() == b"+OK"
        peer.send(b"PSYNC", b"?", b"-1")
    heads = [peer.line() for peer in peers]  # sent once the delay passed
    assert heads[0] == heads[1] and heads[0].startswith(b"+FULLRESYNC")
    marks = [peer.line() for peer in peers]
    assert marks[0] == marks[1] and marks[0].startswith(b"$EOF:")  # one child's payload
    payloads = [peer.until(marks[0][5:]) for peer in peers]
    assert payloads[0] == payloads[1]
