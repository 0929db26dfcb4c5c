"""Test helpers for Prometheus text: ``promtool check metrics`` and reading one sample by name and labels."""

from __future__ import annotations

import shutil
import subprocess

from prometheus_client.parser import text_string_to_metric_families

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool_check(text: str | bytes) -> tuple[int, str]:
    """Run ``promtool check metrics`` on ``text``; (exit code, its output). 0 means no problem and no lint."""
    data = text.encode() if isinstance(text, str) else text
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=data, capture_output=True, timeout=30)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def samples(text: str, name: str, /, **labels: str) -> list[float]:
    """Values of every sample called ``name`` whose labels include ``labels``."""
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                out.append(float(s.value))
    return out


def value(text: str, name: str, /, **labels: str) -> float | None:
    """The sum of the matching samples, or None if there is none."""
    found = samples(text, name, **labels)
    return sum(found) if found else None
