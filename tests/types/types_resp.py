"""A raw RESP client for exact reply comparisons (types, double text, error text)."""
from __future__ import annotations

import socket
from typing import Any, List, Tuple, Union

Reply = Union[Tuple[str, bytes], Tuple[str, List[Any]]]


def encode(args: List[Union[str, bytes]]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RawClient:
    """Sends commands and returns replies as (type char, payload) trees."""

    def __init__(self, port: int, protocol: int = 2, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        if protocol == 3:
            self.call("HELLO", "3")

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, *args: Union[str, bytes]) -> None:
        self.sock.sendall(encode(list(args)))

    def call(self, *args: Union[str, bytes]) -> Reply:
        self.send(*args)
        return self.read()

    def read(self) -> Reply:
        line = self.file.readline()
        if not line:
            raise ConnectionError("connection closed")
        kind, rest = chr(line[0]), line[1:-2]
        if kind in "$=!":
            size = int(rest)
            if size < 0:
                return ("$", b"nil")
            data = self.file.read(size + 2)[:-2]
            return (kind, data)
        if kind in "*~>%|":
            size = int(rest)
            if size < 0:
                return ("*", b"nil")
            count = size * 2 if kind in "%|" else size
            return (kind, [self.read() for _ in range(count)])
        return (kind, rest)


def normalize(reply: Reply) -> Reply:
    """Sort an aggregate's items (for replies whose order Redis leaves unspecified)."""
    kind, payload = reply
    if isinstance(payload, list):
        if kind == "%":
            pairs = sorted(zip(payload[::2], payload[1::2]), key=repr)
            return (kind, [x for pair in pairs for x in pair])
        return (kind, sorted(payload, key=repr))
    return reply


def normalize_pairs(reply: Reply) -> Reply:
    """Sort a flat [a, b, a, b...] or nested [[a, b]...] reply by pairs."""
    kind, payload = reply
    if not isinstance(payload, list) or not payload:
        return reply
    if payload[0][0] in "*~" and isinstance(payload[0][1], list):
        return (kind, sorted(payload, key=repr))
    pairs = sorted(zip(payload[::2], payload[1::2]), key=repr)
    return (kind, [x for pair in pairs for x in pair])
