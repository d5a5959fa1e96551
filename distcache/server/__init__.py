"""The distcache server: network, command table, keyspace, persistence."""
from .app import CacheServer, run_server

__all__ = ["CacheServer", "run_server"]
