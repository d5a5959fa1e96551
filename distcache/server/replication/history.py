"""A replica's place in its primary's history, kept beside the snapshot.

Redis keeps ``repl-id`` and ``repl-offset`` in its RDB's aux fields, so that a
replica restarted from that file asks its primary for a partial resync from
there. distcache's snapshots have no aux fields, so the pair goes to a small
file beside the snapshot (``<dbfilename>.repl``), written after the snapshot and
naming it (its creation time and size): a pair that does not match the snapshot
loaded is ignored, and the replica asks for a full sync.

As in Redis 7.0, this is used only when the dataset came from the snapshot
alone (``appendonly no``): with the log on, the data loaded goes past the
snapshot by an unknown part of the stream, so a full sync follows a restart.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Optional, Tuple

log = logging.getLogger("distcache.replication")

Captured = Optional[Tuple[str, int]]


def sidecar_path(dump_path: str) -> str:
    return dump_path + ".repl"


def capture(server: Any) -> Captured:
    """(replid, offset) the dataset matches now, before a snapshot is taken of it."""
    state = getattr(server, "replication", None)
    if state is None or not state.synced:
        return None
    link = state.link
    offset = link.offset() if link is not None and link.client is not None \
        else state.master_repl_offset
    return state.replid, offset


def saved(dump_path: str, captured: Captured) -> None:
    """After a snapshot of ``dump_path`` was written: record what it matches."""
    from ...persistence import snapshot
    path = sidecar_path(dump_path)
    try:
        if captured is None:
            if os.path.exists(path):
                os.unlink(path)
            return
        info = snapshot.read_header(dump_path)
        record = {"replid": captured[0], "offset": captured[1],
                  "snapshot_created_ms": info.created_ms, "snapshot_size": info.size}
        import json  # here: json's import is start-up time most servers never use
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(record, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, ValueError) as exc:  # only the next partial resync is lost
        log.warning("could not record the replication offset beside %s: %s", dump_path, exc)


def restore(server: Any) -> bool:
    """At start-up: take the history recorded with the snapshot that was loaded."""
    from ...persistence import snapshot
    from ...persistence.loader import paths
    config = server.config
    if config["appendonly"]:
        return False
    dump_path = paths(config)[0]
    try:
        with open(sidecar_path(dump_path), encoding="utf-8") as fh:
            import json  # only when there is a file (see record())
            record = json.load(fh)
        info = snapshot.read_header(dump_path)
        replid, offset = str(record["replid"]), int(record["offset"])
        if record["snapshot_created_ms"] != info.created_ms \
                or record["snapshot_size"] != info.size or len(replid) != 40:
            log.info("the replication offset file does not match the snapshot; ignored")
            return False
    except (OSError, ValueError, KeyError, TypeError, snapshot.SnapshotError):
        return False
    state = server.replication
    state.replid = replid
    state.master_repl_offset = offset
    state.synced = True
    log.info("replication history from the snapshot: %s:%d", replid, offset)
    return True
