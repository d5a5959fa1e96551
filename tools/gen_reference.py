"""Regenerate the command and configuration tables in README.md from the code.

    python tools/gen_reference.py

The tables sit between ``<!-- commands:begin -->``/``<!-- commands:end -->``
and ``<!-- config:begin -->``/``<!-- config:end -->`` markers.
"""
from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from distcache.config import DIRECTIVES  # noqa: E402
from distcache.server import CacheServer  # noqa: E402,F401  (registers every command)
from distcache.server.commands.table import COMMANDS  # noqa: E402

GROUP_TITLES = {"string": "Strings and counters", "bitmap": "Bitmaps", "hyperloglog": "HyperLogLog",
                "generic": "Keys and TTLs",
                "list": "Lists", "hash": "Hashes", "set": "Sets", "sorted-set": "Sorted sets",
                "geo": "Geo", "stream": "Streams",
                "transactions": "Transactions", "pubsub": "Pub/sub",
                "connection": "Connection", "server": "Server", "scripting": "Scripting"}


def commands_table() -> str:
    groups = defaultdict(list)
    for name, spec in sorted(COMMANDS.items()):
        subs = sorted({s.name for s in spec.subcommands.values()})
        label = name.upper() + (f" ({', '.join(s.upper() for s in subs)})" if subs else "")
        groups[spec.group].append(label)
    rows = ["| Family | Commands |", "| --- | --- |"]
    for group in list(GROUP_TITLES) + sorted(set(groups) - set(GROUP_TITLES)):
        if group in groups:
            rows.append(f"| {GROUP_TITLES.get(group, group)} | {', '.join(groups[group])} |")
    return "\n".join(rows)


def config_table() -> str:
    rows = ["| Directive | Default | Meaning |", "| --- | --- | --- |"]
    for d in DIRECTIVES.values():
        default = f"`{d.default}`" if d.default else '`""`'
        rows.append(f"| `{d.name}` | {default} | {d.help} |")
    return "\n".join(rows)


def replace(text: str, marker: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {marker}:begin -->\n).*?(<!-- {marker}:end -->)", re.S)
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    text = replace(text, "commands", commands_table())
    text = replace(text, "config", config_table())
    readme.write_text(text)


if __name__ == "__main__":
    main()
