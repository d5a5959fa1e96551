"""TLS: the server's SSL context, built from the ``tls-*`` directives, and the
handshake every connection to a TLS port goes through.

The TLS port's listener is a plain TCP server whose connections are upgraded
with ``loop.start_tls`` (the standard library's ``ssl`` module, under uvloop's
or asyncio's TLS transport). Doing the handshake ourselves, instead of passing
``ssl=`` to ``create_server``, is what lets a ``CONFIG SET tls-cert-file`` swap
the context for new connections, lets a failed handshake be logged at debug
level and dropped (a plain-text client on the TLS port is no error worth a
traceback), and bounds how long a handshake may take and how many may be
pending at once. A client only exists once its handshake is done.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING, Any, Collection, List, Optional, Set, Tuple

from ..config import Config, ConfigError
from .connection import Client, _format_addr

if TYPE_CHECKING:
    from .app import CacheServer

log = logging.getLogger("distcache.server")

#: tls-protocols names (any case) and their versions, lowest first.
_VERSIONS = {"tlsv1": ssl.TLSVersion.TLSv1, "tlsv1.1": ssl.TLSVersion.TLSv1_1,
             "tlsv1.2": ssl.TLSVersion.TLSv1_2, "tlsv1.3": ssl.TLSVersion.TLSv1_3}
#: Redis's default when tls-protocols is empty.
_DEFAULT_VERSIONS = ("tlsv1.2", "tlsv1.3")
_VERIFY = {"no": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "yes": ssl.CERT_REQUIRED}
#: Directives whose change rebuilds the context (tls-port is fixed at start).
RELOADED = frozenset(["tls-cert-file", "tls-key-file", "tls-key-file-pass",
                      "tls-ca-cert-file", "tls-ca-cert-dir", "tls-dh-params-file",
                      "tls-auth-clients", "tls-protocols", "tls-ciphers", "tls-ciphersuites",
                      "tls-prefer-server-ciphers", "tls-session-caching",
                      "tls-session-cache-size", "tls-session-cache-timeout"])
#: CONFIG SET's reason when the new context cannot be built (Redis's text).
RELOAD_FAILED = "Unable to update TLS configuration. Check server logs."


class TLSConfigError(ConfigError):
    """The tls-* directives do not make a usable context (the reason is the message)."""


def protocol_range(text: str) -> Tuple[ssl.TLSVersion, ssl.TLSVersion]:
    """``"TLSv1.2 TLSv1.3"`` -> (lowest, highest) version allowed.

    The ssl module sets a range, not a set: ``TLSv1 TLSv1.3`` allows the two
    versions between them too.
    """
    names = text.split() or list(_DEFAULT_VERSIONS)
    versions = []
    for name in names:
        version = _VERSIONS.get(name.lower())
        if version is None:
            raise TLSConfigError("Invalid tls-protocols specified. Use a combination of "
                                 "'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'.")
        versions.append(version)
    return min(versions), max(versions)


def build_context(config: Config) -> ssl.SSLContext:
    """A server context from the tls-* directives; raises TLSConfigError.

    The checks and their messages are Redis's (tls.c, tlsConfigure).
    """
    cert, key = config["tls-cert-file"], config["tls-key-file"]
    ca_file, ca_dir = config["tls-ca-cert-file"], config["tls-ca-cert-dir"]
    if not cert:
        raise TLSConfigError("No tls-cert-file configured!")
    if not key:
        raise TLSConfigError("No tls-key-file configured!")
    if config["tls-auth-clients"] != "no" and not ca_file and not ca_dir:
        raise TLSConfigError("Either tls-ca-cert-file or tls-ca-cert-dir must be specified "
                             "when tls-cluster, tls-replication or tls-auth-clients are "
                             "enabled!")
    low, high = protocol_range(config["tls-protocols"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.minimum_version, ctx.maximum_version = low, high
    except ValueError as exc:  # a version this OpenSSL was built without
        raise TLSConfigError(f"tls-protocols: {exc}") from None
    _load(ctx.load_cert_chain, f"Failed to load certificate or key: {cert}, {key}",
          cert, key, password=config["tls-key-file-pass"] or None)
    if ca_file or ca_dir:
        _load(ctx.load_verify_locations, "Failed to configure CA certificate(s) file/directory",
              cafile=ca_file or None, capath=ca_dir or None)
    if config["tls-dh-params-file"]:
        _load(ctx.load_dh_params, f"Failed to load DH params file: "
              f"{config['tls-dh-params-file']}", config["tls-dh-params-file"])
    if config["tls-ciphers"]:
        _load(ctx.set_ciphers, f"Failed to configure ciphers: {config['tls-ciphers']}",
              config["tls-ciphers"])
    ctx.verify_mode = _VERIFY[config["tls-auth-clients"]]
    # The ssl module prefers the server's cipher order by default; Redis does not.
    if config["tls-prefer-server-ciphers"]:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    # As Redis: no client-initiated renegotiation (a cheap way to burn server CPU).
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    if not config["tls-session-caching"]:
        # What the ssl module can turn off: tickets (TLSv1.2) and TLSv1.3's
        # session tickets. OpenSSL's session-id cache for TLSv1.2 stays.
        ctx.options |= ssl.OP_NO_TICKET
        ctx.num_tickets = 0
    return ctx


def _load(fn: Any, what: str, *args: Any, **kwargs: Any) -> None:
    try:
        fn(*args, **kwargs)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise TLSConfigError(f"{what}: {exc}") from None


class ServerTLS:
    """The TLS side of one server: its context, its pending handshakes."""

    def __init__(self, server: "CacheServer") -> None:
        self.server = server
        self.context: Optional[ssl.SSLContext] = None
        #: Connections whose handshake is under way.
        self.pending: Set["_Handshake"] = set()
        self.tasks: Set["asyncio.Task[None]"] = set()

    def configure(self) -> None:
        """Build the context now (startup); raises TLSConfigError."""
        self.context = build_context(self.server.config)
        if self.server.config["tls-ciphersuites"]:
            log.warning("tls-ciphersuites cannot be applied (the ssl module has no "
                        "setting for TLSv1.3 suites): OpenSSL's defaults are used")

    def apply(self, names: Collection[str]) -> None:
        """CONFIG SET hook: rebuild the context for new connections if any
        tls-* directive changed (the same file names re-read the files, as in
        Redis, so a certificate is rotated in place). Raising undoes the SET."""
        first = next((name for name in names if name in RELOADED), None)
        if first is None:
            return
        try:
            self.configure()
        except TLSConfigError as exc:
            log.warning("Failed applying new TLS configuration: %s", exc)
            raise ConfigError(str(exc), f"ERR CONFIG SET failed (possibly related to "
                                        f"argument '{first}') - {RELOAD_FAILED}") from None
        log.info("TLS configuration reloaded")

    def protocol(self) -> asyncio.Protocol:
        """The protocol factory of a TLS listener."""
        return _Handshake(self)

    async def handshake(self, pending: "_Handshake", transport: asyncio.Transport) -> None:
        server = self.server
        loop = asyncio.get_running_loop()
        if not pending.lost:
            # Python 3.9's selector transport adds its reader after
            # connection_made whatever pause_reading said there (later
            # versions check): pausing again now takes effect everywhere.
            transport.resume_reading()
            transport.pause_reading()
        # Runs once start_tls has handed the socket to its TLS protocol and
        # before it resumes reading (callbacks run in order).
        loop.call_soon(pending.hand_over_early_bytes, transport)
        try:
            tls_transport = await loop.start_tls(
                transport, pending, self.context, server_side=True,  # type: ignore[arg-type]
                ssl_handshake_timeout=server.config["tls-handshake-timeout"])
        except (OSError, EOFError, asyncio.TimeoutError) as exc:
            # A plain-text client, a refused certificate, a timeout, a reset:
            # the connection goes, the server carries on.
            log.debug("TLS handshake with %s failed: %r", pending.addr, exc)
            transport.abort()
            return
        except Exception:  # not a network failure: a bug worth a traceback
            log.warning("TLS handshake with %s failed", pending.addr, exc_info=True)
            transport.abort()
            return
        finally:
            self.pending.discard(pending)
        if pending.lost:  # gone between the handshake and now
            return
        client = Client(server)
        tls_transport.set_protocol(client)
        client.connection_made(tls_transport)
        if client.closed:  # refused (maxclients, protected mode)
            return
        if pending.data:
            client.data_received(b"".join(pending.data))
        if pending.eof and not client.eof_received():
            tls_transport.close()

    def close(self) -> List["asyncio.Task[None]"]:
        """Abort pending handshakes (shutdown); returns their tasks to await."""
        for pending in list(self.pending):
            if pending.transport is not None:
                pending.transport.abort()
        return list(self.tasks)


class _Handshake(asyncio.Protocol):
    """A TLS connection until its handshake is done.

    Between the end of the handshake and the hand-over to a Client (the next
    loop iteration), the TLS transport may already deliver data: it is kept
    here and replayed, so nothing is lost or read out of order.
    """

    def __init__(self, tls: ServerTLS) -> None:
        self.tls = tls
        self.transport: Optional[asyncio.Transport] = None
        self.addr = "?"
        self.data: List[bytes] = []
        self.eof = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tls, server = self.tls, self.tls.server
        self.transport = transport  # type: ignore[assignment]
        self.addr = _format_addr(transport.get_extra_info("peername"))
        # Handshakes count against maxclients: unfinished ones must not pile up.
        if len(tls.pending) + len(server.clients) >= server.config["maxclients"]:
            server.stats["rejected_connections"] += 1
            transport.abort()  # type: ignore[attr-defined]
            return
        # The ClientHello should stay in the socket until start_tls takes over;
        # uvloop starts reading after connection_made all the same, so what
        # arrives before is handed over (hand_over_early_bytes).
        transport.pause_reading()  # type: ignore[attr-defined]
        tls.pending.add(self)
        task = asyncio.get_running_loop().create_task(
            tls.handshake(self, transport))  # type: ignore[arg-type]
        tls.tasks.add(task)
        task.add_done_callback(tls.tasks.discard)

    def hand_over_early_bytes(self, transport: asyncio.Transport) -> None:
        """Give the TLS protocol the raw bytes that reached us before it existed."""
        early, self.data = self.data, []
        if self.eof:  # half-closed before the handshake: it can never finish
            transport.abort()
            return
        proto = transport.get_protocol()
        if early and not hasattr(proto, "buffer_updated"):
            # Python < 3.11's SSLProtocol drops data until its connection_made,
            # which start_tls scheduled after this: feed it one turn later,
            # still before the socket is read again.
            asyncio.get_running_loop().call_soon(_feed_all, proto, early)
            return
        _feed_all(proto, early)

    def data_received(self, data: bytes) -> None:
        self.data.append(data)

    def eof_received(self) -> bool:
        self.eof = True
        return True  # the Client decides, once it has the connection

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.lost = True


def _feed_all(proto: Any, chunks: List[bytes]) -> None:
    for chunk in chunks:
        _feed(proto, chunk)


def _feed(proto: Any, data: bytes) -> None:
    """Deliver ``data`` as the transport would (the TLS protocols are buffered)."""
    if not hasattr(proto, "buffer_updated"):
        proto.data_received(data)
        return
    view = memoryview(data)
    while view:
        buf = proto.get_buffer(len(view))
        n = min(len(buf), len(view))
        buf[:n] = view[:n]
        proto.buffer_updated(n)
        view = view[n:]
