"""Dockerfile parsing (the subset kubelite builds), variable expansion and ``.dockerignore`` matching.

Instructions: FROM, COPY, ADD, RUN, ENV, ARG, WORKDIR, USER, CMD, ENTRYPOINT, LABEL, EXPOSE (plus
MAINTAINER, STOPSIGNAL, VOLUME, SHELL kept as config). Line continuations with ``\\``, comments, exec
(JSON) and shell forms, ``$VAR`` / ``${VAR}`` / ``${VAR:-x}`` / ``${VAR:+x}`` where Docker expands them.
No I/O here.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Mapping

from kubelet.runtime.images.errors import BuildError

KNOWN = {"FROM", "COPY", "ADD", "RUN", "ENV", "ARG", "WORKDIR", "USER", "CMD", "ENTRYPOINT", "LABEL", "EXPOSE",
         "MAINTAINER", "STOPSIGNAL", "VOLUME", "SHELL", "HEALTHCHECK", "ONBUILD"}
EXPANDS = {"FROM", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "LABEL", "EXPOSE", "STOPSIGNAL", "VOLUME"}


@dataclass(frozen=True, slots=True)
class Instruction:
    cmd: str                      # upper case
    raw: str                      # the arguments as written (continuations joined)
    line: int
    flags: Mapping[str, str] = field(default_factory=dict)   # --from=, --chown=
    json_args: tuple[str, ...] | None = None                  # exec form

    def __str__(self) -> str:
        return f"{self.cmd} {self.raw}".rstrip()


def parse(text: str) -> list[Instruction]:
    """Parse a Dockerfile; raises BuildError naming the line of the first mistake."""
    out: list[Instruction] = []
    buf = ""
    start = 0
    for no, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue
        if not buf:
            start = no
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        out.append(_instruction(buf, start))
        buf = ""
    if buf.strip():
        out.append(_instruction(buf, start))
    if not out or out[0].cmd not in ("FROM", "ARG"):
        raise BuildError("Dockerfile: the first instruction must be FROM (or ARG before FROM)")
    return out


def _instruction(text: str, line: int) -> Instruction:
    word, _, rest = text.strip().partition(" ")
    cmd = word.upper()
    if cmd not in KNOWN:
        raise BuildError(f"Dockerfile line {line}: unknown instruction: {word}")
    rest = rest.strip()
    flags: dict[str, str] = {}
    if cmd in ("COPY", "ADD", "FROM", "RUN"):
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            if cmd != "FROM" and name not in ("from", "chown", "chmod", "link") or cmd == "FROM" and name != "platform":
                raise BuildError(f"Dockerfile line {line}: unsupported flag --{name} for {cmd}")
            flags[name] = value
            rest = rest.strip()
    json_args = None
    if cmd in ("RUN", "CMD", "ENTRYPOINT", "COPY", "ADD", "VOLUME", "SHELL") and rest.startswith("["):
        try:
            parsed = json.loads(rest)
            if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
                json_args = tuple(parsed)
        except ValueError:
            json_args = None   # Docker falls back to the shell form
    if not rest and cmd not in ("CMD", "ENTRYPOINT"):
        raise BuildError(f"Dockerfile line {line}: {cmd} requires at least one argument")
    return Instruction(cmd, rest, line, flags, json_args)


_VAR = re.compile(r"\\\$|\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Expand ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR:+alt}``; ``\\$`` stays a literal ``$``."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "\\$":
            return "$"
        name = m.group(1) or m.group(4)
        value = env.get(name, "")
        if m.group(2) == ":-":
            return value or expand(m.group(3), env)
        if m.group(2) == ":+":
            return expand(m.group(3), env) if value else ""
        return value
    return _VAR.sub(sub, text)


def words(text: str) -> list[str]:
    """Split shell-like arguments (quotes and backslashes as Docker handles them)."""
    try:
        return shlex.split(text, posix=True)
    except ValueError as exc:
        raise BuildError(f"cannot split {text!r}: {exc}") from None


def key_values(text: str, line: int, cmd: str) -> list[tuple[str, str]]:
    """``ENV a=1 b="x y"`` / legacy ``ENV a 1 2`` → pairs."""
    parts = words(text)
    if parts and "=" not in parts[0]:
        if cmd == "ARG":
            return [(parts[0], "")] if len(parts) == 1 else [(parts[0], " ".join(parts[1:]))]
        if len(parts) < 2:
            raise BuildError(f"Dockerfile line {line}: {cmd} needs key=value or 'key value'")
        _, _, value = text.strip().partition(parts[0])
        return [(parts[0], " ".join(words(value.strip())))]
    out = []
    for p in parts:
        k, sep, v = p.partition("=")
        if not sep and cmd != "ARG":
            raise BuildError(f"Dockerfile line {line}: {cmd} expects key=value, got {p!r}")
        out.append((k, v))
    return out


_DURATION = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


def healthcheck(ins: Instruction) -> dict[str, Any]:
    """HEALTHCHECK NONE | [--interval=30s --timeout=… --start-period=… --retries=N] CMD …, as Docker stores it."""
    text = ins.raw.strip()
    if text.upper() == "NONE":
        return {"Test": ["NONE"]}
    out: dict[str, Any] = {}
    while text.startswith("--"):
        flag, _, text = text.partition(" ")
        name, _, value = flag[2:].partition("=")
        text = text.strip()
        key = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
               "start-interval": "StartInterval", "retries": "Retries"}.get(name)
        if key is None:
            raise BuildError(f"Dockerfile line {ins.line}: unknown HEALTHCHECK flag --{name}")
        if key == "Retries":
            out[key] = int(value)
            continue
        total, num = 0, ""
        for unit_part in re.findall(r"([0-9.]+)(ns|us|ms|s|m|h)", value):
            total += int(float(unit_part[0]) * _DURATION[unit_part[1]])
            num += "".join(unit_part)
        if not total or num != value:
            raise BuildError(f"Dockerfile line {ins.line}: HEALTHCHECK --{name}: bad duration {value!r}")
        out[key] = total
    word, _, rest = text.partition(" ")
    if word.upper() != "CMD" or not rest.strip():
        raise BuildError(f"Dockerfile line {ins.line}: HEALTHCHECK needs NONE or CMD <command>")
    rest = rest.strip()
    try:
        exec_form = json.loads(rest) if rest.startswith("[") else None
    except ValueError:
        exec_form = None
    out["Test"] = ["CMD", *exec_form] if isinstance(exec_form, list) else ["CMD-SHELL", rest]
    return out


# ------------------------------------------------------------------------------------ .dockerignore
@dataclass(frozen=True, slots=True)
class IgnoreRule:
    pattern: re.Pattern[str]
    negate: bool


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out += "(?:.*/)?"
                i += 1
            else:
                out += ".*"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pattern.find("]", i)
            if j < 0:
                out += re.escape(c)
            else:
                cls = pattern[i + 1:j].replace("\\", "\\\\")
                out += "[" + ("^" + cls[1:] if cls.startswith("!") else cls) + "]"
                i = j
        else:
            out += re.escape(c)
        i += 1
    return re.compile(f"^{out}(?:/.*)?$")


def parse_ignore(text: str) -> list[IgnoreRule]:
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pat = line[1:].strip() if negate else line
        pat = "/".join(p for p in pat.strip("/").split("/") if p not in ("", "."))
        if pat:
            rules.append(IgnoreRule(_glob_to_regex(pat), negate))
    return rules


def ignored(rules: list[IgnoreRule], rel: str) -> bool:
    """Whether ``rel`` (a path relative to the context, ``/``-separated) is excluded; last match wins."""
    result = False
    for r in rules:
        if r.pattern.match(rel):
            result = not r.negate
    return result
