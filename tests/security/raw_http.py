"""HTTP/1.1 over a bare socket: for requests no client library would send (malformed,
half-sent, trickled) and for watching when the server closes a connection."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One TCP connection to ``port`` on 127.0.0.1."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.opened = time.monotonic()

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, within: float = 5.0) -> Answer:
        """The next answer (head, then Content-Length bytes of body)."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), within)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(length), within)
        return Answer(int(status_line.split(" ")[1]), headers, body, head + body)

    async def closed_after(self, within: float) -> float:
        """Seconds from opening until the server closed the connection (end of stream),
        reading and dropping anything sent before; fails after ``within`` seconds."""
        async with asyncio.timeout(within):
            while await self.reader.read(65536):
                pass
        return time.monotonic() - self.opened

    def close(self) -> None:
        self.writer.close()


def request(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    """A well-formed HTTP/1.1 request (keep-alive)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
