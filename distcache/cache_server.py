"""The original project's import path: ``from distcache.cache_server import CacheServer``."""
from .server import CacheServer

__all__ = ["CacheServer"]
