"""Command errors with Redis's exact texts."""
from __future__ import annotations


class CommandError(Exception):
    """Raised by a handler; the dispatcher turns it into an error reply."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
SYNTAX = "ERR syntax error"
NO_SUCH_KEY = "ERR no such key"
OVERFLOW = "ERR increment or decrement would overflow"
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
DB_RANGE = "ERR DB index is out of range"
OOM = "OOM command not allowed when used memory > 'maxmemory'."
LOADING = "LOADING Redis is loading the dataset in memory"
#: Writes (and PING) refused after a failed background save (stop-writes-on-bgsave-error).
MISCONF_RDB = (
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist "
    "to disk. Commands that may modify the data set are disabled, because this instance is "
    "configured to report errors during writes if RDB snapshotting fails "
    "(stop-writes-on-bgsave-error option). Please check the Redis logs for details about the "
    "RDB error.")
MAX_CLIENTS = "ERR max number of clients reached"
PROTECTED_MODE = (
    "DENIED Redis is running in protected mode because protected mode is enabled and no "
    "password is set for the default user. In this mode connections are only accepted from "
    "the loopback interface. If you want to connect from external computers to Redis you may "
    "adopt one of the following solutions: 1) Just disable protected mode sending the command "
    "'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from "
    "the same host the server is running, however MAKE SURE Redis is not publicly accessible "
    "from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) "
    "Alternatively you can just disable the protected mode by editing the Redis configuration "
    "file, and setting the protected mode option to 'no', and then restarting the server. 3) "
    "If you started the server manually just for testing, restart it with the "
    "'--protected-mode no' option. 4) Set up an authentication password for the default user. "
    "NOTE: You only need to do one of the above things in order for the server to start "
    "accepting connections from the outside.")


def wrong_arity(fullname: str) -> CommandError:
    return CommandError(f"ERR wrong number of arguments for '{fullname}' command")


def unknown_command(args: list) -> CommandError:
    name = args[0].decode("utf-8", "replace")[:128]
    rest = ""
    for arg in args[1:]:
        if len(rest) >= 128:
            break
        rest += "'%s' " % arg.decode("utf-8", "replace")[:128 - len(rest)]
    return CommandError(f"ERR unknown command '{name}', with args beginning with: {rest}")


def misconf_aof(reason: str) -> str:
    """Writes (and PING) refused while writing the append-only log fails."""
    return f"MISCONF Errors writing to the AOF file: {reason}"


def subcommand_syntax(args: list) -> str:
    """Redis's addReplySubcommandSyntaxError: a subcommand with arguments it does not take."""
    sub = args[1].decode("utf-8", "replace")[:128]
    return (f"ERR unknown subcommand or wrong number of arguments for '{sub}'. "
            f"Try {args[0].decode('utf-8', 'replace').upper()} HELP.")


def unknown_subcommand(args: list) -> CommandError:
    sub = args[1].decode("utf-8", "replace")[:128]
    return CommandError(f"ERR unknown subcommand '{sub}'. Try {args[0].decode().upper()} HELP.")
