"""min-replicas-to-write / min-replicas-max-lag: refuse writes without enough good
replicas, with Redis's ``NOREPLICAS`` error.

A replica is good when it is online and acknowledged within ``min-replicas-max-lag``
seconds. The count is refreshed on every ACK, on the cron and when a replica
comes or goes. While writes are refused, a layer over the command table
(``table.set_layer``) puts one that raises over the write commands, so the dispatcher
and every server without the directive pay nothing for the check; it applies to
clients and to scripts' calls. ``server.replicas_refusal`` holds the error meanwhile,
for what Redis refuses before it runs: a write queued in MULTI (EXEC then answers
EXECABORT), EXEC of a queued write (``EXECABORT ... because of: NOREPLICAS ...``),
and a script whose shebang does not say ``no-writes`` (EVAL, EVALSHA, FCALL).
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, List, Tuple

from ..commands.table import set_layer
from ..errors import CommandError

if TYPE_CHECKING:
    from .primary import Primary

log = logging.getLogger("distcache.replication")

NOREPLICAS = "NOREPLICAS Not enough good replicas to write."


def _refuse(c: Any, args: List[bytes]) -> Any:
    raise CommandError(NOREPLICAS)


def _refusing(spec: Any, handler: Any) -> Any:
    return _refuse if spec.write else None


_SCRIPTS = frozenset([b"eval", b"evalsha", b"eval_ro", b"evalsha_ro", b"fcall", b"fcall_ro"])


def writes(c: Any, spec: Any, args: List[bytes]) -> bool:
    """Whether Redis counts the command as a write: its flag, or a script whose
    shebang (a function's flags) lacks ``no-writes`` (Redis's evalGetCommandFlags)."""
    if spec.write:
        return True
    name = args[0].lower()
    if name not in _SCRIPTS or len(args) < 2:
        return False
    from ..scripting import engine
    from ..scripting.eval import parse_shebang
    flags: Any = None
    try:
        if name.startswith(b"fcall"):
            function = engine(c.server).functions.get(args[1])
            flags = function.flags if function is not None else None
        elif name.startswith(b"evalsha"):
            script = engine(c.server).get(args[1])
            flags = script.flags if script is not None else None
        else:
            flags = parse_shebang(args[1])[0]
    except CommandError:  # a bad shebang, no Lua: the command's own error comes later
        return False
    return flags is not None and "no-writes" not in flags


def check_queued(c: Any, spec: Any, args: List[bytes]) -> None:
    """A write is refused instead of queued while writes are refused."""
    if writes(c, spec, args):
        raise CommandError(NOREPLICAS)


def check_exec(c: Any) -> None:
    """EXEC of a transaction holding a write (queued before the refusal began)."""
    table = c.table
    for args in c.multi_queue:
        spec = table.get(args[0]) or table.get(args[0].lower())
        if spec is not None and spec.subcommands and len(args) > 1:
            spec = spec.subcommands.get(args[1]) or spec.subcommands.get(args[1].lower()) \
                or spec
        if spec is not None and writes(c, spec, args):
            raise CommandError(NOREPLICAS)


class WriteGuard:
    """Counts good replicas and turns the write refusal on and off."""

    def __init__(self, primary: "Primary") -> None:
        self.primary = primary
        self.config = primary.config
        self.good = 0
        self.refusing = False

    def enabled(self) -> bool:
        return bool(self.config["min-replicas-to-write"] and self.config["min-replicas-max-lag"])

    def refresh(self) -> None:
        if not self.enabled():
            self._allow()
            return
        now = time.monotonic()
        lag = self.config["min-replicas-max-lag"]
        self.good = sum(1 for link in self.primary.replicas
                        if link.repl_state == "online" and now - link.repl_ack_time <= lag)
        if self.good < self.config["min-replicas-to-write"] \
                and self.primary.state.role == "master":
            self._refuse()
        else:
            self._allow()

    def _refuse(self) -> None:
        if self.refusing:
            return
        log.warning("Not enough good replicas (%d of %d): refusing writes", self.good,
                    self.config["min-replicas-to-write"])
        self.refusing = True
        self.primary.server.replicas_refusal = NOREPLICAS
        set_layer("min-replicas refusal", 20, _refusing)

    def _allow(self) -> None:
        if not self.refusing:
            return
        self.refusing = False
        self.primary.server.replicas_refusal = None
        set_layer("min-replicas refusal", 20, None)
        log.info("Enough good replicas again: writes are accepted")

    def info_fields(self) -> List[Tuple[str, Any]]:
        return [("min_slaves_good_slaves", self.good)] if self.enabled() else []
