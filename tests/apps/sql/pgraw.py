"""A minimal PostgreSQL v3 client for tests that need the messages themselves (rows before
an error, portal suspension, a client that stops reading)."""

from __future__ import annotations

import socket
import struct

Message = tuple[bytes, bytes]


class RawClient:
    """One connection, trust authentication; messages as (kind, body)."""

    def __init__(self, port: int, user: str = "bi", database: str = "lakehouse", **params: str):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        fields = {"user": user, "database": database, **params}
        body = struct.pack("!i", 196608)
        body += b"".join(k.encode() + b"\x00" + v.encode() + b"\x00" for k, v in fields.items())
        body += b"\x00"
        self.sock.sendall(struct.pack("!i", len(body) + 4) + body)
        self.startup = self.until_ready()

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        self.sock.sendall(kind + struct.pack("!i", len(payload) + 4) + payload)

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("server closed the connection")
            data += chunk
        return data

    def read(self) -> Message:
        kind = self._exact(1)
        length = struct.unpack("!i", self._exact(4))[0]
        return kind, self._exact(length - 4)

    def until_ready(self) -> list[Message]:
        """Messages up to and including ReadyForQuery (or a FATAL error)."""
        out: list[Message] = []
        while True:
            kind, body = self.read()
            out.append((kind, body))
            if kind == b"Z" or (kind == b"E" and b"SFATAL" in body):
                return out

    def query(self, sql: str) -> list[Message]:
        self.send(b"Q", sql.encode() + b"\x00")
        return self.until_ready()

    def parse_bind(self, sql: str, portal: str = "") -> None:
        self.send(b"P", b"\x00" + sql.encode() + b"\x00" + struct.pack("!h", 0))
        self.send(b"B", portal.encode() + b"\x00\x00" + struct.pack("!hhh", 0, 0, 0))

    def execute(self, portal: str = "", limit: int = 0) -> None:
        self.send(b"E", portal.encode() + b"\x00" + struct.pack("!i", limit))

    def close_portal(self, portal: str = "") -> None:
        self.send(b"C", b"P" + portal.encode() + b"\x00")

    def sync(self) -> list[Message]:
        self.send(b"S")
        return self.until_ready()

    def terminate(self) -> None:
        try:
            self.send(b"X")
        finally:
            self.sock.close()


def kinds(messages: list[Message]) -> bytes:
    """The message kinds in order, e.g. ``b"TDDDCZ"``."""
    return b"".join(k for k, _ in messages)


def error_fields(messages: list[Message]) -> dict[str, str]:
    """The fields of the (first) ErrorResponse: ``{"C": sqlstate, "M": message, ...}``."""
    body = next(b for k, b in messages if k == b"E")
    return {f[:1].decode(): f[1:].decode() for f in body.split(b"\x00") if f}


def rows(messages: list[Message]) -> list[list[str | None]]:
    """The text values of the DataRows."""
    out: list[list[str | None]] = []
    for kind, body in messages:
        if kind != b"D":
            continue
        count, pos, row = struct.unpack("!h", body[:2])[0], 2, []
        for _ in range(count):
            size = struct.unpack("!i", body[pos : pos + 4])[0]
            pos += 4
            row.append(None if size < 0 else body[pos : pos + size].decode())
            pos += max(size, 0)
        out.append(row)
    return out
