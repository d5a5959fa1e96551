"""Configuration sources, the command line, signals and the embedded API."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

import pytest
import redis

from core_helpers import RawClient
from servers import ROOT, ServerProcess, distcache_server, free_port

from distcache import __version__


def run_cli(*args: str, env: dict = None, timeout: float = 30) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DISTCACHE_")}
    full_env["PYTHONPATH"] = str(ROOT)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "distcache", *args], capture_output=True,
                          text=True, timeout=timeout, env=full_env)


def config_get(port: int, name: str) -> str:
    client = redis.Redis(port=port, decode_responses=True)
    try:
        return client.config_get(name)[name]
    finally:
        client.close()


def test_help_and_version():
    result = run_cli("server", "--help")
    assert result.returncode == 0
    assert "usage: distcache server" in result.stdout
    for directive in ("--port", "--bind", "--requirepass", "--maxclients", "--maxmemory"):
        assert directive in result.stdout
    for args in (("--version",), ("server", "--version")):
        result = run_cli(*args)
        assert result.returncode == 0 and result.stdout.strip() == f"distcache {__version__}"
    result = run_cli("--help")
    assert result.returncode == 0 and "distcache server" in result.stdout


@pytest.mark.parametrize("args, message", [
    (("--nosuchdirective", "1"), "Unknown directive 'nosuchdirective'"),
    (("--port", "abc"), "'port'"),
    (("--maxmemory", "lots"), "'maxmemory'"),
    (("--appendonly", "maybe"), "'appendonly'"),
])
def test_bad_directives_fail_at_startup(tmp_path, args, message):
    result = run_cli("server", "--dir", str(tmp_path), *args)
    assert result.returncode != 0
    assert message in result.stderr


def test_bad_config_file_line_is_named(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("port 0\nsave \"\"\nfoo bar\n")
    result = run_cli("server", str(conf))
    assert result.returncode != 0
    assert "bad.conf:3" in result.stderr and "'foo'" in result.stderr
    result = run_cli("server", str(tmp_path / "missing.conf"))
    assert result.returncode != 0 and "missing.conf" in result.stderr


def test_redis_conf_with_redis_only_directives(tmp_path):
    conf = tmp_path / "redis.conf"
    conf.write_text("# a redis.conf\n"
                    "list-max-listpack-size -2\n"
                    "hash-max-listpack-entries 128\n"
                    "set-max-intset-entries 512\n"
                    "maxclients 77\n"
                    "save 900 1\n"
                    "save 300 10\n")
    with distcache_server(tmp_path, "--config", str(conf)) as proc:
        assert config_get(proc.port, "list-max-listpack-size") == "-2"
        assert config_get(proc.port, "hash-max-listpack-entries") == "128"
        assert config_get(proc.port, "set-max-intset-entries") == "512"
        assert config_get(proc.port, "maxclients") == "77"
        assert config_get(proc.port, "save") == ""  # the test harness's --save "" wins


def test_precedence_flags_over_env_over_file(tmp_path):
    conf = tmp_path / "distcache.conf"
    conf.write_text("maxclients 11\ntimeout 11\ntcp-keepalive 11\n")
    env = {"DISTCACHE_MAXCLIENTS": "22", "DISTCACHE_TIMEOUT": "22"}
    with distcache_server(tmp_path, "--config", str(conf), "--timeout", "33",
                          env=env) as proc:
        assert config_get(proc.port, "tcp-keepalive") == "11"   # file only
        assert config_get(proc.port, "maxclients") == "22"      # env beats file
        assert config_get(proc.port, "timeout") == "33"         # flag beats env
    with distcache_server(tmp_path / "b", env={"DISTCACHE_CONFIG": str(conf)}) as proc:
        assert config_get(proc.port, "maxclients") == "11"      # file named by env
    with distcache_server(tmp_path / "c", env={"DISTCACHE_PORT": "1"}) as proc:
        assert config_get(proc.port, "port") == str(proc.port)  # --port flag beats env


def test_env_port_is_used(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTCACHE_")}
    env.update({"PYTHONPATH": str(ROOT), "DISTCACHE_PORT": str(port)})
    argv = [sys.executable, "-m", "distcache", "server", "--dir", str(tmp_path / "data"),
            "--save", "", "--appendonly", "no"]
    with ServerProcess(argv, port, tmp_path, env) as proc:
        assert config_get(proc.port, "port") == str(port)


def test_persistence_and_memory_directives_accepted(tmp_path):
    data = tmp_path / "somewhere"
    with distcache_server(tmp_path, "--dir", str(data), "--save", "", "--appendonly", "no",
                          "--maxmemory", "100mb") as proc:
        assert config_get(proc.port, "maxmemory") == str(100 * 1024 * 1024)
        assert config_get(proc.port, "appendonly") == "no"
        assert config_get(proc.port, "save") == ""
        assert config_get(proc.port, "dir") == str(data)


def test_startup_log_line(tmp_path):
    with distcache_server(tmp_path) as proc:
        log = proc.log()
    line = next(line for line in log.splitlines() if "ready" in line)
    assert f"distcache {__version__}" in line
    assert f"port {proc.port}" in line
    assert re.search(r"event loop (uvloop|asyncio)", line)
    assert f"pid {proc.proc.pid}" in line


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_signals_exit_cleanly(tmp_path, signame):
    proc = distcache_server(tmp_path).start()
    try:
        with RawClient(proc.port) as raw:
            assert raw.call("SET", "k", "v") == b"+OK\r\n"
        proc.proc.send_signal(getattr(signal, signame))
        assert proc.proc.wait(20) == 0
    finally:
        proc.stop()
    assert f"received {signame}" in proc.log()


def test_embedded_server_start_stop():
    from distcache import CacheServer
    from distcache.cache_server import CacheServer as Legacy
    assert Legacy is CacheServer
    server = CacheServer("127.0.0.1", 0, appendonly="no", save="")
    server.start()
    try:
        assert server.port > 0
        client = redis.Redis(port=server.port)
        assert client.set("embedded", "yes") is True
        assert client.get("embedded") == b"yes"
        client.close()
    finally:
        server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


def test_embedded_server_context_manager():
    from distcache.cache_server import CacheServer
    with CacheServer("127.0.0.1", 0, appendonly="no", save="", maxclients=5) as server:
        client = redis.Redis(port=server.port, decode_responses=True)
        assert client.config_get("maxclients") == {"maxclients": "5"}
        assert client.info("server")["redis_version"] == "7.0.15"
        client.close()
        port = server.port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_readme_directive_table_matches_the_directives():
    """README's table of directives says what ``--help`` says, default included."""
    from distcache.config import DIRECTIVES
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z0-9-]+)` \| (`[^`]*` \| .*) \|$", readme, re.M))
    for name, directive in DIRECTIVES.items():
        assert name in rows, f"README lists no {name}"
        default, text = rows[name].split(" | ", 1)
        shown = directive.default if directive.default else '""'
        assert default == f"`{shown}`", name
        assert text == directive.help, name
