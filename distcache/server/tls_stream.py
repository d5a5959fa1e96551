"""One TLS connection: the ``ssl`` module's memory BIOs over a plain transport.

``TLSStream`` is the protocol of the raw TCP transport and, once the handshake
is done, the transport its :class:`~distcache.server.connection.Client` writes
to. It replaces ``loop.start_tls`` (uvloop's or asyncio's SSL protocol) so that a
loop turn's TLS work can be grouped (:class:`Batch`): reads are decrypted as
they come, then the Clients run, then each connection's replies are encrypted
in one record write. Interleaving OpenSSL's large record code with every
client's Python evicted the interpreter's code from the CPU caches; grouped,
TLS at -P 16 costs about 2 us less CPU a request (docs/benchmarks.md, "TLS
record path"). A read is one BIO write and one ``read`` per record, sized to the
ciphertext at hand (no 256 KB buffer per record); the exception-raising
``SSLWantReadError`` path is only taken for a record split across TCP reads.

Behaviour is the one the SSL protocols gave: a handshake bounded by
``tls-handshake-timeout`` and counted against ``maxclients`` while pending, a
failed one logged at debug level and the connection aborted without a reply, a
``close_notify`` from the client ends the connection after the data before it,
``close()`` sends ``close_notify`` then closes once the output is flushed.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING, Any, List, Optional

from .connection import Client, _format_addr

if TYPE_CHECKING:
    from .tls import ServerTLS

log = logging.getLogger("distcache.server")

#: Read size when OpenSSL holds decrypted bytes but the BIO is empty (a record's
#: plaintext is at most 16 KB).
_PLAIN_MAX = 16384 + 256


class TLSStream(asyncio.Protocol):
    """Handshake, then decrypt reads into a Client and encrypt its writes."""

    def __init__(self, tls: "ServerTLS") -> None:
        self.tls = tls
        self.raw: Optional[asyncio.Transport] = None
        self.client: Optional[Client] = None
        self.addr = "?"
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        context = tls.context
        assert context is not None
        self.ssl_object = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        # The C object under ssl.SSLObject: its methods without a Python frame
        # each (the wrapper's methods only forward).
        inner = getattr(self.ssl_object, "_sslobj", self.ssl_object)
        self._read = inner.read
        self._write = inner.write
        self._pending = inner.pending
        self._inner = inner
        self.timer: Optional[asyncio.TimerHandle] = None
        self.closed = False  # close() or abort() called
        self.reading_paused = False
        #: Plaintext decrypted and not yet handed to the Client (this loop turn's).
        self.inbox: List[bytes] = []
        self.eof = False  # close_notify read: the Client is told after the inbox
        #: Replies not yet encrypted (written at the end of this loop turn).
        self.out: List[bytes] = []
        self.out_size = 0
        self.queued = False  # in the batch's list of streams with plaintext

    # -- the raw transport's protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tls, server = self.tls, self.tls.server
        self.raw = transport  # type: ignore[assignment]
        self.addr = _format_addr(transport.get_extra_info("peername"))
        # Handshakes count against maxclients: unfinished ones must not pile up.
        if len(tls.pending) + len(server.clients) >= server.config["maxclients"]:
            server.stats["rejected_connections"] += 1
            self.closed = True
            transport.abort()  # type: ignore[attr-defined]
            return
        tls.pending.add(self)
        self.timer = asyncio.get_running_loop().call_later(
            server.config["tls-handshake-timeout"], self._handshake_failed,
            asyncio.TimeoutError("handshake timed out"))

    def data_received(self, data: bytes) -> None:
        if self.closed:  # bytes already read when the connection was closed
            return
        self.incoming.write(data)
        if self.client is None:
            self._handshake()
        elif not self.reading_paused:
            self._decrypt()

    def eof_received(self) -> Optional[bool]:
        # A TCP end without close_notify: as the SSL protocols do, not an end of
        # stream the client is told about; the connection just goes (during the
        # handshake too, which can never finish now).
        if self.client is None:
            self._handshake_failed(EOFError("EOF during the handshake"))
        else:
            self.close()
        return None

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed = True
        self._stop_timer()
        self.tls.pending.discard(self)
        if self.client is not None:
            self.client.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.client is not None:
            self.client.pause_writing()

    def resume_writing(self) -> None:
        if self.client is not None:
            self.client.resume_writing()

    # -- handshake --------------------------------------------------------------------

    def _handshake(self) -> None:
        try:
            self._inner.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except (OSError, EOFError) as exc:  # ssl.SSLError is an OSError
            # A plain-text client, a refused certificate, a reset: the
            # connection goes, the server carries on.
            self._handshake_failed(exc)
            return
        except Exception:  # not a network failure: a bug worth a traceback
            log.warning("TLS handshake with %s failed", self.addr, exc_info=True)
            self._drop()
            return
        self._flush()  # the last handshake messages and session tickets
        self._stop_timer()
        self.tls.pending.discard(self)
        client = self.client = Client(self.tls.server)
        client.connection_made(self)
        if client.closed:  # refused (maxclients, protected mode)
            return
        if self.incoming.pending and not self.closed:  # requests sent with the Finished
            self._decrypt()

    def _handshake_failed(self, exc: BaseException) -> None:
        log.debug("TLS handshake with %s failed: %r", self.addr, exc)
        self._drop()

    def _drop(self) -> None:
        self._stop_timer()
        self.tls.pending.discard(self)
        self.abort()

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # -- records ----------------------------------------------------------------------

    def _decrypt(self) -> None:
        """Decrypt every whole record into the inbox; the Client gets it in the
        batch's next pass (Batch.run)."""
        incoming, read, pending = self.incoming, self._read, self._pending
        inbox = self.inbox
        try:
            while True:
                size = incoming.pending
                if not size:
                    # The BIO is empty; OpenSSL may still hold plaintext of a
                    # record read in part before.
                    size = pending()
                    if not size:
                        break
                chunk = read(size if size > 1024 else 1024)
                if not chunk:  # close_notify
                    self.eof = True
                    break
                inbox.append(chunk)
        except ssl.SSLWantReadError:  # a record not whole yet, or a handshake message
            pass
        except (OSError, EOFError) as exc:  # a bad record: as the SSL protocols, fatal
            log.debug("TLS connection with %s failed: %r", self.addr, exc)
            self.abort()
            return
        if self.outgoing.pending:  # alerts or key updates OpenSSL answered
            self._flush()
        if (inbox or self.eof) and not self.queued:
            self.tls.batch.arrived(self)

    def deliver(self) -> None:
        """Hand the Client what was decrypted (the batch's Python pass)."""
        if self.closed or self.reading_paused:
            return  # resume_reading queues it again
        inbox, client = self.inbox, self.client
        assert client is not None
        if inbox:
            data = inbox[0] if len(inbox) == 1 else b"".join(inbox)
            inbox.clear()
            client.data_received(data)
        if self.eof and not self.closed and not self.reading_paused:
            self.eof = False
            if not client.eof_received():
                self.close()

    def send(self) -> None:
        """Encrypt the replies written this turn into one write (the batch's last pass)."""
        out = self.out
        if not out:
            return
        if self.closed:  # gone meanwhile: nothing to send to
            out.clear()
            self.out_size = 0
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self.out_size = 0
        try:
            self._write(data)
        except (OSError, ValueError) as exc:  # SSL state broken: nothing can be sent
            log.debug("TLS write to %s failed: %r", self.addr, exc)
            self.abort()
            return
        self.raw.write(self.outgoing.read())  # type: ignore[union-attr]

    def _flush(self) -> None:
        if self.outgoing.pending and self.raw is not None:
            self.raw.write(self.outgoing.read())

    # -- the Client's transport -------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.closed or not data:
            return
        if not self.out:
            self.tls.batch.written(self)
        self.out.append(data)
        self.out_size += len(data)

    def writelines(self, data: Any) -> None:
        self.write(b"".join(data))

    def close(self) -> None:
        """Send close_notify, then close once the output is written."""
        if self.closed:
            return
        if self.client is not None:
            self.send()  # the replies before the close
        self.closed = True
        if self.client is not None:
            try:
                self._inner.shutdown()
            except (OSError, ValueError):  # WantRead (the peer's notify is not awaited)
                pass
            self._flush()
        self.raw.close()  # type: ignore[union-attr]

    def abort(self) -> None:
        self.closed = True
        if self.raw is not None:
            self.raw.abort()

    def is_closing(self) -> bool:
        return self.closed or self.raw is None or self.raw.is_closing()

    def pause_reading(self) -> None:
        if not self.reading_paused:
            self.reading_paused = True
            self.raw.pause_reading()  # type: ignore[union-attr]

    def resume_reading(self) -> None:
        if self.reading_paused:
            self.reading_paused = False
            self.raw.resume_reading()  # type: ignore[union-attr]
            if self.inbox or self.eof or self.incoming.pending or self._pending():
                # Records read before the pause: delivered next, as the
                # transport would deliver a read.
                asyncio.get_running_loop().call_soon(self._resume_decrypt)

    def _resume_decrypt(self) -> None:
        if not (self.closed or self.reading_paused):
            self._decrypt()

    def is_reading(self) -> bool:
        return not self.reading_paused

    def get_write_buffer_size(self) -> int:
        return self.raw.get_write_buffer_size() + self.out_size  # type: ignore[union-attr]

    def set_write_buffer_limits(self, high: Optional[int] = None,
                                low: Optional[int] = None) -> None:
        self.raw.set_write_buffer_limits(high, low)  # type: ignore[union-attr]

    def can_write_eof(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self.ssl_object
        if name == "peercert":
            return self.ssl_object.getpeercert()
        if name == "cipher":
            return self.ssl_object.cipher()
        if name == "sslcontext":
            return self.ssl_object.context
        return self.raw.get_extra_info(name, default)  # type: ignore[union-attr]

    def set_protocol(self, protocol: Any) -> None:
        self.client = protocol

    def get_protocol(self) -> Any:
        return self.client


class Batch:
    """One loop turn's TLS work, grouped by kind.

    OpenSSL's record code is large: run between two clients' Python work it
    evicts the interpreter's code from the instruction cache, and both pay for
    it again on every read (docs/benchmarks.md, "TLS record path"). So the
    streams decrypt as their reads come in, the Clients then run one after the
    other (``run``, one ``call_soon`` a turn), and the replies they wrote are
    encrypted last, each stream's in one record write.
    """

    def __init__(self) -> None:
        self.ready: List[TLSStream] = []  # streams with plaintext for their Client
        self.dirty: List[TLSStream] = []  # streams with replies to encrypt
        self.scheduled = False

    def arrived(self, stream: TLSStream) -> None:
        stream.queued = True
        self.ready.append(stream)
        if not self.scheduled:
            self._schedule()

    def written(self, stream: TLSStream) -> None:
        self.dirty.append(stream)
        if not self.scheduled:
            self._schedule()

    def _schedule(self) -> None:
        self.scheduled = True
        asyncio.get_running_loop().call_soon(self.run)

    def run(self) -> None:
        self.scheduled = False
        ready, self.ready = self.ready, []
        for stream in ready:
            stream.queued = False
            stream.deliver()
        dirty, self.dirty = self.dirty, []
        for stream in dirty:
            stream.send()
