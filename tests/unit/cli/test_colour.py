"""Colour only on a terminal with NO_COLOR unset; piped output carries no escape codes."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from kubelite.cli import common, main
from kubelite.cli import inspect as inspect_cli

ROOT = Path(__file__).resolve().parents[3]
DOC = {"namespace": "d", "name": "p", "uid": "u", "node": "n", "cgroupVersion": 2,
       "containers": [{"name": "a", "id": "x" * 32, "pid": 5}],
       "namespaces": {"net": {"host": 1, "members": {"sandbox": {"inode": 7}, "a": {"inode": 7}}}}}


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_use_colour_needs_a_tty_and_no_NO_COLOR(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert common.use_colour(FakeTty()) and not common.use_colour(io.StringIO())
    assert common.paint("x", "31", FakeTty()) == "\x1b[31mx\x1b[0m" and common.paint("x", "31", io.StringIO()) == "x"
    monkeypatch.setenv("NO_COLOR", "1")
    assert not common.use_colour(FakeTty()) and common.paint("x", "31", FakeTty()) == "x"


def test_error_prefix_red_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    tty = FakeTty()
    monkeypatch.setattr(sys, "stderr", tty)
    assert main.main(["gte"]) == 1
    assert tty.getvalue().startswith('\x1b[31merror:\x1b[0m unknown command "gte"')
    tty = FakeTty()
    monkeypatch.setattr(sys, "stderr", tty)
    assert main.main(["get", "pdos"]) == 1
    assert tty.getvalue().startswith("\x1b[31merror:\x1b[0m the server doesn't have")
    monkeypatch.setenv("NO_COLOR", "")  # set but empty counts as unset (no-color.org)
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    assert main.main(["get", "pdos"]) == 1
    assert piped.getvalue().startswith("error: the server") and "\x1b" not in piped.getvalue()


def test_inspect_headings_bold_only_when_asked() -> None:
    plain, coloured = inspect_cli.render_pod(DOC), inspect_cli.render_pod(DOC, colour=True)
    assert "\x1b" not in plain
    assert coloured.splitlines()[0] == f"\x1b[1m{plain.splitlines()[0]}\x1b[0m"
    assert "\x1b[1mnamespaces\x1b[0m" in coloured
    assert any(l.endswith("net     7 (shared by sandbox, a)") for l in coloured.splitlines())  # leaves stay plain
    assert "\x1b" not in inspect_cli.render_node({"name": "n"}) and "\x1b[1m" in inspect_cli.render_node(
        {"name": "n"}, colour=True)


def _run(args: list[str], tty: bool, no_color: str | None = None) -> bytes:
    env = {"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "")}
    if no_color is not None:
        env["NO_COLOR"] = no_color
    cmd = [sys.executable, "-m", "kubelite", *args]
    if not tty:
        r = subprocess.run(cmd, env=env, capture_output=True, timeout=30)
        return r.stdout + r.stderr
    leader, follower = pty.openpty()
    try:
        p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
        os.close(follower)
        out = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        assert p.wait(timeout=30) == 1
        return out
    finally:
        os.close(leader)


def test_real_process_colours_on_a_pty_and_not_through_a_pipe() -> None:
    assert b"\x1b" not in _run(["gte"], tty=False)
    assert b"\x1b" not in _run(["get", "pdos"], tty=False)
    assert b"\x1b[31merror:\x1b[0m" in _run(["get", "pdos"], tty=True)
    assert b"\x1b" not in _run(["get", "pdos"], tty=True, no_color="1")
