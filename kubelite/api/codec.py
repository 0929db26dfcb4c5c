"""The one JSON codec of the project (orjson): bytes in, bytes out."""

from __future__ import annotations

from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError


def dumps(obj: Any) -> bytes:
    """Serialise ``obj`` to compact JSON bytes (non-str dict keys are refused, as Kubernetes does)."""
    return orjson.dumps(obj)


def dumps_pretty(obj: Any) -> bytes:
    """Serialise with two-space indentation, for humans."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON; raises :class:`JSONDecodeError` (a ``ValueError``) on malformed input."""
    return orjson.loads(data)
