"""Command handlers, one module per data type, all registered in :mod:`.table`."""
from . import connection, keys, server, strings  # noqa: F401  (registration)
from .table import COMMANDS, CommandSpec, command, lookup_table  # noqa: F401
