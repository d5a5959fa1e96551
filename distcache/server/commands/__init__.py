"""Command handlers, one module per data type, all registered in :mod:`.table`."""
from . import bitmaps, connection, hyperloglog, keys, lcs, server, strings  # noqa: F401
from . import geo, hashes, lists, sets, zset_algebra, zsets  # noqa: F401  (data structures)
from . import stream_groups, stream_info, stream_read, streams  # noqa: F401  (streams)
from . import persistence  # noqa: F401  (SAVE, BGSAVE, LASTSAVE, BGREWRITEAOF)
from . import memory, pubsub, transactions  # noqa: F401  (MULTI, pub/sub, MEMORY)
from . import acl, dump, functions, objects, scripting, sort  # noqa: F401  (server/scripting/)
from . import client_control, introspection  # noqa: F401  (CLIENT PAUSE, MONITOR, SLOWLOG)
from . import tracking  # noqa: F401  (CLIENT TRACKING and friends: server/tracking.py)
from . import replica, replication  # noqa: F401  (REPLICAOF, ROLE; SYNC, PSYNC, REPLCONF, WAIT)
from .table import COMMANDS, CommandSpec, command, lookup_table  # noqa: F401
