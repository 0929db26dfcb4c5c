"""The image CLI's printing helpers: sizes, ages, the progress display on a terminal and off it."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

from kubelite.cli.image import Progress, human_ago, human_size


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_human_size_and_ago() -> None:
    assert [human_size(n) for n in (0, 999, 1000, 1_234_567, 5e9)] == ["0B", "999B", "1kB", "1.23MB", "5GB"]
    two_days = (datetime.now(timezone.utc) - timedelta(days=2, minutes=1)).isoformat()
    assert human_ago(two_days) == "2 days ago"
    assert human_ago("garbage") == "N/A"


def test_progress_redraws_in_place_on_a_terminal() -> None:
    out = Tty()
    p = Progress(out)
    p("sha256:" + "a" * 64, "Downloading", 500, 1000)
    p("sha256:" + "b" * 64, "Already exists", 0, 0)
    p("sha256:" + "a" * 64, "Pull complete", 0, 0)
    text = out.getvalue()
    assert "aaaaaaaaaaaa: Downloading [" in text and "500B/1kB" in text
    assert "\x1b[2A" in text and text.rstrip().endswith("bbbbbbbbbbbb: Already exists")
    assert "aaaaaaaaaaaa: Pull complete" in text


def test_progress_plain_lines_off_a_terminal() -> None:
    out = io.StringIO()
    p = Progress(out)
    p("sha256:" + "a" * 64, "Downloading", 500, 1000)
    p("sha256:" + "a" * 64, "Pull complete", 0, 0)
    assert out.getvalue() == "aaaaaaaaaaaa: Pull complete\n"
