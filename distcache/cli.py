"""The ``distcache`` command line: ``server``, and the tools other modules add."""
from __future__ import annotations

import sys
from typing import Callable, Dict, List, Optional

from . import __version__

USAGE = f"""distcache {__version__}: a pure-Python distributed cache speaking the Redis protocol.

usage:
  distcache server [config-file] [--directive value ...]
      Run a server in the foreground. Every directive can be given as a flag
      (--port 2051 --bind 0.0.0.0 --requirepass s3cret --maxclients 100
      --dir ./data --save "" --appendonly no), in a redis.conf-style file
      (--config distcache.conf), or as DISTCACHE_<NAME> environment variables.
      Precedence: flags > environment > file > defaults.
  distcache cluster [--nodes N] [--replicas R] [--sentinel] [--base-port 2050]
                    [--dir ./data] [server flags ...]
      Run N local servers (one per core by default), each with R replicas and
      optionally 3 redis-sentinels, under a supervisor that restarts them;
      prints the DISTCACHE_SERVERS line for clients.
  distcache check-log FILE [--fix]
      Check an append-only log, manifest or snapshot; --fix truncates a damaged
      log to its last good record (like redis-check-aof).
  distcache rebalance --from OLD_POOL --to NEW_POOL [--rate N] [--state PATH]
      Move the keys whose shard changes to their new owner (docs/distribution.md).
  distcache import-rdb FILE [--dir DIR]
      Fill a new data directory from a Redis RDB file (dump.rdb).
  distcache export-rdb [OUT] [--dir DIR]
      Write the dataset of a data directory as an RDB file redis-server loads.
  distcache --version
  distcache --help

Run 'distcache server --help' for the list of directives.
"""


def _server(argv: List[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        from .config import DIRECTIVES
        print("usage: distcache server [config-file] [--directive value ...]\n\ndirectives:")
        for d in DIRECTIVES.values():
            default = d.default if d.default else '""'
            print(f"  --{d.name:<30} default {default}" + (f"  ({d.help})" if d.help else ""))
        return 0
    if argv and argv[0] in ("-v", "--version"):  # as redis-server --version
        print(f"distcache {__version__}")
        return 0
    from .server import run_server
    return run_server(argv)


#: subcommand -> handler(argv) -> exit code; other modules add theirs here.
SUBCOMMANDS: Dict[str, Callable[[List[str]], int]] = {"server": _server}


def _load_plugins() -> None:
    for module in ("distcache.persistence.cli", "distcache.cluster",
                   "distcache.client.rebalance_cli"):
        try:
            __import__(module)
        except ImportError:
            pass


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if args[0] in ("-v", "--version", "version"):
        print(f"distcache {__version__}")
        return 0
    if argv is None and args[0] == "server":  # PyPy reads its GC settings at start
        from .pypy_start import reexec_with_gc_defaults
        reexec_with_gc_defaults(args)
    if args[0] not in SUBCOMMANDS:  # ``server`` needs none of the tools' modules
        _load_plugins()
    handler = SUBCOMMANDS.get(args[0])
    if handler is None:
        print(f"distcache: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return handler(args[1:])


if __name__ == "__main__":
    sys.exit(main())
