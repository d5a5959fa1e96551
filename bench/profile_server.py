#!/usr/bin/env python3
"""Profile a distcache server under ``redis-benchmark``: py-spy by category, perf on-CPU.

Starts distcache (pinned to core 0) in each configuration, attaches
``py-spy record --format raw`` to it, drives it with ``redis-benchmark -t
TEST -P 16 -c 50`` (pinned to core 1), one test at a time, and sorts every
busy sample into a category of the request path::

    parse         request parser (feed/get_commands, hiredis reader)
    dispatch      data_received/execute bookkeeping: lookup, arity, gates, stats
    handler       the command function and the keyspace (commands/*, keyspace.py)
    encode        reply encoding (encode_reply, execute's bulk fast path, join)
    write         transport.write (socket send, asyncio/uvloop write path)
    event loop+read  everything outside data_received: polling, socket reads,
                  callback scheduling, the cron

Idle samples (the loop blocked in epoll) are excluded, so the shares are
of the server's busy time; with the measured CPU us/op they become us/op.
py-spy samples wall time, though: on a loaded host a thread that is
runnable but descheduled counts as busy wherever it stopped (usually in the
loop or a syscall), which inflates "event loop+read" and "write". ``--perf``
adds an on-CPU profile with Linux ``perf`` (split by shared object: the
interpreter, kernel, hiredis, uvloop, libc; plus the regex engine's share).
Use ``--top`` to also print the hottest source lines. Examples::

    pip install py-spy
    python bench/profile_server.py                       # set,get; fast and stdlib
    python bench/profile_server.py --config stdlib -t incr --top 25 --keep /tmp/prof
    python bench/profile_server.py --perf --top 15     # plus an on-CPU perf profile
"""
from __future__ import annotations

import argparse
import collections
import linecache
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redis_benchmark import (CONFIGS, REPO, command, distcache_server,  # noqa: E402
                             free_port, parse_csv, pinned)

CATEGORIES = ["parse", "dispatch", "handler", "encode", "write", "event loop+read"]
FRAME_RE = re.compile(r"^(?P<func>.*) \((?P<file>.*):(?P<line>\d+)\)$")
PKG = os.path.join(REPO, "distcache") + os.sep

Frame = Tuple[str, str, int]  # function, file, line


def parse_raw(path: str) -> List[Tuple[List[Frame], int]]:
    """Stacks (root first) and counts from a py-spy ``--format raw`` file."""
    stacks = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, count = line.rpartition(" ")
            frames: List[Frame] = []
            for part in stack.split(";"):
                m = FRAME_RE.match(part)
                if m:
                    frames.append((m["func"], m["file"], int(m["line"])))
                else:
                    frames.append((part, "", 0))
            stacks.append((frames, int(count)))
    return stacks


def source(frame: Frame) -> str:
    return linecache.getline(frame[1], frame[2]).strip() if frame[1] else ""


def _is(frame: Frame, module: str, *funcs: str) -> bool:
    func, path, _ = frame
    return path.endswith(module) and (not funcs or func.rsplit(".", 1)[-1] in funcs)


def classify(frames: List[Frame]) -> str:
    """The category of one sample, from its stack (root first)."""
    for i, fr in enumerate(frames):
        if _is(fr, "server/connection.py", "data_received", "unblock", "send"):
            below = frames[i:]
            break
    else:
        return "event loop+read"
    leaf = below[-1]
    for fr in below[1:]:
        path = fr[1]
        if path.endswith(("protocol/resp.py", "protocol/hiredis_codec.py")):
            if fr[0].rsplit(".", 1)[-1] in ("encode_reply", "error_text"):
                return "encode"
            return "parse"
        if _is(fr, "server/connection.py", "flush"):
            if fr is leaf:
                text = source(fr)
                if "transport.write" in text:
                    return "write"
                if "join" in text:
                    return "encode"
                return "dispatch"
            return "write"  # Python frames below flush: asyncio's transport.write
        if path.startswith(PKG + "server" + os.sep + "commands") or path.endswith(
                ("server/keyspace.py", "server/errors.py")):
            return "handler"
    text = source(leaf)
    if _is(leaf, "server/connection.py", "data_received") and "parser" in text:
        return "parse"
    if _is(leaf, "server/connection.py", "execute") and (
            "out.append(b\"$" in text or "out +=" in text or "len(reply)" in text):
        return "encode"
    return "dispatch"


def summarize(stacks: List[Tuple[List[Frame], int]]) -> Dict[str, int]:
    counts: Dict[str, int] = collections.Counter()
    for frames, n in stacks:
        counts[classify(frames)] += n
    return counts


def top_lines(stacks: List[Tuple[List[Frame], int]], limit: int) -> List[Tuple[int, str]]:
    """Self samples per leaf source line, hottest first."""
    lines: Dict[str, int] = collections.Counter()
    for frames, n in stacks:
        leaf = frames[-1]
        where = f"{leaf[1].replace(REPO + os.sep, '')}:{leaf[2]} {leaf[0]}"
        lines[f"{where}  | {source(leaf)[:60]}"] += n
    return sorted(((n, k) for k, n in lines.items()), reverse=True)[:limit]


def cpu_split(pid: int) -> Tuple[float, float]:
    """(user, system) CPU seconds of ``pid``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tck, int(fields[12]) / tck


def perf_report(data: str, sort: str, limit: int) -> List[Tuple[float, str]]:
    """(percent, name) rows of ``perf report --sort SORT`` for a perf.data file."""
    text = subprocess.run(["perf", "report", "-i", data, "--sort", sort, "--stdio"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "%" not in line:
            continue
        pct, _, name = line.partition("%")
        try:
            rows.append((float(pct), " ".join(name.split())))
        except ValueError:
            pass
    return rows[:limit]


def print_perf(data: str, top: int) -> None:
    """On-CPU split by shared object, the regex engine's share, and hot C symbols."""
    print("\nperf (on-CPU samples, cpu-clock): by shared object")
    for pct, name in perf_report(data, "dso", 8):
        print(f"{pct:6.2f}%  {name}")
    syms = perf_report(data, "dso,sym", 10_000)
    sre = sum(pct for pct, name in syms if "sre_" in name)
    print(f"{sre:6.2f}%  (of which the regex engine, sre_*)")
    if top:
        print("hottest C symbols:")
        for pct, name in syms[:top]:
            print(f"{pct:6.2f}%  {name}")


def profile_one(config: str, test: str, args: argparse.Namespace, outdir: str) -> None:
    port = free_port()
    workdir = os.path.join(outdir, f"{config}-{test}")
    os.makedirs(workdir, exist_ok=True)
    core = None if args.no_pin else 0
    server = distcache_server(config, port, workdir, args.distcache_arg, core, sys.executable)
    raw = os.path.join(outdir, f"{config}-{test}.raw")
    spy: Optional[subprocess.Popen] = None
    try:
        server.start()
        assert server.proc is not None
        pid = server.proc.pid
        bench = pinned(None if args.no_pin else 1,
                       ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test,
                        "-P", str(args.pipeline), "-c", str(args.clients), "-n",
                        str(args.requests), "--csv", "-q"])
        # The key redis-benchmark uses without -r, so that GET hits as after SET.
        command(port, "SET", "key:__rand_int__", "xxx")
        # Warm-up, unprofiled: also gives the unprofiled throughput and CPU/op.
        u0, s0 = cpu_split(pid)
        warm = subprocess.run(bench, stdout=subprocess.PIPE, text=True, check=True)
        u1, s1 = cpu_split(pid)
        rps = parse_csv(warm.stdout)[-1][1]
        perf_data = os.path.join(outdir, f"{config}-{test}.perf.data")
        if args.perf:
            # A second, on-CPU profile (py-spy samples wall time: a thread that
            # is runnable but descheduled counts as busy where it stopped).
            perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "999",
                                     "-p", str(pid), "-o", perf_data],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            time.sleep(0.5)
            try:
                subprocess.run(bench, stdout=subprocess.PIPE, text=True, check=True)
            finally:
                perf.send_signal(signal.SIGINT)
                perf.wait(60)
        spy_cmd = ["py-spy", "record", "--pid", str(pid), "--format", "raw",
                   "--full-filenames", "--rate", str(args.rate), "-o", raw]
        if args.nonblocking:
            spy_cmd.append("--nonblocking")
        spy = subprocess.Popen(spy_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
        time.sleep(1.0)  # let py-spy attach
        prof = subprocess.run(bench, stdout=subprocess.PIPE, text=True, check=True)
        spy.send_signal(signal.SIGINT)
        spy_out = spy.communicate(timeout=30)[0]
        if not os.path.exists(raw):
            raise RuntimeError(f"py-spy wrote no profile:\n{spy_out}")
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait()
        server.stop()
    ops = args.requests * len(parse_csv(warm.stdout))
    user_us = (u1 - u0) * 1e6 / ops
    sys_us = (s1 - s0) * 1e6 / ops
    stacks = parse_raw(raw)
    counts = summarize(stacks)
    total = sum(counts.values()) or 1
    cpu_us = user_us + sys_us
    print(f"\n## {config} ({' '.join(CONFIGS[config])}): {test.upper()} -P {args.pipeline} "
          f"-c {args.clients}")
    print(f"unprofiled: {rps:,.0f} ops/s, server CPU {cpu_us:.2f} us/op "
          f"(user {user_us:.2f}, system {sys_us:.2f}); profiled run: "
          f"{parse_csv(prof.stdout)[-1][1]:,.0f} ops/s; {total} busy samples")
    print("| category | share | ~CPU us/op |")
    print("|---|---:|---:|")
    for cat in CATEGORIES:
        share = counts.get(cat, 0) / total
        print(f"| {cat} | {share:5.1%} | {share * cpu_us:.2f} |")
    if args.top:
        print(f"\nhottest lines (self samples of {total}):")
        for n, where in top_lines(stacks, args.top):
            print(f"{n / total:6.1%}  {where}")
    if args.perf and os.path.exists(perf_data):
        print_perf(perf_data, args.top)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("-t", "--tests", default="set,get", help="comma-separated tests")
    p.add_argument("--config", choices=["fast", "stdlib", "both"], default="both")
    p.add_argument("-P", "--pipeline", type=int, default=16)
    p.add_argument("-c", "--clients", type=int, default=50)
    p.add_argument("-n", "--requests", type=int, default=0,
                   help="requests per run (default: 500k when pipelined, 100k at -P 1)")
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--nonblocking", action="store_true",
                   help="py-spy --nonblocking (less overhead, less accurate stacks)")
    p.add_argument("--distcache-arg", action="append", default=[], metavar="ARG")
    p.add_argument("--top", type=int, default=0, help="also print the N hottest lines")
    p.add_argument("--keep", metavar="DIR", help="keep the raw profiles in DIR")
    p.add_argument("--no-pin", action="store_true")
    p.add_argument("--perf", action="store_true",
                   help="also record an on-CPU profile with Linux perf (one more run)")
    args = p.parse_args(argv)
    if args.perf and shutil.which("perf") is None:
        print("perf not found: --perf ignored", file=sys.stderr)
        args.perf = False
    if not args.requests:
        args.requests = 500_000 if args.pipeline > 1 else 100_000
    if shutil.which("py-spy") is None:
        print("py-spy not found: pip install py-spy", file=sys.stderr)
        return 2
    if args.no_pin or shutil.which("taskset") is None:
        args.no_pin = True
    outdir = args.keep or tempfile.mkdtemp(prefix="distcache-prof-")
    os.makedirs(outdir, exist_ok=True)
    configs = ["fast", "stdlib"] if args.config == "both" else [args.config]
    try:
        for config in configs:
            for test in args.tests.split(","):
                profile_one(config, test.strip(), args, outdir)
    except KeyboardInterrupt:
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(outdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
