"""Server configuration: directives with Redis's names, types and defaults.

Sources, lowest precedence first: built-in defaults, a config file in
redis.conf syntax, ``DISTCACHE_*`` environment variables, then command-line
``--name value`` flags (and keyword arguments for the embedded server).
The directives themselves (defaults, parsers) are in directives.py.
"""
from __future__ import annotations

import logging
import os
import shlex
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .directives import (ALIASES, DIRECTIVES, REDIS_ONLY, ConfigError, Directive,
                         parse_bool, parse_memory, parse_save)
from .redis_defaults import REDIS_DEFAULTS

__all__ = ["ALIASES", "DIRECTIVES", "REDIS_ONLY", "Config", "ConfigError", "Directive",
           "build_config", "parse_bool", "parse_flags", "parse_memory", "parse_save"]

log = logging.getLogger("distcache.config")

ENV_PREFIX = "DISTCACHE_"
#: Directives of the client's config (``server_pool``), skipped by the server.
CLIENT_ONLY = frozenset(["server_pool", "server-pool"])


class Config:
    """Parsed directive values; ``config["port"]`` gives the typed value."""

    def __init__(self) -> None:
        self._values: Dict[str, Any] = {}
        self._raw: Dict[str, str] = {}
        self.foreign: Dict[str, str] = {}  # REDIS_ONLY directives, kept for CONFIG GET
        self.source_file: Optional[str] = None
        #: ``user <name> <rules...>`` lines (without ``user``), as redis.conf repeats them.
        self.users: List[str] = []
        for directive in DIRECTIVES.values():
            self._store(directive, directive.default)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def _store(self, directive: Directive, text: str) -> None:
        try:
            value = directive.parse(text)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"Invalid argument '{text}' for '{directive.name}' - {exc}",
                f"ERR CONFIG SET failed (possibly related to argument '{directive.name}') - "
                f"{exc}") from None
        previous = self._values.get(directive.name)
        if isinstance(value, dict) and isinstance(previous, dict):
            value = {**previous, **value}  # per-class limits: the classes named change
        self._values[directive.name] = value
        self._raw[directive.name] = text

    def set(self, name: str, text: str, *, startup: bool = True) -> None:
        """Set one directive from text; unknown names are an error."""
        name = ALIASES.get(name.lower(), name.lower())
        directive = DIRECTIVES.get(name)
        if name == "user" and startup:  # repeatable: one ACL user per line
            self.users.append(text)
            return
        if directive is None:
            if name in REDIS_ONLY:
                log.warning("directive %r has no effect in distcache; stored only", name)
                self.foreign[name] = text
                return
            raise ConfigError(f"Unknown directive '{name}'")
        if not startup and not directive.mutable:
            raise ConfigError(
                f"'{name}' can't be changed at run time",
                f"ERR CONFIG SET failed (possibly related to argument '{name}') - "
                "can't set immutable config")
        self._store(directive, text)

    def render(self, name: str) -> str:
        """The value as CONFIG GET shows it."""
        name = ALIASES.get(name, name)
        if name in self.foreign:
            return self.foreign[name]
        if name in REDIS_DEFAULTS:
            return REDIS_DEFAULTS[name]
        return DIRECTIVES[name].render(self._values[name])

    def rewrite(self, path: str) -> None:
        """Write every directive that differs from its default to ``path``."""
        lines = ["# Written by distcache CONFIG REWRITE"]
        for name, directive in DIRECTIVES.items():
            if self._raw[name] != directive.default:
                lines.append(f"{name} {_quote(self.render(name))}")
        for name, value in self.foreign.items():
            lines.append(f"{name} {_quote(value)}")
        lines += [f"user {line}" for line in self.users]
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        os.replace(tmp, path)

    def names(self) -> Iterable[str]:
        """What CONFIG GET can show: ours, then Redis's (set, or with a default)."""
        yield from DIRECTIVES
        yield from ALIASES
        yield from self.foreign
        yield from (name for name in REDIS_DEFAULTS if name not in self.foreign)

    # -- sources ----------------------------------------------------------------

    def load_file(self, path: str) -> None:
        """Read a redis.conf-style file: ``name value...`` per line, ``#`` comments."""
        self.source_file = os.path.abspath(path)
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                try:
                    parts = shlex.split(line)
                except ValueError:
                    raise ConfigError(f"{path}:{lineno}: unbalanced quotes") from None
                name, values = parts[0].lower(), parts[1:]
                if name in CLIENT_ONLY:  # for clients sharing the file (distcache.client)
                    continue
                try:
                    if name == "save" and name in self._raw and self._raw[name] != \
                            DIRECTIVES["save"].default and values != [""]:
                        # Repeated ``save`` lines accumulate, as in redis.conf.
                        self.set(name, self._raw[name] + " " + " ".join(values))
                    else:
                        self.set(name, " ".join(values))
                except ConfigError as exc:
                    raise ConfigError(f"{path}:{lineno}: {exc}") from None

    def load_env(self, environ: Mapping[str, str]) -> None:
        for key, value in environ.items():
            if not key.startswith(ENV_PREFIX) or key == "DISTCACHE_SERVERS":
                continue
            name = key[len(ENV_PREFIX):].lower().replace("_", "-")
            if name in DIRECTIVES or name in REDIS_ONLY:
                self.set(name, value)
            elif name != "config":
                log.debug("ignoring environment variable %s", key)

    def load_mapping(self, values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            if isinstance(value, bool):
                value = "yes" if value else "no"
            self.set(name.replace("_", "-"), str(value))


def parse_flags(argv: Sequence[str]) -> Tuple[Optional[str], Dict[str, str]]:
    """Split redis-server style arguments into (config file, {directive: value}).

    ``--save 900 1 --port 7000`` gives save="900 1" and port="7000", like redis-server.
    """
    config_file: Optional[str] = None
    directives: Dict[str, str] = {}
    i = 0
    args = list(argv)
    if args and not args[0].startswith("--"):
        config_file = args.pop(0)
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"unexpected argument {token!r}")
        name = token[2:].lower()
        values: List[str] = []
        i += 1
        while i < len(args) and not (args[i].startswith("--") and len(args[i]) > 2
                                     and not _is_number(args[i])):
            values.append(args[i])
            i += 1
        value = " ".join(values)
        if name == "config":
            config_file = value
        else:
            directives[name] = value
    return config_file, directives


def _quote(value: str) -> str:
    return shlex.quote(value) if value else '""'


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def build_config(argv: Sequence[str] = (), environ: Optional[Mapping[str, str]] = None,
                 overrides: Optional[Mapping[str, Any]] = None,
                 config_file: Optional[str] = None) -> Config:
    """Defaults < config file < environment < flags < keyword overrides."""
    environ = os.environ if environ is None else environ
    file_from_flags, flags = parse_flags(argv)
    config = Config()
    path = file_from_flags or config_file or environ.get(ENV_PREFIX + "CONFIG")
    if path:
        config.load_file(path)
    config.load_env(environ)
    for name, value in flags.items():
        config.set(name, value)
    if overrides:
        config.load_mapping(overrides)
    return config
