"""CacheServer: the listening socket, the event loop, the cron and shutdown.

Usable from the CLI (``distcache server``) and embedded::

    with CacheServer("127.0.0.1", 0) as server:   # port 0: any free port
        print(server.port)
"""
from __future__ import annotations

import asyncio
import collections
import faulthandler
import ipaddress
import logging
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from .. import __version__
from ..config import Config, build_config
from . import commands as _commands  # noqa: F401  (registers every command)
from .commands.table import lookup_table
from .connection import BufferedClient, Client
from .errors import MAX_CLIENTS, PROTECTED_MODE
from .expiry import ActiveExpiry
from .info import rss_bytes
from .keyspace import Keyspace
from .pubsub import subscribed
from .scan import ScanCursors
from .sock_transport import (Attach, SocketListener, attach_socket_transport, attach_to_loop,
                             listening_sockets)

if TYPE_CHECKING:
    from .tls import ServerTLS

log = logging.getLogger("distcache.server")

#: Bytes one read may bring (BufferedClient's shared buffer): asyncio's recv size.
READ_BUFFER_SIZE = 256 * 1024


def _new_event_loop(kind: str, direct: Optional[bool] = None
                    ) -> "tuple[asyncio.AbstractEventLoop, str]":
    # uvloop exists for CPython only (pyproject's markers keep it off PyPy).
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
            return uvloop.new_event_loop(), "uvloop"
        except ImportError:
            if kind == "uvloop":
                raise RuntimeError("event-loop uvloop requested but uvloop is not installed")
    if direct if direct is not None else sys.implementation.name == "pypy":
        # Client sockets' readers run straight from the poll (docs/pypy.md).
        from .pypy_loop import DirectReaderLoop
        return DirectReaderLoop(), "asyncio"
    return asyncio.new_event_loop(), "asyncio"


class CacheServer:
    """A distcache server. Directives are keyword arguments (``maxclients=100``)."""

    def __init__(self, host: Optional[str] = None, port: Optional[int] = None, *,
                 config: Optional[Config] = None, **directives: Any) -> None:
        if config is None:
            config = build_config(environ={}, overrides=directives)
        elif directives:
            config.load_mapping(directives)
        if host is not None:
            config.set("bind", host)
        if port is not None:
            config.set("port", str(port))
        self.config = config
        self.keyspace = Keyspace(config["databases"])
        self.command_table = lookup_table()
        self.clients: Dict[int, Client] = {}
        self.stats: Dict[str, int] = collections.defaultdict(int)
        self.start_time = time.time()
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        #: SIGTERM/SIGINT seen or SHUTDOWN done: no new client, no new command.
        self._stopping = False
        self.loop_kind = "asyncio"
        #: Read clients through one shared buffer (BufferedClient); None: on
        #: PyPy's asyncio loop only, the one where it saves (docs/pypy.md).
        self.buffered_reads: Optional[bool] = None
        self.read_view = memoryview(b"")
        #: Serve plain-TCP clients from the loop's reader callbacks with the
        #: server's own recv_into/send (sock_transport.py) instead of asyncio's
        #: transports; None: on PyPy's asyncio loop only (docs/pypy.md).
        self.socket_io: Optional[bool] = None
        #: Run SocketTransport readers straight from the poll (pypy_loop.py) on
        #: the asyncio loop; None: on PyPy only (docs/pypy.md).
        self.direct_readers: Optional[bool] = None
        self.parser_kind = config["parser"]
        self.port = config["port"]
        #: The TLS port listened on (0: none), and the TLS state when it is on.
        self.tls_port = 0
        self.tls: Optional[ServerTLS] = None
        self.host = config["bind"].split()[0]
        self.loading = False
        #: Any server-wide per-command check is active (loading, memory limit,
        #: writes refused after a persistence error).
        self.gated = False
        self.oom_check: Optional[Callable[[Client], None]] = None
        #: Called after a command is queued in MULTI while maxmemory-clients is on.
        self.multi_check: Optional[Callable[[Client], None]] = None
        #: A replica's checks (READONLY, MASTERDOWN); while set, every client is
        #: ``restricted`` so the dispatcher's gate calls it (replication/replica.py).
        self.replica_gate: Optional[Callable[[Client, Any, List[bytes]], None]] = None
        self.oom_credit = 0  # writes left before the eviction module's next check
        #: Request bytes that may arrive before that check, whatever the count: a
        #: switch to bigger values must not outrun the per-key average.
        self.oom_bytes = 0
        #: The MISCONF error refusing writes and PING while persisting fails (or None).
        self.write_denied: Optional[str] = None
        #: NOREPLICAS while min-replicas-to-write is not met (replication/guard.py):
        #: the gate refuses queueing a write and EXEC of one with it, as Redis.
        self.replicas_refusal: Optional[str] = None
        #: The log or the replication stream is on: each read ends in ``log_read``
        #: (and replies go through ``defer_reply``); with the log they leave only
        #: after its writes are logged (persistence/propagation.py wires them).
        self.before_reply = False
        self.log_read: Callable[[Client, Optional[bytes], List[Any]], None] = _no_log
        self.defer_reply: Callable[[Client], None] = Client.flush
        self.before_reply_hooks: List[Callable[[], None]] = []
        #: time.monotonic() as of the last cron tick: clients' activity stamps
        #: read it instead of the clock (idle times are coarse in Redis too).
        self.clock = time.monotonic()
        #: Called each cron tick (persistence save rules, eviction...).
        self.cron_jobs: List[Callable[[], None]] = []
        #: Called on shutdown with save=True/False/None (None: follow the config).
        self.shutdown_hooks: List[Callable[[Optional[bool]], None]] = []
        self.blocked_clients = 0
        #: Bytes the Lua state and the cached scripts hold (counted in used_memory).
        self.script_memory = 0
        #: (db, key) pairs that may serve blocked clients (types/blocking.py)
        self.ready_keys: List[Any] = []
        self._next_client_id = 0
        self._servers: List[Any] = []  # asyncio.Server or SocketListener
        self._stopped: Optional[asyncio.Event] = None
        self._thread: Optional[threading.Thread] = None
        self._ready = threading.Event()
        self._startup_error: Optional[BaseException] = None
        #: run_server's exit status (1 when loading the dataset failed).
        self.exit_code = 0
        self.expiry = ActiveExpiry(self)
        self.scan_cursors = ScanCursors()
        #: section -> callables returning extra INFO fields (persistence, eviction...).
        self.info_providers: Dict[str, List[Callable[[], Dict[str, Any]]]] = \
            collections.defaultdict(list)
        #: Called after FLUSHALL (snapshots save an empty dataset, as Redis does).
        self.flushall_hooks: List[Callable[[], None]] = []
        #: Called with a client on RESET (drop its MULTI, WATCH, subscriptions).
        self.reset_hooks: List[Callable[[Client], None]] = []
        self.baseline_rss = rss_bytes()
        self._ops_samples: "collections.deque[tuple[float, int]]" = collections.deque(maxlen=16)
        #: Error replies by their first word (INFO errorstats).
        self.error_stats: Dict[str, int] = collections.defaultdict(int)
        self.on_started: List[Callable[["CacheServer"], None]] = []
        #: Called with the names CONFIG SET changed, before it replies; one that
        #: raises ConfigError makes CONFIG SET undo them all (Redis's apply functions).
        self.config_appliers: List[Callable[[List[str]], None]] = []
        #: Called with a directive's name after CONFIG SET changed it.
        self.config_hooks: List[Callable[[str], None]] = []
        #: Called with a client when it disconnects (unwatch, unsubscribe, unblock).
        self.disconnect_hooks: List[Callable[[Client], None]] = []
        self._apply_config()
        from . import acl  # users: the default one, ``user`` lines, ``aclfile``
        self.acl = acl.install(self)
        from . import client_memory, eviction, notify, pubsub, tracking
        from .commands import transactions
        from .scripting import install as _install_scripting  # INFO's script memory
        transactions.install(self)
        _install_scripting(self)
        pubsub.install(self)
        client_memory.install(self)  # CLIENT LIST's memory fields, maxmemory-clients
        eviction.install(self)  # the memory limit (counts the clients' memory)
        from . import pypy_gc  # PyPy: collections paced by the dataset's growth
        pypy_gc.install(self)
        from . import monitoring, pause  # CLIENT PAUSE; MONITOR, SLOWLOG, LATENCY
        pause.install(self)
        monitoring.install(self)
        notify.install(self)  # keyspace events (after eviction: see Keyspace.hook)
        tracking.install(self)  # client-side caching: CLIENT TRACKING's invalidations
        from .types.stream_node import install as _install_streams  # stream-node-max-*
        _install_streams(self)
        from .replication import install as _install_replication  # ids, offsets, role
        _install_replication(self)
        from ..persistence import install as _install_persistence  # log, snapshots, loading
        self.persistence = _install_persistence(self)

    # -- configuration ------------------------------------------------------------

    def _apply_config(self) -> None:
        self.query_buffer_limit = self.config["client-query-buffer-limit"]
        #: Query buffers above this are checked after each read: the query buffer
        #: limit, or less while maxmemory-clients is on (client_memory.py lowers it).
        self.query_check = self.query_buffer_limit
        self.hz = self.config["hz"]

    def config_changed(self, name: str) -> None:
        """Called by CONFIG SET after a directive changed."""
        self._apply_config()
        if name == "requirepass":
            self.acl.set_requirepass(self.config["requirepass"])
            return
        for hook in self.config_hooks:
            hook(name)

    # -- statistics -----------------------------------------------------------------

    def used_memory(self) -> int:
        """Estimated dataset memory; the eviction module may replace this."""
        return max(0, rss_bytes() - self.baseline_rss) or 1024 * 1024

    def ops_per_sec(self) -> int:
        samples = self._ops_samples
        if len(samples) < 2:
            return 0
        (t0, n0), (t1, n1) = samples[0], samples[-1]
        return int((n1 - n0) / (t1 - t0)) if t1 > t0 else 0

    def pubsub_counts(self) -> "tuple[int, int, int]":
        """(channels, patterns, shard channels) with subscribers; the pub/sub module
        replaces this."""
        return 0, 0, 0

    def reset_stats(self) -> None:
        self.stats.clear()
        self.error_stats.clear()
        ks = self.keyspace
        ks.hits = ks.misses = ks.expired_keys = ks.evicted_keys = 0
        if self.monitoring.histograms:  # LATENCY HISTOGRAM's, as Redis's RESETSTAT
            self.monitoring.histograms.clear()
        for spec in set(self.command_table.values()):
            spec.calls = spec.failed = 0
            for sub in spec.subcommands.values():
                sub.calls = sub.failed = 0

    # -- clients ------------------------------------------------------------------

    def next_client_id(self) -> int:
        self._next_client_id += 1
        return self._next_client_id

    def admission_error(self, client: Client, peer: Any) -> Optional[str]:
        """Why a new connection is refused (shutting down, maxclients, protected mode)."""
        if self._stopping:
            return "ERR the server is shutting down"
        if len(self.clients) >= self.config["maxclients"]:
            return MAX_CLIENTS
        if self.config["protected-mode"] and "nopass" in self.acl.default.flags and peer:
            try:
                if not ipaddress.ip_address(peer[0]).is_loopback:
                    return PROTECTED_MODE
            except ValueError:
                pass
        return None

    def client_gone(self, client: Client) -> None:
        if self.clients.pop(client.id, None) is not None:
            for hook in self.disconnect_hooks:
                hook(client)
            if client.blocked:
                client.blocked = False
                self.blocked_clients -= 1

    def run_before_reply(self) -> None:
        for hook in self.before_reply_hooks:
            hook()

    # -- lifecycle ----------------------------------------------------------------

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        hosts = self.config["bind"].split()
        port, tls_port = self.config["port"], self.config["tls-port"]
        tls = None
        if tls_port:
            from .tls import ServerTLS  # here: a server without TLS never loads it
            tls = self.tls = ServerTLS(self)
            tls.configure()  # a bad certificate stops the start, as in Redis
            self.config_appliers.append(tls.apply)
        try:
            # port 0 picks a free port, unless TLS is on: then, as in Redis, it
            # means no plain-text port (and tls-port auto picks a free one).
            if port or not tls_port:
                client_class = self._client_class()
                factory = lambda: client_class(self)  # noqa: E731
                attach = (attach_socket_transport(loop, self.read_view) if self._use_socket_io()
                          else attach_to_loop(loop))
                self.port = self._listen_sockets(hosts, port, factory, attach)
            else:
                self.port = 0
            if tls is not None:
                self.tls_port = await self._listen(hosts, max(tls_port, 0), tls.protocol)
        except BaseException:
            for server in self._servers:
                server.close()
            raise
        for hook in self.on_started:
            hook(self)
        log.info("distcache %s ready: port %d, tls-port %d, bind %s, event loop %s, "
                 "parser %s, pid %d", __version__, self.port, self.tls_port,
                 " ".join(hosts), self.loop_kind, self._parser_name(), os.getpid())
        self._ready.set()
        cron = loop.create_task(self._cron())
        try:
            await self._stopped.wait()
        finally:
            cron.cancel()
            for server in self._servers:
                server.close()
            handshakes = tls.close() if tls is not None else []
            for client in list(self.clients.values()):
                client.close_now()
            for server in self._servers:
                await server.wait_closed()
            self._servers.clear()
            await asyncio.gather(*handshakes, return_exceptions=True)

    async def _listen(self, hosts: List[str], port: int,
                      factory: Callable[[], asyncio.Protocol]) -> int:
        """Listen on ``port`` at every address with the loop's own server (the TLS
        port); returns the port (0: the one picked)."""
        loop = asyncio.get_running_loop()
        for host in hosts:
            host = host.lstrip("-")  # redis.conf's "-::1" means "optional"
            server = await loop.create_server(factory, host, port,
                                              backlog=self.config["tcp-backlog"],
                                              reuse_address=True)
            self._servers.append(server)
            if not port:  # port 0: every address shares the first one picked
                port = server.sockets[0].getsockname()[1]
        return port

    def _listen_sockets(self, hosts: List[str], port: int, factory: Callable[[], Client],
                        attach: Attach) -> int:
        """``_listen`` for the plain-text port: the server's own accept, so a client
        exists from the moment its socket is accepted (see sock_transport)."""
        loop = asyncio.get_running_loop()
        backlog = self.config["tcp-backlog"]
        for host in hosts:
            for sock in listening_sockets(host.lstrip("-"), port, backlog):
                self._servers.append(SocketListener(loop, sock, factory, attach, backlog))
                if not port:
                    port = sock.getsockname()[1]
        return port

    def _use_socket_io(self) -> bool:
        if self.socket_io is not None:
            return self.socket_io
        return self.loop_kind == "asyncio" and sys.implementation.name == "pypy"

    def _client_class(self) -> "type[Client]":
        """BufferedClient where reads go through the shared buffer, else Client."""
        if self._use_socket_io():
            # SocketTransport reads into the shared buffer and calls data_received.
            self.read_view = memoryview(bytearray(READ_BUFFER_SIZE))
            return Client
        buffered = self.buffered_reads
        if buffered is None:
            # uvloop reads into its own buffer; CPython's recv frees what it
            # allocates at once (the buffered path measured the same there).
            buffered = self.loop_kind == "asyncio" and sys.implementation.name == "pypy"
        if not buffered:
            return Client
        self.read_view = memoryview(bytearray(READ_BUFFER_SIZE))
        return BufferedClient

    def _parser_name(self) -> str:
        from ..protocol import parser_name
        return parser_name(self.parser_kind)

    async def _cron(self) -> None:
        while True:
            await asyncio.sleep(1.0 / self.hz)
            self.clock = time.monotonic()
            try:
                self._ops_samples.append((self.clock,
                                          self.stats["total_commands_processed"]))
                self.tracking.current = None  # no client's command runs in the cron
                self.expiry.cycle()
                self._close_idle_clients()
                for job in self.cron_jobs:
                    job()
            except Exception:  # the cron must keep running
                log.exception("cron job failed")

    def _close_idle_clients(self) -> None:
        timeout = self.config["timeout"]
        if not timeout:
            return
        deadline = time.monotonic() - timeout
        for client in list(self.clients.values()):
            if client.last_active < deadline and not client.blocked \
                    and not subscribed(client):
                client.close_now()

    def _run(self, install_signals: bool) -> None:
        loop, self.loop_kind = _new_event_loop(self.config["event-loop"], self.direct_readers)
        self.loop = loop
        asyncio.set_event_loop(loop)
        if install_signals:
            self._install_signal_handlers(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            raise
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                asyncio.set_event_loop(None)

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> None:
        # signal.signal rather than loop.add_signal_handler: a Python handler runs
        # in the main thread between two bytecodes, even in the middle of a long
        # command or a long pipelined read, where a loop callback would wait.
        for signame in ("SIGTERM", "SIGINT"):
            sig = getattr(signal, signame, None)
            if sig is not None:
                signal.signal(sig, lambda _signum, _frame, name=signame:
                              self._signal_arrived(name))

    def _signal_arrived(self, signame: str) -> None:
        """SIGTERM/SIGINT, possibly in the middle of a command: stop at the next one.

        Every client is marked closing, so a read being run stops after its
        current command (the dispatcher checks that flag after each one); the
        shutdown itself runs from the loop. If no command boundary comes within
        ``shutdown-deadline`` seconds, the process exits at once as after a
        kill -9: the log holds every write whose reply was sent.
        """
        if self._stopping:
            return
        self._stop_clients()
        deadline = self.config["shutdown-deadline"]
        if deadline:
            faulthandler.dump_traceback_later(deadline, exit=True)
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_signal, signame)

    def _on_signal(self, signame: str) -> None:
        # Back in the loop: the command that was running has ended, so the final
        # save may take as long as the dataset needs.
        faulthandler.cancel_dump_traceback_later()
        log.warning("received %s, shutting down", signame)
        flags = self.config["shutdown-on-" + signame.lower()]
        self.shutdown(True if "save" in flags else False if "nosave" in flags else None)

    def serve_forever(self) -> None:
        """Run in the calling thread until SHUTDOWN, SIGTERM or SIGINT."""
        self._run(install_signals=threading.current_thread() is threading.main_thread())

    def start(self, timeout: float = 10.0) -> "CacheServer":
        """Run in a background thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self._run, args=(False,),
                                        name="distcache-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("server did not start in time")
        if self._startup_error is not None:
            raise self._startup_error
        return self

    def shutdown(self, save: Optional[bool] = None, raise_errors: bool = False) -> None:
        """Stop serving (from inside the loop); persistence hooks run first.

        With ``raise_errors`` a failing hook (a final save that failed) aborts
        the shutdown, as Redis's SHUTDOWN does.
        """
        for hook in self.shutdown_hooks:
            try:
                hook(save)
            except Exception:
                log.exception("shutdown hook failed")
                if raise_errors:
                    raise
        self._stop_clients()
        if self._stopped is not None:
            self._stopped.set()

    def _stop_clients(self) -> None:
        """From now on, run no command: between the decision to stop and the loop
        closing the sockets, a new client or a queued read could keep it busy."""
        self._stopping = True
        for client in list(self.clients.values()):
            client.closing = True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop a server started with :meth:`start` (thread-safe)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self.shutdown)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> "CacheServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def _no_log(client: Client, data: Optional[bytes], commands: List[Any]) -> None:
    client.flush()


def run_server(argv: List[str]) -> int:
    """Entry point of ``distcache server``."""
    from ..config import ConfigError
    try:
        config = build_config(argv)
    except (ConfigError, OSError) as exc:
        print(f"distcache: {exc}", file=sys.stderr)
        return 1
    _setup_logging(config)
    try:
        server = CacheServer(config=config)
    except ConfigError as exc:  # e.g. a bad ACL file or user line
        print(f"distcache: {exc}", file=sys.stderr)
        return 1
    try:
        server.serve_forever()
    except (OSError, ConfigError) as exc:  # a port in use, a TLS certificate that fails
        log.error("could not start: %s", exc)
        return 1
    except KeyboardInterrupt:
        pass
    return server.exit_code


def _setup_logging(config: Config) -> None:
    level = {"debug": logging.DEBUG, "verbose": logging.INFO, "notice": logging.INFO,
             "warning": logging.WARNING, "nothing": logging.CRITICAL}[config["loglevel"]]
    handler: logging.Handler
    if config["logfile"]:
        handler = logging.FileHandler(config["logfile"])
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"{os.getpid()}:M %(asctime)s %(levelname)s "
                                           "%(name)s: %(message)s", "%d %b %Y %H:%M:%S"))
    root = logging.getLogger("distcache")
    root.handlers[:] = [handler]
    root.setLevel(level)
