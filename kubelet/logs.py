"""Container logs in CRI format (``<RFC3339Nano> <stream> <P|F> <text>``): reading, tailing, following.

The runtime's shim writes them; the kubelet reads them for ``/containerLogs`` and for
``terminationMessagePolicy: FallbackToLogsOnError``, and rotates them (10 MiB × 5 by default,
``<log>.1`` … ``<log>.4`` beside the live file). Blocking file I/O: call in a worker thread.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

MAX_SIZE = 10 * 1024 * 1024
MAX_FILES = 5


@dataclass(frozen=True, slots=True)
class LogLine:
    timestamp: str        # RFC3339Nano as written
    stream: str           # stdout | stderr
    partial: bool
    text: bytes           # without the trailing newline

    @property
    def seconds(self) -> float:
        return parse_time(self.timestamp)


def parse_time(ts: str) -> float:
    base, _, frac = ts.rstrip("Z").partition(".")
    when = dt.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc).timestamp()
    return when + (float("0." + frac[:9]) if frac else 0.0)


def parse_line(raw: bytes) -> LogLine | None:
    raw = raw.rstrip(b"\n")
    parts = raw.split(b" ", 3)
    if len(parts) < 3:
        return None
    text = parts[3] if len(parts) == 4 else b""
    return LogLine(parts[0].decode(errors="replace"), parts[1].decode(errors="replace"), parts[2] == b"P", text)


def log_files(path: Path) -> list[Path]:
    """The rotated files oldest first, then the live one."""
    rotated = sorted((p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()),
                     key=lambda p: -int(p.suffix[1:]))
    return rotated + ([path] if path.exists() else [])


def read_lines(path: Path) -> Iterator[LogLine]:
    for f in log_files(path):
        try:
            with open(f, "rb") as fh:
                for raw in fh:
                    line = parse_line(raw)
                    if line is not None:
                        yield line
        except FileNotFoundError:
            continue


def render(line: LogLine, timestamps: bool) -> bytes:
    body = line.text + (b"" if line.partial else b"\n")
    return (line.timestamp.encode() + b" " + body) if timestamps else body


def select(path: Path, *, tail: int | None = None, since: float | None = None,
           streams: tuple[str, ...] = ("stdout", "stderr")) -> list[LogLine]:
    lines = [ln for ln in read_lines(path) if ln.stream in streams and (since is None or ln.seconds >= since)]
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    return lines


def tail_text(path: Path, max_lines: int = 80, max_bytes: int = 2048) -> str:
    """The end of the log, as FallbackToLogsOnError shows it."""
    data = b"".join(render(ln, False) for ln in select(path, tail=max_lines))
    return data[-max_bytes:].decode(errors="replace")


def rotate_if_needed(path: Path, max_size: int = MAX_SIZE, max_files: int = MAX_FILES) -> bool:
    """Copy-truncate rotation: ``log`` → ``log.1`` … keeping ``max_files`` files in all."""
    try:
        if path.stat().st_size < max_size:
            return False
    except FileNotFoundError:
        return False
    for i in range(max_files - 1, 0, -1):
        src = path.with_name(f"{path.name}.{i}")
        if i == max_files - 1 and src.exists():
            src.unlink()
        elif src.exists():
            os.rename(src, path.with_name(f"{path.name}.{i + 1}"))
    dst = path.with_name(f"{path.name}.1")
    with open(path, "rb") as src_fh, open(dst, "wb") as dst_fh:
        while chunk := src_fh.read(1 << 20):
            dst_fh.write(chunk)
    with open(path, "r+b") as fh:
        fh.truncate(0)
    return True
