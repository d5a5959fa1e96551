"""Flow control of one client: stop reading while its output cannot drain, and
run a big pipelined read in fair shares, one a loop turn.

A mixin of :class:`~distcache.server.connection.Client` (asyncio.Protocol's
pause/resume_writing hooks and the share scheduler); the state lives there.
"""
from __future__ import annotations

#: Most commands of one client run in one loop turn: a read holding more runs them
#: in shares, one a turn, so a burst of tiny requests takes turns with the others.
FAIR_SHARE = 1000


class FlowControl:
    """Backpressure and fair shares (mixed into Client)."""

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.transport is not None and not self.reading_paused:
            self.transport.pause_reading()
            self.reading_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.pending and not self.blocked:
            self._schedule_share()  # it reads again once nothing waits
            return
        if self.transport is not None and self.reading_paused and not self.blocked:
            self.reading_paused = False
            self.transport.resume_reading()

    def _schedule_share(self) -> None:
        if not self.share_scheduled:
            self.share_scheduled = True
            self.server.loop.call_soon(self._run_share)

    def _run_share(self) -> None:
        """Run the next FAIR_SHARE waiting commands; read again once none wait."""
        self.share_scheduled = False
        if self.closed or self.closing or self.blocked or self.write_paused:
            return  # unblock() or resume_writing() carries on
        pending = self.pending
        batch = [pending.popleft() for _ in range(min(FAIR_SHARE, len(pending)))]
        if batch:
            ran = self.run(batch, self.out)
            if ran < len(batch):
                pending.extendleft(reversed(batch[ran:]))
            if self.server.before_reply:
                self.server.log_read(self, None, batch)
            else:
                self.flush()
        if pending:
            if not (self.blocked or self.closing):
                self._schedule_share()
        elif self.reading_paused and not (self.write_paused or self.closed
                                          or self.transport is None):
            self.reading_paused = False
            self.transport.resume_reading()

    def _pause_reading(self) -> None:
        if self.transport is not None and not self.reading_paused:
            self.transport.pause_reading()
            self.reading_paused = True
