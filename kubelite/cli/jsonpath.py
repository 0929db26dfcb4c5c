"""kubectl's JSONPath subset for ``-o jsonpath=...`` and ``-o custom-columns=...``.

Templates mix text and ``{expr}`` blocks: ``.a.b``, ``['a.b']``, ``[0]``, ``[-1]``, ``[*]``, ``[0:2]``,
``..name`` (recursive), ``[?(@.x=="v")]`` filters (==, !=), string literals ``{"\\n"}``, and
``{range .items[*]}...{end}``. Several results of one expression print space-separated, maps and lists
as JSON, as kubectl does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kubelite.cli.common import CliError

_TOKEN = re.compile(r"""\.\.(?P<rec>[A-Za-z0-9_\-]+)|\.(?P<field>[A-Za-z0-9_\-$]+)|\[(?P<br>[^\]]*)\]""")


def _steps(expr: str) -> list[tuple[str, str]]:
    expr = expr.strip()
    if expr.startswith("$"):
        expr = expr[1:]
    if expr.startswith("@"):
        expr = expr[1:]
    if expr and not expr.startswith((".", "[")):
        expr = "." + expr
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise CliError(f"error parsing jsonpath {expr!r}: unrecognized at {expr[pos:]!r}")
        if m.group("rec"):
            out.append(("rec", m.group("rec")))
        elif m.group("field") is not None:
            out.append(("field", m.group("field")))
        else:
            out.append(("index", m.group("br").strip()))
        pos = m.end()
    return out


def _recurse(value: Any, name: str) -> list[Any]:
    found: list[Any] = []
    if isinstance(value, dict):
        if name in value:
            found.append(value[name])
        for v in value.values():
            found.extend(_recurse(v, name))
    elif isinstance(value, list):
        for v in value:
            found.extend(_recurse(v, name))
    return found


def _filter(items: list[Any], cond: str) -> list[Any]:
    m = re.fullmatch(r"\?\(@(?P<path>[^=!<>]*)(?:(?P<op>==|!=)(?P<lit>.*))?\)", cond)
    if m is None:
        raise CliError(f"error parsing jsonpath filter {cond!r}")
    lit = (m.group("lit") or "").strip()
    if lit[:1] in ("'", '"'):
        lit = lit[1:-1]
    out = []
    for item in items:
        vals = evaluate(item, "@" + m.group("path"))
        if m.group("op") is None:
            ok = bool(vals)
        else:
            ok = any(str(v) == lit for v in vals) if m.group("op") == "==" else all(str(v) != lit for v in vals)
        if ok:
            out.append(item)
    return out


def evaluate(data: Any, expr: str) -> list[Any]:
    """Every value ``expr`` selects in ``data`` (missing fields select nothing)."""
    current = [data]
    for kind, arg in _steps(expr):
        nxt: list[Any] = []
        for value in current:
            if kind == "field":
                if isinstance(value, dict) and arg in value:
                    nxt.append(value[arg])
            elif kind == "rec":
                nxt.extend(_recurse(value, arg))
            elif arg.startswith("?"):
                nxt.extend(_filter(value if isinstance(value, list) else [value], arg))
            elif arg[:1] in ("'", '"'):
                if isinstance(value, dict) and arg[1:-1] in value:
                    nxt.append(value[arg[1:-1]])
            elif arg == "*":
                nxt.extend(value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [])
            elif ":" in arg and isinstance(value, list):
                a, _, b = arg.partition(":")
                nxt.extend(value[int(a) if a else None:int(b) if b else None])
            elif isinstance(value, list):
                try:
                    nxt.append(value[int(arg)])
                except (ValueError, IndexError):
                    pass
        current = nxt
    return current


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else str(value)


def _parse(template: str) -> list[tuple[str, str]]:
    parts: list[tuple[str, str]] = []
    pos = 0
    while pos < len(template):
        start = template.find("{", pos)
        if start < 0:
            parts.append(("text", template[pos:]))
            break
        if start > pos:
            parts.append(("text", template[pos:start]))
        end = template.find("}", start)
        if end < 0:
            raise CliError(f"error parsing jsonpath {template}: unclosed action")
        parts.append(("expr", template[start + 1:end].strip()))
        pos = end + 1
    return parts


def render(template: str, data: Any) -> str:
    """kubectl's ``-o jsonpath=TEMPLATE`` output for ``data``."""
    parts = _parse(template)
    out, _ = _render(parts, 0, data)
    return out


def _render(parts: list[tuple[str, str]], i: int, data: Any) -> tuple[str, int]:
    out: list[str] = []
    while i < len(parts):
        kind, text = parts[i]
        if kind == "text":
            out.append(text)
        elif text == "end":
            return "".join(out), i
        elif text.startswith("range "):
            items = evaluate(data, text[6:])
            body_end = i
            for item in items:
                chunk, body_end = _render(parts, i + 1, item)
                out.append(chunk)
            if not items:
                _, body_end = _render(parts, i + 1, {})
            i = body_end
        elif text[:1] in ('"', "'"):
            out.append(text[1:-1].encode().decode("unicode_escape"))
        else:
            out.append(" ".join(_text(v) for v in evaluate(data, text)))
        i += 1
    return "".join(out), i


def custom_columns(spec: str, items: list[dict[str, Any]], no_headers: bool = False) -> str:
    """``-o custom-columns=NAME:.metadata.name,...``: one column per spec, ``<none>`` when missing."""
    cols = []
    for part in spec.split(","):
        name, sep, path = part.partition(":")
        if not sep:
            raise CliError(f'custom-columns format must be NAME:JSONPATH, got "{part}"')
        cols.append((name, path.strip("{}")))
    rows = [] if no_headers else [[n for n, _ in cols]]
    for item in items:
        rows.append([",".join(_text(v) for v in evaluate(item, p)) or "<none>" for _, p in cols])
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))] if rows else []
    return "".join("".join(c.ljust(widths[i] + 3) for i, c in enumerate(r[:-1])) + r[-1] + "\n" for r in rows)
