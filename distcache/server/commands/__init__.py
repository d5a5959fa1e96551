"""Command handlers, one module per data type, all registered in :mod:`.table`."""
from . import connection, keys, server, strings  # noqa: F401  (registration)
from . import hashes, lists, sets, zset_algebra, zsets  # noqa: F401  (data structures)
from . import persistence  # noqa: F401  (SAVE, BGSAVE, LASTSAVE, BGREWRITEAOF)
from . import memory, pubsub, transactions  # noqa: F401  (MULTI, pub/sub, MEMORY)
from . import objects  # noqa: F401  (OBJECT)
from . import scripting  # noqa: F401  (EVAL, SCRIPT; the engine is server/scripting/)
from .table import COMMANDS, CommandSpec, command, lookup_table  # noqa: F401
