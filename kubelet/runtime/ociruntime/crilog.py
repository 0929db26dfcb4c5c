"""Container output in the CRI log format: ``<RFC3339Nano> stdout|stderr F|P line``, a full line (F) or a
partial chunk (P) of a line longer than ``PARTIAL_MAX``. The shim feeds what it reads from the container."""

from __future__ import annotations

import time
from typing import BinaryIO

PARTIAL_MAX = 16 * 1024  # a line longer than this is written as P chunks


def rfc3339nano(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


class CriLog:
    """Writes a stream into the CRI log format, splitting full (F) and partial (P) lines."""

    def __init__(self, f: BinaryIO | None, stream: str) -> None:
        self.f, self.stream, self.buf = f, stream.encode(), b""

    def feed(self, data: bytes) -> None:
        self.buf += data
        out = []
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                break
            out.append((b"F", self.buf[:i]))
            self.buf = self.buf[i + 1:]
        while len(self.buf) >= PARTIAL_MAX:
            out.append((b"P", self.buf[:PARTIAL_MAX]))
            self.buf = self.buf[PARTIAL_MAX:]
        self._write(out)

    def close(self) -> None:
        if self.buf:
            self._write([(b"F", self.buf)])
            self.buf = b""

    def _write(self, items: list[tuple[bytes, bytes]]) -> None:
        if not items or self.f is None:
            return
        ts = rfc3339nano(time.time_ns()).encode()
        self.f.write(b"".join(ts + b" " + self.stream + b" " + tag + b" " + line + b"\n" for tag, line in items))
        self.f.flush()
