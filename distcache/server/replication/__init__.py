"""Replication in Redis's own protocol.

``state.py`` holds what both roles share (replication ids and offsets); the primary
side (serving SYNC/PSYNC, the backlog, WAIT) and the replica side (REPLICAOF, loading a
full sync, applying the stream) build on it.
"""
from .state import ReplicationState, install

__all__ = ["ReplicationState", "install"]
