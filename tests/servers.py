"""Real server processes for tests: distcache and, when installed, redis-server.

Each server gets a free loopback port and its own temp directory. Readiness
is polled with a deadline (no fixed sleeps).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, List, Optional

ROOT = Path(__file__).resolve().parent.parent
PYPY = sys.implementation.name == "pypy"


#: Test servers' ports: below the kernel's ephemeral range (32768-60999 here), so no
#: outgoing connection is ever given one, and handed out in turn from one cursor that
#: every test process on the host shares (a locked file): a port a test stopped a
#: server on is not handed to another test, of this run or of one beside it, until
#: the cursor has gone round (12,000 ports later), so a restart on the same port finds
#: it free. (A port 0 bind, the kernel's pick, could hand it straight to another
#: worker: a restarted server's port was once taken by a parallel test's sentinel.)
PORTS = range(20000, 32000)
_CURSOR = Path(os.environ.get("TMPDIR", "/tmp")) / "distcache-test-port-cursor"


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free loopback port (see PORTS)."""
    try:
        import fcntl
    except ImportError:  # (not on Windows: the kernel's pick)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    with open(_CURSOR, "a+") as cursor:
        fcntl.flock(cursor, fcntl.LOCK_EX)
        cursor.seek(0)
        text = cursor.read().strip()
        last = int(text) if text.isdigit() else PORTS.start + os.getpid() % len(PORTS)
        for step in range(1, len(PORTS) + 1):
            port = PORTS.start + (last - PORTS.start + step) % len(PORTS)
            if _bindable(port):
                cursor.seek(0)
                cursor.truncate()
                cursor.write(str(port))
                cursor.flush()
                return port
    raise RuntimeError("no free port for a test server")


def free_ports(count: int) -> List[int]:
    """``count`` distinct free ports."""
    return [free_port() for _ in range(count)]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
               message: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy, with a deadline; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not reached within {timeout}s")
        time.sleep(interval)


def wait_for_ping(port: int, deadline: float, proc: Optional[subprocess.Popen] = None,
                  password: Optional[str] = None, ssl_context: Any = None) -> None:
    """Poll until the server on ``port`` answers (+PONG or an auth error);
    over TLS with ``ssl_context``."""
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                sock = (ssl_context.wrap_socket(raw, server_hostname="127.0.0.1")
                        if ssl_context is not None else raw)
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                reply = sock.recv(64)
                if reply.startswith((b"+PONG", b"-NOAUTH", b"-LOADING")):
                    if not reply.startswith(b"-LOADING"):
                        return
        except OSError as exc:
            last = exc
        time.sleep(0.02)
    raise TimeoutError(f"server on port {port} did not answer in time: {last}")


class ServerProcess:
    """A server in a child process; use as a context manager or call stop()."""

    def __init__(self, argv: List[str], port: int, workdir: Path,
                 env: Optional[dict] = None, password: Optional[str] = None,
                 ssl_context: Any = None) -> None:
        self.argv = argv
        self.port = port
        self.workdir = workdir
        self.env = env
        self.password = password
        self.ssl_context = ssl_context  # readiness is checked over TLS on ``port``
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = workdir / f"server-{port}.log"

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        # A deadline, not a wait: a PyPy server's start (0.8 s of CPU) took over
        # 20 s of wall time on 2 cores at load 17.
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, cwd=self.workdir, stdout=log,
                                     stderr=subprocess.STDOUT, env=self.env)
        log.close()
        try:
            wait_for_ping(self.port, time.monotonic() + timeout, self.proc, self.password,
                          self.ssl_context)
        except Exception:
            self.stop()
            raise RuntimeError(f"server failed to start; log:\n{self.log()}")
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM and wait; SIGKILL if it does not exit in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> "ServerProcess":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def distcache_server(workdir: Path, *flags: str, port: Optional[int] = None,
                     persistence: bool = False, env: Optional[dict] = None,
                     ssl_context: Any = None, gc_env: bool = True) -> ServerProcess:
    """A ``python -m distcache server`` process (not started yet).

    Persistence is off unless asked for, so tests stay fast; ``flags`` are
    extra ``--directive value`` arguments (a later one wins). With
    ``ssl_context``, ``port`` is a TLS port and readiness is checked over TLS.
    On PyPy the server gets its GC settings in the environment (``gc_env``), so
    it does not re-execute itself to set them (distcache/pypy_start.py): 0.08 s
    of CPU per start; ``gc_env=False`` tests the re-execution.
    """
    port = port or free_port()
    argv = [sys.executable, "-m", "distcache", "server", "--port", str(port),
            "--dir", str(workdir / "data"), "--loglevel", "notice"]
    if not persistence:
        argv += ["--appendonly", "no", "--save", ""]
    argv += list(flags)
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    for key in list(full_env):
        if key.startswith("DISTCACHE_"):
            del full_env[key]
    if gc_env and PYPY:
        from distcache.pypy_start import GC_DEFAULTS
        for key, value in GC_DEFAULTS.items():
            full_env.setdefault(key, value)
    full_env.update(env or {})
    password = None
    if "--requirepass" in flags:
        password = flags[list(flags).index("--requirepass") + 1]
    return ServerProcess(argv, port, workdir, full_env, password, ssl_context)


REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
REDIS_SENTINEL = shutil.which("redis-sentinel")

#: Sentinel's own timers, shortened for tests with ``SENTINEL DEBUG`` (Redis 7.0): INFO
#: to a primary every 1 s, not 10 s (how it discovers replicas), hellos every 0.5 s,
#: not 2 s (how sentinels discover each other), and a TILT -- entered when its timer
#: runs 2 s late, as on a loaded CI host -- that lasts 3 s instead of 30 s.
SENTINEL_TEST_TIMING = ("info-period", "1000", "publish-period", "500",
                        "tilt-period", "3000")


class SentinelProcess(ServerProcess):
    """A redis-sentinel on ``conf`` with SENTINEL_TEST_TIMING applied once it answers."""

    def __init__(self, conf: Path, port: int) -> None:
        if not REDIS_SENTINEL:
            raise RuntimeError("redis-sentinel is not installed")
        super().__init__([REDIS_SENTINEL, str(conf)], port, conf.parent)

    def start(self, timeout: float = 60.0) -> "SentinelProcess":
        super().start(timeout)
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            words = [b"SENTINEL", b"DEBUG", *(w.encode() for w in SENTINEL_TEST_TIMING)]
            sock.sendall(b"*%d\r\n" % len(words)
                         + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words))
            reply = sock.recv(64)
        if not reply.startswith(b"+OK"):
            self.stop()
            raise RuntimeError(f"SENTINEL DEBUG refused: {reply!r}")
        return self


def redis_server(workdir: Path, *flags: str, port: Optional[int] = None) -> ServerProcess:
    """A real redis-server (check REDIS_SERVER first), without persistence."""
    if not REDIS_SERVER:
        raise RuntimeError("redis-server is not installed")
    port = port or free_port()
    argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(workdir), *flags]
    return ServerProcess(argv, port, workdir)


def as_map(reply: Any) -> Any:
    """A map reply as redis-py 8 returns it (a dict): redis-py < 8, the one for
    Python 3.9 and so for Debian's PyPy, speaks RESP2 and returns a flat list."""
    return dict(zip(reply[::2], reply[1::2])) if isinstance(reply, list) else reply


def same_reply(clients: Any, *command: Any) -> Any:
    """Run ``command`` on each client (distcache first, redis-server second) and require
    the same reply, errors included; returns it."""
    import redis
    results = []
    for client in clients:
        try:
            reply = client.execute_command(*command)
        except redis.ResponseError as exc:
            reply = ("error", str(exc))
        if [str(part).upper() for part in command[:2]] == ["CONFIG", "GET"]:
            reply = as_map(reply)  # RESP2's list comes in Redis's hash-table order
        results.append(reply)
    assert results[0] == results[1], f"{command[:4]}: distcache {results[0]!r:.300} " \
                                     f"!= redis {results[1]!r:.300}"
    return results[0]


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Exactly ``size`` bytes from ``sock``; fails if the server closes first."""
    chunks: List[bytes] = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        assert chunk, "server closed the connection"
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def recv_until(sock: socket.socket, end: bytes = b"\r\n") -> bytes:
    """What ``sock`` receives until the data ends with ``end`` or the server closes."""
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
