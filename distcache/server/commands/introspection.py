"""MONITOR, SLOWLOG, LATENCY and LOLWUT (state in server/monitoring.py)."""
from __future__ import annotations

import random
import time
from typing import Any, List

from ...protocol import OK, Verbatim
from ..errors import CommandError, subcommand_syntax
from .args import to_int
from .connection import REDIS_VERSION
from .table import command, container, help_reply

_SRV = dict(group="server")
_ADMIN = "admin loading stale"


@command("monitor", 1, "admin noscript loading stale", since="1.0.0", **_SRV)
def monitor(c: Any, args: List[bytes]) -> Any:
    """Stream every command the server runs to this connection."""
    if c.in_multi:  # as Redis: ignored in a transaction
        return OK
    c.server.monitoring.add_monitor(c)
    return OK


# -- SLOWLOG --------------------------------------------------------------------------

container("slowlog", -2, summary="A container for slow log commands", since="2.2.12")


@command("get", -2, _ADMIN, parent="slowlog", since="2.2.12", **_SRV)
def slowlog_get(c: Any, args: List[bytes]) -> Any:
    """The newest slow log entries (10 by default, -1: all)."""
    if len(args) > 3:
        raise CommandError(subcommand_syntax(args))
    entries = c.server.monitoring.slowlog
    count = 10
    if len(args) == 3:
        error = "ERR count should be greater than or equal to -1"
        count = to_int(args[2], error)
        if count < -1:
            raise CommandError(error)
        if count == -1:
            count = len(entries)
    return [list(entry) for entry in list(entries)[:count]]


@command("len", 2, _ADMIN, parent="slowlog", since="2.2.12", **_SRV)
def slowlog_len(c: Any, args: List[bytes]) -> Any:
    """How many entries the slow log holds."""
    return len(c.server.monitoring.slowlog)


@command("reset", 2, _ADMIN, parent="slowlog", since="2.2.12", **_SRV)
def slowlog_reset(c: Any, args: List[bytes]) -> Any:
    """Empty the slow log."""
    c.server.monitoring.slowlog.clear()
    return OK


@command("help", 2, "loading stale", parent="slowlog", since="6.2.0", **_SRV)
def slowlog_help(c: Any, args: List[bytes]) -> Any:
    """Subcommands of SLOWLOG."""
    return help_reply("SLOWLOG", [
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Prints this help."])


# -- LATENCY --------------------------------------------------------------------------

container("latency", -2, summary="A container for latency diagnostics commands",
          since="2.8.13")
_LATENCY = "admin noscript loading stale"


@command("latest", 2, _LATENCY, parent="latency", since="2.8.13", **_SRV)
def latency_latest(c: Any, args: List[bytes]) -> Any:
    """Each event's latest sample: name, time, latest and all-time max (ms)."""
    m = c.server.monitoring
    return [[event.encode(), samples[-1][0], samples[-1][1], m.latency_max[event]]
            for event, samples in m.latency.items() if samples]


@command("history", 3, _LATENCY, parent="latency", since="2.8.13", **_SRV)
def latency_history(c: Any, args: List[bytes]) -> Any:
    """An event's samples, oldest first: [time, ms]."""
    samples = c.server.monitoring.latency.get(args[2].decode("utf-8", "replace"), ())
    return [[when, ms] for when, ms in samples]


@command("reset", -2, _LATENCY, parent="latency", since="2.8.13", **_SRV)
def latency_reset(c: Any, args: List[bytes]) -> Any:
    """Forget the samples of the events named (all when none is); how many were reset."""
    m = c.server.monitoring
    names = [a.decode("utf-8", "replace") for a in args[2:]] or list(m.latency)
    reset = 0
    for name in names:
        if m.latency.pop(name, None) is not None:
            m.latency_max.pop(name, None)
            reset += 1
    return reset


@command("histogram", -2, _LATENCY, parent="latency", since="7.0.0", **_SRV)
def latency_histogram(c: Any, args: List[bytes]) -> Any:
    """Per-command latency histograms: calls and cumulative counts at power-of-two µs
    buckets, for the commands named (containers with their subcommands), or all."""
    m = c.server.monitoring
    table = c.server.command_table
    if len(args) == 2:
        specs = list({id(s): s for s in table.values()}.values())
    else:
        specs = []
        for name in args[2:]:
            parent, _, sub = name.lower().partition(b"|")
            spec = table.get(parent)
            if spec is not None and sub:
                spec = spec.subcommands.get(sub) if spec.subcommands else None
            if spec is not None:
                specs.append(spec)
    reply = {}
    for spec in specs:
        for each in [spec, *(spec.subcommands or {}).values()]:
            entry = m.histogram(each.fullname)
            if entry is not None:
                reply[each.fullname.encode()] = entry
    return reply


@command("doctor", 2, _LATENCY, parent="latency", since="2.8.13", **_SRV)
def latency_doctor(c: Any, args: List[bytes]) -> Any:
    """A human readable report of the latency events."""
    m = c.server.monitoring
    if not m.latency_threshold:
        return Verbatim(
            b"I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis "
            b"instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in "
            b"order to enable it. If we weren't in a deep space mission I'd suggest to take a "
            b"look at https://redis.io/topics/latency-monitor.\n")
    if not any(m.latency.values()):
        return Verbatim(b"Dave, no latency spike was observed during the lifetime of this Redis "
                        b"instance, not in the slightest bit. I honestly think you ought to "
                        b"sleep tonight.\n")
    lines = ["Dave, I have observed latency spikes in this Redis instance. You don't mind "
             "talking about it, do you Dave?", ""]
    for i, (event, samples) in enumerate(m.latency.items(), 1):
        values = [ms for _, ms in samples]
        lines.append(f"{i}. {event}: {len(values)} latency spikes (average {sum(values) // len(values)}ms, "
                     f"mean deviation {_deviation(values)}ms, period "
                     f"{_period(samples)} sec). Worst all time event {m.latency_max[event]}ms.")
    lines += ["", "I have a few advices for you:", "",
              "- Check your Slow Log to understand what are the commands you are running "
              "which are too slow to execute. Please check https://redis.io/commands/slowlog "
              "for more information.", ""]
    return Verbatim("\n".join(lines).encode() + b"\n")


def _deviation(values: List[int]) -> int:
    mean = sum(values) / len(values)
    return int(sum(abs(v - mean) for v in values) / len(values))


def _period(samples: Any) -> int:
    if len(samples) < 2:
        return 0
    return int((samples[-1][0] - samples[0][0]) / (len(samples) - 1))


@command("graph", 3, _LATENCY, parent="latency", since="2.8.13", **_SRV)
def latency_graph(c: Any, args: List[bytes]) -> Any:
    """An ASCII graph of an event's samples."""
    name = args[2].decode("utf-8", "replace")
    m = c.server.monitoring
    samples = m.latency.get(name)
    if not samples:
        raise CommandError(f"ERR No samples available for event '{name}'")
    values = [ms for _, ms in samples]
    low, high = min(values), max(values)
    rows = 4
    lines = [f"{name} - high {high} ms, low {low} ms (all time high {m.latency_max[name]} ms)",
             "-" * 80]
    for row in range(rows, 0, -1):
        level = low + (high - low) * row / rows
        lines.append("".join("#" if v >= level or (row == 1 and v >= low) else " "
                             for v in values))
    now = int(time.time())
    lines.append("".join(_age(now - when) for when, _ in samples))
    return Verbatim("\n".join(lines).encode() + b"\n")


def _age(seconds: int) -> str:
    # One column per sample: its age's first digit and unit, as Redis's vertical labels.
    for unit, size in (("s", 1), ("m", 60), ("h", 3600), ("d", 86400)):
        if seconds < size * 60 or unit == "d":
            return str(min(seconds // size, 9))
    return "?"


@command("help", 2, "loading stale", parent="latency", since="2.8.13", **_SRV)
def latency_help(c: Any, args: List[bytes]) -> Any:
    """Subcommands of LATENCY."""
    return help_reply("LATENCY", [
        "DOCTOR",
        "    Return a human readable latency analysis report.",
        "GRAPH <event>",
        "    Return an ASCII latency graph for the <event> class.",
        "HISTORY <event>",
        "    Return time-latency samples for the <event> class.",
        "LATEST",
        "    Return the latest latency samples for all events.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)",
        "HISTOGRAM [COMMAND ...]",
        "    Return a cumulative distribution of latencies in the format of a histogram for "
        "the specified command names.",
        "    If no commands are specified then all histograms are replied.",
        "HELP",
        "    Prints this help."])


# -- LOLWUT ---------------------------------------------------------------------------

@command("lolwut", -1, "readonly fast", since="5.0.0", **_SRV)
def lolwut(c: Any, args: List[bytes]) -> Any:
    """Computer art and the Redis version."""
    version = 0
    rest = args[1:]
    if len(args) >= 3 and args[1].upper() == b"VERSION":
        version = to_int(args[2]) & 0xFFFFFFFF  # as Redis's "%u.0.0"
        rest = args[3:]
    tail = f"Redis ver. {REDIS_VERSION}\n"
    if version == 5:
        numbers = [to_int(a) for a in rest[:3]]
        cols = min(max(numbers[0] if numbers else 66, 1), 1000)
        art = _schotter(cols, min(max(numbers[1] if len(numbers) > 1 else 8, 1), 200),
                        min(max(numbers[2] if len(numbers) > 2 else 12, 1), 200))
        tail = art + "\nGeorg Nees - schotter, plotter on paper, 1968. " + tail
    elif version == 6:
        tail = (_skyline() + "\nDedicated to the 8 bit game developers of past and present.\n"
                "Original 8 bit image from Plaguemon by hikikomori. " + tail)
    return Verbatim(tail.encode())


def _schotter(cols: int, per_row: int, per_col: int) -> str:
    """Rows of squares that tumble more the lower they are, in block characters."""
    rng = random.Random(0)
    width = max(cols // max(per_row, 1), 2)
    lines = []
    for row in range(min(per_col, 40)):
        line = []
        for _ in range(per_row):
            shift = int(rng.random() * row * width / per_col)
            line.append((" " * shift + "\u25a1").ljust(width)[:width])
        lines.append("".join(line)[:cols])
    return "\n".join(lines)


def _skyline() -> str:
    rng = random.Random(6)
    heights = [rng.randrange(1, 9) for _ in range(40)]
    return "\n".join("".join("\u2588" if h >= level else " " for h in heights)
                     for level in range(8, 0, -1))
