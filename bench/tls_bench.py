#!/usr/bin/env python3
"""SET and GET over TLS, distcache against redis-server, side by side.

Both servers get a TLS port with the same certificates (made at run time with
trustme; client certificates required) and ``redis-benchmark --tls`` drives
them, interleaved, as ``bench/redis_benchmark.py --tls`` does; every option of
that script applies. Defaults: ``-t set,get -P 1,16 --config fast``.

    python bench/tls_bench.py --repeat 3 --markdown
"""
from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import redis_benchmark  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    defaults = ["--tls", "-t", "set,get", "-P", "1,16", "--config", "fast"]
    return redis_benchmark.main(defaults + args)  # later flags override these


if __name__ == "__main__":
    sys.exit(main())
