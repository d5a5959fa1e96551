"""``distcache rebalance --from OLD_POOL --to NEW_POOL``: the command line of
:func:`distcache.client.rebalance.rebalance`, with a progress bar on stderr."""
from __future__ import annotations

import argparse
import sys
import time
from typing import IO, List, Optional

from ..cli import SUBCOMMANDS
from .errors import CacheError
from .rebalance import Progress, rebalance

__all__ = ["main", "ProgressBar"]

DESCRIPTION = """Move the keys whose shard changes from the pool OLD_POOL to NEW_POOL
(SCAN + MIGRATE, TTLs kept), while clients run with
CacheClient(NEW_POOL, previous=OLD_POOL). Pools are written as DISTCACHE_SERVERS
is: "h1:2050,h2:2050 replicas=h2b:2050". See docs/distribution.md."""


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def _clock(seconds: Optional[float]) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """Redraws one line on a terminal (``\\r``); elsewhere prints a line a second."""

    def __init__(self, stream: IO[str], width: int = 24) -> None:
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self._printed = 0.0

    def line(self, p: Progress) -> str:
        filled = int(p.fraction * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        return (f"[{bar}] {p.fraction * 100:3.0f}%  moved {p.moved:,} keys "
                f"({_size(p.bytes)})  {p.rate:,.0f} keys/s  ETA {_clock(p.eta)}")

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self.line(p) + ("\n" if p.finished else ""))
        elif p.finished or now - self._printed >= 1.0:
            self._printed = now
            self.stream.write(self.line(p) + "\n")
        self.stream.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distcache rebalance", description=DESCRIPTION)
    parser.add_argument("--from", dest="old", required=True, metavar="OLD_POOL")
    parser.add_argument("--to", dest="new", required=True, metavar="NEW_POOL")
    parser.add_argument("--rate", type=float, default=None,
                        help="at most this many keys moved per second (default: no limit)")
    parser.add_argument("--batch", type=int, default=100,
                        help="keys per SCAN page and per MIGRATE (default 100)")
    parser.add_argument("--state", default=None, metavar="PATH",
                        help="state file: an interrupted run continues where it stopped")
    parser.add_argument("--password", default=None)
    parser.add_argument("--user", default=None)
    parser.add_argument("--db", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds a MIGRATE step may take (default 10)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: List[str]) -> int:
    args = _parser().parse_args(argv)
    bar = None if args.quiet else ProgressBar(sys.stderr)
    try:
        result = rebalance(args.old, args.new, rate=args.rate, batch=args.batch,
                           state=args.state, password=args.password, username=args.user,
                           db=args.db, timeout=args.timeout, on_progress=bar)
    except KeyboardInterrupt:
        print("\ndistcache rebalance: interrupted"
              + ("; run it again with the same --state to continue" if args.state else ""),
              file=sys.stderr)
        return 130
    except (CacheError, ValueError, OSError) as exc:
        print(f"\ndistcache rebalance: {exc}", file=sys.stderr)
        return 1
    print(f"moved {result.moved} keys ({result.bytes} bytes) in {result.elapsed:.1f}s; "
          f"{result.superseded} old copies dropped (newer on the new owner)")
    return 0


SUBCOMMANDS["rebalance"] = main
