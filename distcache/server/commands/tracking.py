"""CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO (client-side caching).

The table and the invalidations live in ``server/tracking.py``; these handlers
check the options with Redis 7.0's rules and texts and switch a client over.
"""
from __future__ import annotations

from bisect import bisect_left, insort
from typing import Any, List, Optional

from ...protocol import OK
from ..errors import CommandError, SYNTAX
from .args import to_int
from .table import command

_SUB = dict(parent="client", group="connection", since="6.0.0")
_FLAGS = "noscript loading stale"
_ERR_SWITCH = ("ERR You can't switch {} mode{} before disabling tracking for this client, "
               "and then re-enabling it with a different mode.")


def _overlap(a: bytes, b: bytes) -> bool:
    """Whether one prefix is a prefix of the other (Redis's stringCheckPrefix)."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _overlapping(ordered: List[bytes], prefix: bytes) -> Optional[bytes]:
    """A prefix of sorted ``ordered`` that overlaps ``prefix``, or None, by bisection:
    only the neighbours of ``prefix`` in sort order can (a radix seek in Redis)."""
    at = bisect_left(ordered, prefix)
    if at > 0 and prefix.startswith(ordered[at - 1]):
        return ordered[at - 1]
    if at < len(ordered) and ordered[at].startswith(prefix):
        return ordered[at]
    return None


def _check_prefixes(existing: List[bytes], prefixes: List[bytes]) -> None:
    """Redis's checkPrefixCollisionsOrReply: the first prefix (in argument order) that
    overlaps one the client has, or a later argument, is named in the error.

    In O(n log n + n * length): comparing every pair, as it did, cost minutes of
    event loop for a client adding 50,000 prefixes in batches."""
    ordered = sorted(existing)
    # Which arguments overlap a later one: walk from the end, the later ones sorted.
    later: List[bytes] = []
    seen = set()
    clashes = [False] * len(prefixes)
    for i in range(len(prefixes) - 1, -1, -1):
        prefix = prefixes[i]
        clashes[i] = _overlapping(later, prefix) is not None or any(
            prefix[:n] in seen for n in range(len(prefix) + 1))
        insort(later, prefix)
        seen.add(prefix)
    for i, prefix in enumerate(prefixes):
        old = _overlapping(ordered, prefix)
        if old is not None:
            raise CommandError(
                f"ERR Prefix '{prefix.decode('utf-8', 'replace')}' overlaps with an "
                f"existing prefix '{old.decode('utf-8', 'replace')}'. Prefixes for a "
                "single client must not overlap.")
        if clashes[i]:
            other = next(o for o in prefixes[i + 1:] if _overlap(prefix, o))
            raise CommandError(
                f"ERR Prefix '{prefix.decode('utf-8', 'replace')}' overlaps with another "
                f"provided prefix '{other.decode('utf-8', 'replace')}'. Prefixes for a "
                "single client must not overlap.")


@command("tracking", -3, _FLAGS, **_SUB)
def client_tracking(c: Any, args: List[bytes]) -> Any:
    """Turn client-side caching invalidations on or off (REDIRECT, BCAST, PREFIX...)."""
    redirect = 0
    options = set()
    prefixes: List[bytes] = []
    j = 3
    while j < len(args):
        opt = args[j].upper()
        more = j + 1 < len(args)
        if opt == b"REDIRECT" and more:
            j += 1
            if redirect:
                raise CommandError("ERR A client can only redirect to a single other client")
            redirect = to_int(args[j])
            if redirect not in c.server.clients:
                raise CommandError("ERR The client ID you want redirect to does not exist")
        elif opt in (b"BCAST", b"OPTIN", b"OPTOUT", b"NOLOOP"):
            options.add(opt)
        elif opt == b"PREFIX" and more:
            j += 1
            prefixes.append(args[j])
        else:
            raise CommandError(SYNTAX)
        j += 1
    mode = args[2].upper()
    tracking = c.server.tracking
    if mode == b"OFF":
        tracking.disable(c)
        return OK
    if mode != b"ON":
        raise CommandError(SYNTAX)
    bcast = b"BCAST" in options
    optin, optout = b"OPTIN" in options, b"OPTOUT" in options
    state = c.tracking
    if prefixes and not bcast:
        raise CommandError("ERR PREFIX option requires BCAST mode to be enabled")
    if state is not None and state.bcast != bcast:
        raise CommandError(_ERR_SWITCH.format("BCAST", " on/off"))
    if bcast and (optin or optout):
        raise CommandError("ERR OPTIN and OPTOUT are not compatible with BCAST")
    if optin and optout:
        raise CommandError("ERR You can't specify both OPTIN mode and OPTOUT mode")
    if state is not None and ((optin and state.optout) or (optout and state.optin)):
        raise CommandError(_ERR_SWITCH.format("OPTIN/OPTOUT", ""))
    if bcast:
        _check_prefixes(state.prefixes if state is not None else [], prefixes)
    tracking.enable(c, redirect, bcast, optin, optout, b"NOLOOP" in options, prefixes)
    return OK


@command("caching", 3, _FLAGS, **_SUB)
def client_caching(c: Any, args: List[bytes]) -> Any:
    """Whether the next command's keys are tracked (OPTIN: YES, OPTOUT: NO)."""
    state = c.tracking
    if state is None:
        raise CommandError("ERR CLIENT CACHING can be called only when the client is in "
                           "tracking mode with OPTIN or OPTOUT mode enabled")
    opt = args[2].upper()
    if opt == b"YES":
        if not state.optin:
            raise CommandError("ERR CLIENT CACHING YES is only valid when tracking is "
                               "enabled in OPTIN mode.")
    elif opt == b"NO":
        if not state.optout:
            raise CommandError("ERR CLIENT CACHING NO is only valid when tracking is "
                               "enabled in OPTOUT mode.")
    else:
        raise CommandError(SYNTAX)
    state.caching = True
    state.clear_caching = False
    return OK


@command("getredir", 2, _FLAGS, **_SUB)
def client_getredir(c: Any, args: List[bytes]) -> Any:
    """The id invalidations are redirected to (0: none, -1: tracking off)."""
    return -1 if c.tracking is None else c.tracking.redirect


@command("trackinginfo", 2, _FLAGS, **{**_SUB, "since": "6.2.0"})
def client_trackinginfo(c: Any, args: List[bytes]) -> Any:
    """This connection's tracking flags, redirect and prefixes."""
    state = c.tracking
    if state is None:
        flags = [b"off"]
    else:
        flags = [b"on"]
        for on, name in ((state.bcast, b"bcast"), (state.optin, b"optin"),
                         (state.optin and state.caching, b"caching-yes"),
                         (state.optout, b"optout"), (state.optout and state.caching, b"caching-no"),
                         (state.noloop, b"noloop"), (state.broken, b"broken_redirect")):
            if on:
                flags.append(name)
    from ...protocol import RespSet
    return {b"flags": RespSet(flags), b"redirect": -1 if state is None else state.redirect,
            b"prefixes": sorted(state.prefixes) if state is not None else []}
