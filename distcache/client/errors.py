"""Exceptions raised by the distcache client.

Every error derives from :class:`CacheError`, so ``except CacheError``
catches all of them. The connection errors also derive from the builtin
:class:`ConnectionError` / :class:`TimeoutError`, so generic network
handling keeps working.
"""
from __future__ import annotations

import builtins

__all__ = ["CacheError", "ConnectionError", "TimeoutError", "AuthenticationError",
           "ServerDown", "ResponseError", "DecodeError"]


class CacheError(Exception):
    """Base class of every distcache client error."""


class ConnectionError(CacheError, builtins.ConnectionError):
    """The connection to a server failed or was lost mid-request."""


class TimeoutError(ConnectionError, builtins.TimeoutError):
    """A server did not answer within the timeout."""


class AuthenticationError(ConnectionError):
    """The server refused the password (or wanted one and got none)."""


class ServerDown(ConnectionError):
    """The key's server is marked down and the failover policy is ``"error"``
    (or no live server is left)."""


class ResponseError(CacheError):
    """The server answered with an error reply (``-ERR ...``)."""


class DecodeError(CacheError, ValueError):
    """A stored value is malformed, too large or nested too deeply."""
