#!/usr/bin/env python3
"""Run ``redis-benchmark`` against distcache and a reference ``redis-server``.

Both servers run side by side on free loopback ports, each pinned to core 0
and the benchmark client to core 1 (``taskset``, skipped when missing). For
every test, pipeline depth and repeat, the servers are measured one after the
other (interleaved), and the script prints ops/s, the distcache/Redis ratio
and each server's CPU time per operation (utime+stime from /proc/PID/stat).

Examples::

    python bench/redis_benchmark.py                         # set,get,incr,mset; -P 1,16; both configs
    python bench/redis_benchmark.py --config fast --repeat 5 --markdown
    python bench/redis_benchmark.py -t lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100 -P 16
    python bench/redis_benchmark.py --server-arg=--appendonly --server-arg=yes \\
        --server-arg=--appendfsync --server-arg=everysec

Configurations: ``fast`` = ``--event-loop uvloop --parser hiredis``;
``stdlib`` = ``--event-loop asyncio --parser python``; ``asyncio-hiredis`` (the
two that run on PyPy) and ``auto`` (what the server picks for the runtime).
``--config`` takes one, a comma-separated list, or ``both`` (fast,stdlib).
``--python pypy3`` runs distcache under another interpreter (PyPy: uvloop does
not exist there, so use ``--config stdlib,asyncio-hiredis,auto``). A config may
name its own interpreter after ``@``, so that both runtimes and redis-server are
measured in one run: ``--config auto,auto@pypy3``. ``ratio`` is the median
of the per-repeat (paired) distcache/Redis ops/s ratios, with their range.
``CPU ratio`` is Redis's CPU us/op over distcache's: the share of Redis's
efficiency, which other load on the machine disturbs less than ops/s.
``busy`` is server CPU time over wall time: well under 100% means the
server was not the bottleneck (client-bound, or starved by other processes).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: distcache configuration name -> server flags selecting it.
CONFIGS: Dict[str, List[str]] = {
    "fast": ["--event-loop", "uvloop", "--parser", "hiredis"],
    "stdlib": ["--event-loop", "asyncio", "--parser", "python"],
    "asyncio-hiredis": ["--event-loop", "asyncio", "--parser", "hiredis"],
    "auto": [],
}
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# -- helpers -------------------------------------------------------------------------


def free_port() -> int:
    """A currently unused TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(core: Optional[int], argv: List[str]) -> List[str]:
    """``argv`` prefixed with ``taskset -c core`` when possible."""
    if core is None or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", str(core)] + argv


def cpu_seconds(pid: int) -> float:
    """utime+stime (+ waited-for children, e.g. a BGSAVE fork) of ``pid``, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17.
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK


def ping(port: int, timeout: float = 0.5) -> bool:
    """True if a server on ``port`` answers PING (+PONG, or an error such as
    -NOAUTH or -LOADING: the server is up and answering)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = s.recv(64)
            return reply.startswith(b"+PONG") or (reply.startswith(b"-")
                                                   and not reply.startswith(b"-LOADING"))
    except OSError:
        return False


def command(port: int, *args: str, timeout: float = 120.0) -> bytes:
    """Send one command and return the first reply chunk (FLUSHALL, INFO...)."""
    payload = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        return s.recv(65536)


# -- servers -------------------------------------------------------------------------


@dataclass
class Server:
    """A server process under test."""

    name: str
    argv: List[str]
    port: int
    workdir: str
    proc: Optional[subprocess.Popen] = None
    log: Optional[io.TextIOBase] = None
    #: The port redis-benchmark talks to, when not ``port`` (the TLS port).
    bench_port: int = 0

    def start(self, timeout: float = 20.0) -> None:
        self.log = open(os.path.join(self.workdir, "server.log"), "w")
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
        # Own session: a Ctrl-C reaches only this script, which then stops us.
        self.proc = subprocess.Popen(self.argv, cwd=self.workdir, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; "
                                   f"see {self.log.name}:\n{self.tail()}")
            if ping(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.tail()}")

    def tail(self) -> str:
        try:
            with open(os.path.join(self.workdir, "server.log")) as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return ""

    def cpu(self) -> float:
        assert self.proc is not None
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.log is not None:
            self.log.close()


def runtime(python: str) -> str:
    """The interpreter's implementation and version, e.g. ``PyPy 3.9.16``."""
    try:
        return subprocess.run(
            [python, "-c", "import platform; print(platform.python_implementation(), "
                           "platform.python_version())"],
            capture_output=True, text=True, timeout=30).stdout.strip() or python
    except (OSError, subprocess.SubprocessError):
        return python


def redis_server(port: int, workdir: str, extra: Sequence[str], core: Optional[int]) -> Server:
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
            "--save", "", "--appendonly", "no", "--daemonize", "no"] + list(extra)
    return Server("redis", pinned(core, argv), port, workdir)


def distcache_server(config: str, port: int, workdir: str, extra: Sequence[str],
                     core: Optional[int], default_python: str) -> Server:
    flags, _, python = config.partition("@")  # "auto@pypy3": a config under an interpreter
    argv = [python or default_python, "-m", "distcache", "server", "--port", str(port),
            "--bind", "127.0.0.1", "--dir", workdir, "--save", "", "--appendonly", "no"] \
        + CONFIGS[flags] + list(extra)
    return Server(f"distcache-{config}", pinned(core, argv), port, workdir)


class TLSFiles:
    """A CA, a server and a client certificate (trustme) for --tls runs."""

    def __init__(self, directory: str) -> None:
        import trustme  # the test extra: pip install -e '.[test]'
        ca = trustme.CA()
        self.ca = os.path.join(directory, "ca.crt")
        ca.cert_pem.write_to_path(self.ca)
        self.files: Dict[str, str] = {}
        for name, leaf in (("server", ca.issue_cert("127.0.0.1", "localhost")),
                           ("client", ca.issue_cert("bench@example.test"))):
            self.files[name + ".crt"] = os.path.join(directory, name + ".crt")
            self.files[name + ".key"] = os.path.join(directory, name + ".key")
            leaf.cert_chain_pems[0].write_to_path(self.files[name + ".crt"])
            leaf.private_key_pem.write_to_path(self.files[name + ".key"])

    def server_flags(self, tls_port: int) -> List[str]:
        """The same for redis-server and distcache: a plain port stays on for
        readiness checks and FLUSHALL."""
        return ["--tls-port", str(tls_port), "--tls-cert-file", self.files["server.crt"],
                "--tls-key-file", self.files["server.key"], "--tls-ca-cert-file", self.ca]

    def bench_args(self) -> List[str]:
        return ["--tls", "--cacert", self.ca, "--cert", self.files["client.crt"],
                "--key", self.files["client.key"]]


# -- benchmark -----------------------------------------------------------------------


@dataclass
class Sample:
    """One redis-benchmark run of one test against one server."""

    rps: float           # ops/s of the measured test (last CSV row)
    cpu_us_per_op: float  # server CPU per request, over every row of the run
    server_busy: float = 0.0  # server CPU time / wall time (1.0 = one core saturated)
    bench_busy: float = 0.0   # redis-benchmark CPU time / wall time
    error: str = ""           # first "Error from server" line, if any (result suspect)


@dataclass
class Cell:
    """All samples of (server, test, pipeline)."""

    samples: List[Sample] = field(default_factory=list)

    def median_rps(self) -> float:
        return statistics.median(s.rps for s in self.samples)

    def median_cpu(self) -> float:
        return statistics.median(s.cpu_us_per_op for s in self.samples)

    def median_busy(self) -> float:
        return statistics.median(s.server_busy for s in self.samples)


def parse_csv(text: str) -> List[Tuple[str, float]]:
    """(test name, rps) rows of ``redis-benchmark --csv`` output."""
    rows = []
    for row in csv.reader(io.StringIO(text)):
        if len(row) >= 2 and row[0] != "test":
            try:
                rows.append((row[0], float(row[1])))
            except ValueError:
                pass
    return rows


def run_benchmark(server: Server, test: str, pipeline: int, clients: int, requests: int,
                  bench_args: Sequence[str], core: Optional[int]) -> Sample:
    """One ``redis-benchmark -t test`` run; returns its ops/s and the server's CPU/op."""
    argv = pinned(core, ["redis-benchmark", "-h", "127.0.0.1",
                         "-p", str(server.bench_port or server.port),
                         "-t", test, "-P", str(pipeline), "-c", str(clients),
                         "-n", str(requests), "--csv", "-q"] + list(bench_args))
    cpu0 = server.cpu()
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=1800)
    wall = time.monotonic() - t0
    cpu1 = server.cpu()
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    bench_cpu = (child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime)
    rows = parse_csv(done.stdout)
    if done.returncode != 0 or not rows:
        raise RuntimeError(f"redis-benchmark failed against {server.name} ({test}, "
                           f"-P {pipeline}): rc={done.returncode}\n{done.stdout}\n"
                           f"{done.stderr}\n{server.tail()}")
    # lrange_* runs an LPUSH fill first: the measured test is the last row, but
    # the server CPU covers every row, so divide by all their requests.
    error = next((line for line in (done.stdout + done.stderr).splitlines()
                  if line.startswith("Error from server")), "")
    if error:
        print(f"WARNING: {server.name} {test} -P {pipeline}: {error.strip()}", file=sys.stderr)
    ops = requests * len(rows)
    return Sample(rps=rows[-1][1], cpu_us_per_op=(cpu1 - cpu0) * 1e6 / ops,
                  server_busy=(cpu1 - cpu0) / wall, bench_busy=bench_cpu / wall,
                  error=error)


def default_requests(pipeline: int, test: str) -> int:
    """Requests per run: enough for a few seconds against distcache."""
    n = 100_000 if pipeline <= 1 else 1_000_000
    if test.startswith("lrange") or test == "mset":
        n //= 2
    return n


# -- output --------------------------------------------------------------------------


def git_state() -> str:
    """The commit of the tree under test, and whether distcache/ has local changes."""
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "distcache"],
                               capture_output=True, text=True).stdout.strip()
        return f"commit {head}" + (" + uncommitted changes in distcache/" if dirty else "")
    except OSError:
        return "commit unknown"


def fmt_rps(x: float) -> str:
    return f"{x:,.0f}"


def build_rows(results: Dict[Tuple[str, str, int], Cell], configs: List[str],
               tests: List[str], pipelines: List[int], with_redis: bool) -> List[List[str]]:
    rows = []
    for config in configs:
        for pipeline in pipelines:
            for test in tests:
                dc = results[(config, test, pipeline)]
                # "!": the server answered some requests with errors.
                flag = "!" if any(x.error for x in dc.samples) else ""
                row = [config, test.upper() + flag, str(pipeline)]
                if with_redis:
                    rd = results[("redis", test, pipeline)]
                    ratios = [d.rps / r.rps for d, r in zip(dc.samples, rd.samples)]
                    row += [fmt_rps(rd.median_rps()), fmt_rps(dc.median_rps()),
                            f"{statistics.median(ratios):.2f}",
                            f"{min(ratios):.2f}-{max(ratios):.2f}",
                            f"{rd.median_cpu():.2f}", f"{dc.median_cpu():.2f}",
                            f"{rd.median_cpu() / dc.median_cpu():.2f}"
                            if dc.median_cpu() else "-",
                            f"{rd.median_busy():.0%}", f"{dc.median_busy():.0%}"]
                else:
                    row += [fmt_rps(dc.median_rps()), f"{dc.median_cpu():.2f}",
                            f"{dc.median_busy():.0%}"]
                rows.append(row)
    return rows


def headers(with_redis: bool) -> List[str]:
    if with_redis:
        return ["config", "test", "-P", "redis ops/s", "distcache ops/s", "ratio",
                "ratio range", "redis CPU us/op", "distcache CPU us/op", "CPU ratio",
                "redis busy", "distcache busy"]
    return ["config", "test", "-P", "distcache ops/s", "distcache CPU us/op", "distcache busy"]


def print_table(hdr: List[str], rows: List[List[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(hdr) + " |")
        print("|" + "|".join("---" if i < 2 else "---:" for i in range(len(hdr))) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(hdr)]
    print("  ".join(h.rjust(w) for h, w in zip(hdr, widths)))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))


# -- main ----------------------------------------------------------------------------


def reprint(path: str, markdown: bool) -> int:
    """Print the table of a file written by ``--json``."""
    with open(path) as f:
        saved = json.load(f)
    results: Dict[Tuple[str, str, int], Cell] = {}
    for item in saved["results"]:
        results[(item["server"], item["test"], item["pipeline"])] = Cell(
            [Sample(**s) for s in item["samples"]])
    keys = list(results)
    configs = list(dict.fromkeys(k[0] for k in keys if k[0] != "redis"))
    tests = list(dict.fromkeys(k[1] for k in keys))
    pipelines = sorted(set(k[2] for k in keys))
    with_redis = any(k[0] == "redis" for k in keys)
    print(f"# {saved.get('command', '')}\n# distcache {saved.get('git', '?')}")
    print(f"# started {saved['started']}")
    print_table(headers(with_redis), build_rows(results, configs, tests, pipelines, with_redis),
                markdown)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt()



def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("-t", "--tests", default="set,get,incr,mset",
                   help="comma-separated redis-benchmark tests (default: %(default)s)")
    p.add_argument("-P", "--pipelines", default="1,16",
                   help="comma-separated pipeline depths (default: %(default)s)")
    p.add_argument("-c", "--clients", type=int, default=50, help="parallel connections")
    p.add_argument("-n", "--requests", type=int, default=0,
                   help="requests per run (default: 100k at -P 1, 1M when pipelined, "
                        "halved for mset and lrange_*)")
    p.add_argument("-r", "--keyspace", type=int, default=0,
                   help="redis-benchmark -r (random keys); 0: one key per test, as by default")
    p.add_argument("-d", "--datasize", type=int, default=0,
                   help="redis-benchmark -d (value size); 0: its default (3 bytes)")
    p.add_argument("--config", default="both",
                   help="distcache configuration(s), comma-separated, from "
                        f"{', '.join(CONFIGS)}; both = fast,stdlib (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=3, help="runs per cell; medians are reported")
    p.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                   help="extra flag for both servers (repeatable: "
                        "--server-arg=--appendonly --server-arg=yes)")
    p.add_argument("--distcache-arg", action="append", default=[], metavar="ARG",
                   help="extra flag for distcache only (repeatable)")
    p.add_argument("--redis-arg", action="append", default=[], metavar="ARG",
                   help="extra flag for redis-server only (repeatable)")
    p.add_argument("--bench-arg", action="append", default=[], metavar="ARG",
                   help="extra flag for redis-benchmark (repeatable)")
    p.add_argument("--tls", action="store_true",
                   help="benchmark over TLS: both servers get a TLS port (certificates "
                        "made with trustme, client certificates required) and "
                        "redis-benchmark runs with --tls")
    p.add_argument("--no-redis", action="store_true",
                   help="do not run redis-server (no ratios)")
    p.add_argument("--flush", choices=["repeat", "run", "never"], default="repeat",
                   help="FLUSHALL each server before every repeat (default; GET then reads "
                        "the key SET wrote, as in one redis-benchmark invocation), before "
                        "every run, or never")
    p.add_argument("--no-pin", action="store_true", help="do not use taskset")
    p.add_argument("--server-core", type=int, default=0)
    p.add_argument("--bench-core", type=int, default=1)
    p.add_argument("--python", default=sys.executable, help="interpreter for distcache")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--json", metavar="FILE", help="also write every sample as JSON")
    p.add_argument("--quiet", action="store_true", help="no per-run progress on stderr")
    p.add_argument("--from-json", metavar="FILE",
                   help="print the table of a previous --json run instead of running")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        return reprint(args.from_json, args.markdown)
    tests = [t.strip().lower() for t in args.tests.split(",") if t.strip()]
    pipelines = [int(x) for x in args.pipelines.split(",") if x.strip()]
    configs = ["fast", "stdlib"] if args.config == "both" else \
        [c.strip() for c in args.config.split(",") if c.strip()]
    unknown = [c for c in configs if c.partition("@")[0] not in CONFIGS]
    if unknown:
        print(f"unknown --config {', '.join(unknown)}", file=sys.stderr)
        return 2
    with_redis = not args.no_redis
    for tool in ["redis-benchmark"] + (["redis-server"] if with_redis else []):
        if shutil.which(tool) is None:
            print(f"{tool} not found on PATH", file=sys.stderr)
            return 2
    pin = not args.no_pin and shutil.which("taskset") is not None
    score = args.server_core if pin else None
    bcore = args.bench_core if pin else None
    bench_args = list(args.bench_arg)
    if args.keyspace:
        bench_args += ["-r", str(args.keyspace)]
    if args.datasize:
        bench_args += ["-d", str(args.datasize)]

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    # A SIGTERM (e.g. from a CI timeout) takes the same cleanup path as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    tmp = tempfile.mkdtemp(prefix="distcache-bench-")
    tls = TLSFiles(tmp) if args.tls else None
    if tls is not None:
        bench_args += tls.bench_args()
    servers: Dict[str, Server] = {}
    results: Dict[Tuple[str, str, int], Cell] = {}
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    git = git_state()  # now: the servers run the tree as it is when they start
    try:
        names = (["redis"] if with_redis else []) + configs
        for name in names:
            workdir = os.path.join(tmp, name)
            os.makedirs(workdir)
            port = free_port()
            extra = list(args.server_arg)
            tls_port = free_port() if tls is not None else 0
            if tls is not None:
                extra += tls.server_flags(tls_port)
            if name == "redis":
                servers[name] = redis_server(port, workdir, extra + args.redis_arg, score)
            else:
                servers[name] = distcache_server(name, port, workdir,
                                                 extra + args.distcache_arg, score,
                                                 args.python)
            servers[name].bench_port = tls_port
            servers[name].start()
            log(f"started {name} on 127.0.0.1:{port}"
                + (f", TLS port {tls_port}" if tls_port else "")
                + f" (pid {servers[name].proc.pid})")
        for rep in range(args.repeat):
            for pipeline in pipelines:
                for test in tests:
                    n = args.requests or default_requests(pipeline, test)
                    # Interleave servers, rotating the order so neither always goes first.
                    order = names[rep % len(names):] + names[:rep % len(names)]
                    for name in order:
                        server = servers[name]
                        first = pipeline == pipelines[0] and test == tests[0]
                        if args.flush == "run" or (args.flush == "repeat" and first):
                            command(server.port, "FLUSHALL")
                        sample = run_benchmark(server, test, pipeline, args.clients, n,
                                               bench_args, bcore)
                        results.setdefault((name, test, pipeline), Cell()).samples \
                            .append(sample)
                        log(f"[{rep + 1}/{args.repeat}] {name:<16} {test:<10} -P {pipeline:<3}"
                            f" {fmt_rps(sample.rps):>12} ops/s  "
                            f"{sample.cpu_us_per_op:6.2f} CPU us/op  server busy "
                            f"{sample.server_busy:4.0%}  benchmark busy {sample.bench_busy:4.0%}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for server in servers.values():
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"# {' '.join(['python'] + sys.argv)}")
    pythons = dict.fromkeys(c.partition("@")[2] or args.python for c in configs)
    print(f"# distcache {git} under " + ", ".join(f"{runtime(py)} ({py})" for py in pythons))
    print(f"# redis-benchmark -c {args.clients}, started {started}, {os.cpu_count()} CPUs, "
          f"pinning {'server core %d / benchmark core %d' % (score, bcore) if pin else 'off'}"
          f", repeat {args.repeat} (medians)")
    if args.server_arg or args.distcache_arg or args.redis_arg or bench_args:
        print(f"# server args {args.server_arg} distcache args {args.distcache_arg} "
              f"redis args {args.redis_arg} benchmark args {bench_args}")
    print_table(headers(with_redis), build_rows(results, configs, tests, pipelines, with_redis),
                args.markdown)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"started": started, "argv": list(argv or sys.argv[1:]),
                       "command": " ".join(["python"] + sys.argv), "git": git,
                       "results": [{"server": k[0], "test": k[1], "pipeline": k[2],
                                    "samples": [vars(s) for s in v.samples]}
                                   for k, v in results.items()]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
