"""Functions: FUNCTION LOAD's libraries and FCALL (Redis's functions.c, function_lua.c).

A library is Lua code behind a ``#!lua name=<lib>`` line; loading it runs the
code once, in a Lua state of its own (SCRIPT FLUSH leaves it alone), with
only ``redis.register_function``, ``redis.log`` and the version fields as
globals, for at most :data:`LOAD_TIMEOUT` seconds. The functions it
registers run later through the EVAL engine's ``run`` (same checks, same
log propagation, same BUSY handling), called with ``(keys, args)``.

The libraries' code is the data that persists: :class:`FunctionStore`
publishes it as ``keyspace.function_codes`` after every change, snapshots
write that list (persistence/snapshot.py) and loading one replaces it; the
store notices a list it did not publish and compiles it (:meth:`sync`), so
neither the loader nor the snapshot code knows about Lua. The append-only
log records FUNCTION LOAD, DELETE, FLUSH and RESTORE as sent (each bumps
``keyspace.dirty``).

FUNCTION DUMP writes Redis's payload (each library an RDB FUNCTION2 opcode
and its code as an RDB string, then the RDB version and a CRC64), so a dump
from redis-server 7.0 restores here and ours restores there.
"""
from __future__ import annotations

import io
import logging
import re
import time
from typing import Any, Dict, List, Optional, Tuple

import lupa.lua51 as lupa

from ...protocol import Status
from ...protocol.resp import RespSet, split_inline
from ...rdb import RDB_VERSION, RdbError, RdbReader, crc64, verify_payload
from ...rdb.codec import LzfBudget, encode_string
from ..errors import CommandError
from . import split_keys
from .lua import LuaRuntime, ScriptError
from .replies import lua_tostring

log = logging.getLogger("distcache.scripting")

#: Seconds a library's code may run while it loads (Redis: 500 ms).
LOAD_TIMEOUT = 0.5
#: Lua instructions between two checks of the load timeout.
LOAD_HOOK_EVERY = 100_000
#: Function flags, in the order FUNCTION LIST gives them (Redis's scripts_flags_def).
FLAGS = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")
OP_FUNCTION2, OP_FUNCTION_PRE_GA = 245, 246
# As Redis 7.0, a bad function name gets the library text too.
NAME_ERROR = ("Library names can only contain letters, numbers, or underscores(_) and must "
              "be at least one character long")
_NAME = re.compile(rb"[A-Za-z0-9_]+\Z")


class Function:
    """A registered function; ``sha`` is its name, as error texts name it."""

    __slots__ = ("sha", "func", "flags", "description", "library")

    def __init__(self, name: bytes, func: Any, flags: frozenset, description: Optional[bytes],
                 library: "Library") -> None:
        self.sha = name
        self.func = func
        self.flags = flags
        self.description = description
        self.library = library


class Library:
    """A loaded library: its name, its code and its functions (by lowercase name)."""

    __slots__ = ("name", "code", "functions")

    def __init__(self, name: bytes, code: bytes) -> None:
        self.name = name
        self.code = code
        self.functions: Dict[bytes, Function] = {}


def parse_metadata(code: bytes) -> Tuple[bytes, int]:
    """The library name and the header's length (functionExtractLibMetaData)."""
    if not code.startswith(b"#!"):
        raise CommandError("ERR Missing library metadata")
    end = code.find(b"\n")
    if end < 0:
        raise CommandError("ERR Invalid library metadata")
    try:
        parts = split_inline(code[:end])
    except Exception:  # unbalanced quotes: sdssplitargs fails
        parts = []
    if not parts:
        raise CommandError("ERR Invalid library metadata")
    engine = parts[0][2:]
    name: Optional[bytes] = None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                raise CommandError("ERR Invalid metadata value, name argument was given "
                                   "multiple times")
            name = part[5:]
            continue
        raise CommandError(f"ERR Invalid metadata value given: {_text(part)}")
    if name is None:
        raise CommandError("ERR Library name was not given")
    if not _NAME.match(name):
        raise CommandError(f"ERR {NAME_ERROR}")
    if engine.lower() != b"lua":
        raise CommandError(f"ERR Engine '{_text(engine)}' not found")
    return name, end


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _is_function(value: Any) -> bool:
    return lupa.lua_type(value) == "function" or (lupa.lua_type(value) is None and callable(value))


class FunctionStore:
    """Every library and function, and the Lua state they live in."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.server = engine.server
        self.libraries: Dict[bytes, Library] = {}
        self.functions: Dict[bytes, Function] = {}
        self.runtime: Optional[LuaRuntime] = None
        #: The list last published as keyspace.function_codes.
        self.codes: Optional[List[bytes]] = None
        self._loading: Optional[Library] = None
        self._deadline = 0.0

    # -- the Lua state --------------------------------------------------------------

    def _runtime(self) -> LuaRuntime:
        if self.runtime is None:
            from .libs import libraries
            self.runtime = LuaRuntime(self.engine, self.engine.version, libraries,
                                      register=self._register, load_hook=self._load_hook)
        return self.runtime

    def memory(self) -> int:
        return self.runtime.memory() if self.runtime is not None else 0

    def code_bytes(self) -> int:
        """Bytes of the loaded libraries' code (INFO used_memory_functions)."""
        return sum(map(len, self.codes or ()))

    def _load_hook(self) -> bool:
        return time.monotonic() > self._deadline

    # -- persistence: keyspace.function_codes ---------------------------------------------

    def sync(self) -> None:
        """Compile the libraries a snapshot put in the keyspace, if it did."""
        codes = getattr(self.server.keyspace, "function_codes", None)
        if codes is self.codes:
            return
        self.libraries, self.functions, self.runtime = {}, {}, None
        for code in codes or ():
            try:
                self._create(code, False, self.libraries, self.functions)
            except CommandError as exc:
                log.warning("a saved function library does not load: %s", exc.text)
        self.publish()

    def publish(self) -> None:
        """The libraries' code, where snapshots read it; the change reaches the log."""
        self.codes = self.server.keyspace.function_codes = [
            lib.code for lib in self.libraries.values()]
        self.engine.account()

    # -- FUNCTION LOAD, DELETE, FLUSH --------------------------------------------------

    def load(self, code: bytes, replace: bool) -> bytes:
        self.sync()
        lib = self._create(code, replace, self.libraries, self.functions)
        self.publish()
        return lib.name

    def _create(self, code: bytes, replace: bool, libraries: Dict[bytes, Library],
                functions: Dict[bytes, Function]) -> Library:
        """Load ``code`` into ``libraries`` and ``functions`` (functionsCreateWithLibraryCtx)."""
        name, skip = parse_metadata(code)
        old = libraries.get(name)
        if old is not None and not replace:
            raise CommandError(f"ERR Library '{_text(name)}' already exists")
        lib = Library(name, code)
        runtime = self._runtime()
        self._loading = lib
        self._deadline = time.monotonic() + LOAD_TIMEOUT
        try:
            err = runtime.load_library(code[skip:], LOAD_HOOK_EVERY)
        finally:
            self._loading = None
        if err is not None:
            compiled = err[b"compile"]
            if compiled is not None:
                raise CommandError(f"ERR Error compiling function: {_text(compiled)}")
            text = err[b"err"]
            text = _text(text) if text.__class__ is bytes else "ERR unknown error"
            raise CommandError(f"ERR Error registering functions: {text}")
        if not lib.functions:
            raise CommandError("ERR No functions registered")
        for key, function in lib.functions.items():
            other = functions.get(key)
            if other is not None and other.library is not old:
                raise CommandError(f"ERR Function {_text(function.sha)} already exists")
        if old is not None:
            for key in old.functions:
                functions.pop(key, None)
        libraries[name] = lib
        functions.update(lib.functions)
        return lib

    def delete(self, name: bytes) -> None:
        self.sync()
        lib = self.libraries.pop(name, None)
        if lib is None:
            raise CommandError("ERR Library not found")
        for key in lib.functions:
            self.functions.pop(key, None)
        self.publish()

    def flush(self) -> None:
        """Every library goes, with the Lua state (as Redis frees its library context)."""
        self.libraries, self.functions, self.runtime = {}, {}, None
        self.publish()

    # -- redis.register_function --------------------------------------------------------

    def _register(self, *args: Any) -> None:
        lib = self._loading
        if lib is None:
            raise ScriptError(b"ERR redis.register_function can only be called on "
                              b"FUNCTION LOAD command")
        if not 1 <= len(args) <= 2:
            raise ScriptError(b"ERR wrong number of arguments to redis.register_function")
        flags: frozenset = frozenset()
        description = None
        if len(args) == 1:
            name, callback, flags, description = _named_arguments(args[0])
        else:
            name, callback = lua_tostring(args[0]), args[1]
            if name is None:
                raise ScriptError(b"ERR first argument to redis.register_function must be "
                                  b"a string")
            if not _is_function(callback):
                raise ScriptError(b"ERR second argument to redis.register_function must be "
                                  b"a function")
        if not _NAME.match(name):
            raise ScriptError(b"ERR " + NAME_ERROR.encode())
        key = name.lower()
        if key in lib.functions:
            raise ScriptError(b"ERR Function already exists in the library")
        lib.functions[key] = Function(name, callback, flags, description, lib)

    # -- FCALL -------------------------------------------------------------------------------

    def get(self, name: bytes) -> Optional[Function]:
        self.sync()
        return self.functions.get(name.lower())

    def call(self, c: Any, args: List[bytes], readonly: bool) -> Any:
        """FCALL and FCALL_RO: ``args`` is the whole command."""
        function = self.get(args[1])
        if function is None:
            raise CommandError("ERR Function not found")
        keys, argv = split_keys(args, "ERR Bad number of keys provided")
        return self.engine.run(c, function, keys, argv, readonly, runtime=self._runtime(),
                               command=args)

    # -- FUNCTION LIST, STATS, DUMP, RESTORE ------------------------------------------------

    def listing(self, withcode: bool) -> List[Dict[bytes, Any]]:
        self.sync()
        out = []
        for lib in self.libraries.values():
            entry: Dict[bytes, Any] = {
                b"library_name": lib.name, b"engine": b"LUA",
                b"functions": [{b"name": f.sha, b"description": f.description,
                                b"flags": RespSet([Status(flag.encode()) for flag in FLAGS
                                                   if flag in f.flags])}
                               for f in lib.functions.values()]}
            if withcode:
                entry[b"library_code"] = lib.code
            out.append(entry)
        return out

    def stats(self) -> Dict[bytes, Any]:
        self.sync()
        run = self.engine.running
        running = None
        if run is not None and run.function:
            running = {b"name": run.script.sha, b"command": list(run.argv),
                       b"duration_ms": int((time.perf_counter() - run.start) * 1000)}
        return {b"running_script": running,
                b"engines": {b"LUA": {b"libraries_count": len(self.libraries),
                                      b"functions_count": len(self.functions)}}}

    def dump(self) -> bytes:
        self.sync()
        compress = LzfBudget() if self.server.config["rdbcompression"] else False
        body = b"".join(bytes((OP_FUNCTION2,)) + encode_string(lib.code, compress)
                        for lib in self.libraries.values())
        body += RDB_VERSION.to_bytes(2, "little")
        return body + crc64(body).to_bytes(8, "little")

    def restore(self, payload: bytes, policy: bytes) -> None:
        """FUNCTION RESTORE: all the payload's libraries or none (functionRestoreCommand)."""
        self.sync()
        codes = _payload_codes(payload)
        libraries: Dict[bytes, Library] = {}
        functions: Dict[bytes, Function] = {}
        for code in codes:
            self._create(code, False, libraries, functions)
        if policy != b"FLUSH":
            merged = dict(self.libraries)
            merged_functions = dict(self.functions)
            for name in libraries:
                old = merged.pop(name, None)
                if old is None:
                    continue
                if policy == b"APPEND":
                    raise CommandError(f"ERR Library {_text(name)} already exists")
                for key in old.functions:
                    merged_functions.pop(key, None)
            for lib in libraries.values():
                for key, function in lib.functions.items():
                    if key in merged_functions:
                        raise CommandError(f"ERR Function {_text(function.sha)} already exists")
            merged.update(libraries)
            merged_functions.update(functions)
            libraries, functions = merged, merged_functions
        self.libraries, self.functions = libraries, functions
        self.publish()


def _named_arguments(table: Any) -> Tuple[bytes, Any, frozenset, Optional[bytes]]:
    """redis.register_function{function_name=..., callback=..., flags=..., description=...}."""
    if lupa.lua_type(table) != "table":
        raise ScriptError(b"ERR calling redis.register_function with a single argument is only "
                          b"applicable to Lua table (representing named arguments).")
    name = callback = description = None
    flags: frozenset = frozenset()
    for key, value in table.items():
        text = lua_tostring(key)
        if text is None:
            raise ScriptError(b"ERR named argument key given to redis.register_function is "
                              b"not a string")
        key = text.lower()
        if key == b"function_name":
            name = lua_tostring(value)
            if name is None:
                raise ScriptError(b"ERR function_name argument given to "
                                  b"redis.register_function must be a string")
        elif key == b"description":
            description = lua_tostring(value)
            if description is None:
                raise ScriptError(b"ERR description argument given to "
                                  b"redis.register_function must be a string")
        elif key == b"callback":
            if not _is_function(value):
                raise ScriptError(b"ERR callback argument given to redis.register_function "
                                  b"must be a function")
            callback = value
        elif key == b"flags":
            flags = _flags(value)
        else:
            raise ScriptError(b"ERR unknown argument given to redis.register_function")
    if name is None:
        raise ScriptError(b"ERR redis.register_function must get a function name argument")
    if callback is None:
        raise ScriptError(b"ERR redis.register_function must get a callback argument")
    return name, callback, flags, description


def _flags(table: Any) -> frozenset:
    if lupa.lua_type(table) != "table":
        raise ScriptError(b"ERR flags argument to redis.register_function must be a table "
                          b"representing function flags")
    found = set()
    i = 1
    while True:  # as far as the array goes (the table is finite)
        value = table[i]
        if value is None:
            break
        text = lua_tostring(value)
        flag = text.decode("latin-1").lower() if text is not None else None
        if flag not in FLAGS:
            raise ScriptError(b"ERR unknown flag given")
        found.add(flag)
        i += 1
    return frozenset(found)


def _payload_codes(payload: bytes) -> List[bytes]:
    """The libraries' code in a FUNCTION DUMP payload (Redis's texts for what is wrong)."""
    try:
        verify_payload(payload)
    except RdbError:
        raise CommandError("ERR DUMP payload version or checksum are wrong") from None
    reader = RdbReader(io.BytesIO(payload), len(payload))
    codes = []
    try:
        while len(payload) - reader.offset > 10:
            op = reader.byte()
            if op == OP_FUNCTION_PRE_GA:
                raise CommandError("ERR Pre-GA function format not supported")
            if op != OP_FUNCTION2:
                raise CommandError("ERR given type is not a function")
            codes.append(reader.string())
    except RdbError:
        raise CommandError("ERR failed loading the given functions payload") from None
    return codes
