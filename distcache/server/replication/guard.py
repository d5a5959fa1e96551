"""min-replicas-to-write / min-replicas-max-lag: refuse writes without enough good
replicas, with Redis's ``NOREPLICAS`` error.

A replica is good when it is online and acknowledged within ``min-replicas-max-lag``
seconds. The count is refreshed on every ACK, on the cron and when a replica
comes or goes. While writes are refused, a layer over the command table
(``table.set_layer``) puts one that raises over the write commands, so the dispatcher
and every server without the directive pay nothing for the check; as in Redis
it applies to clients, to EXEC's queued writes and to scripts' calls.
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
        set_layer("min-replicas refusal", 20, _refusing)

    def _allow(self) -> None:
        if not self.refusing:
            return
        self.refusing = False
        set_layer("min-replicas refusal", 20, None)
        log.info("Enough good replicas again: writes are accepted")

    def info_fields(self) -> List[Tuple[str, Any]]:
        return [("min_slaves_good_slaves", self.good)] if self.enabled() else []
