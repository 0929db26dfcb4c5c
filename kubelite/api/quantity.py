"""Kubernetes ``resource.Quantity``: parse "100m", "64Mi", "1e3" to exact values and format them back.

Mirrors k8s.io/apimachinery/pkg/api/resource: a quantity is ``<signedNumber><suffix>`` where the
suffix is a decimal SI one (``n u m "" k M G T P E``), a binary one (``Ki Mi Gi Ti Pi Ei``) or a
decimal exponent (``e3``, ``E-2``). Values are exact :class:`fractions.Fraction`s; formatting keeps the
suffix family of the input, as the canonical form Kubernetes writes back. Pure, no I/O.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

_QUANTITY_RE = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$")

_DECIMAL: dict[str, int] = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY: dict[str, int] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_EXP_RE = re.compile(r"^[eE]([+-]?[0-9]+)$")

#: Kubernetes' message for anything that does not parse (resource.ErrFormatWrong).
FORMAT_WRONG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


@dataclass(frozen=True, slots=True)
class Quantity:
    """An exact quantity and the suffix family it was written in (``DecimalSI``, ``BinarySI``, ``DecimalExponent``)."""

    value: Fraction
    format: str = "DecimalSI"

    def cpu_millis(self) -> int:
        """CPU in millicores, rounded up like ``MilliValue()``."""
        return math.ceil(self.value * 1000)

    def bytes_(self) -> int:
        """The value as an integer, rounded up like ``Value()`` (bytes for memory)."""
        return math.ceil(self.value)

    def __str__(self) -> str:
        return format_quantity(self.value, self.format)


def parse(text: Any) -> Quantity:
    """Parse a quantity string (or a JSON number); raise ``ValueError`` with Kubernetes' message."""
    if isinstance(text, bool):
        raise ValueError(FORMAT_WRONG)
    if isinstance(text, int):
        return Quantity(Fraction(text))
    if isinstance(text, float):
        if not math.isfinite(text):
            raise ValueError(FORMAT_WRONG)
        return Quantity(Fraction(str(text)))
    if not isinstance(text, str):
        raise ValueError(FORMAT_WRONG)
    return _parse_text(text)


@functools.lru_cache(maxsize=4096)
def _parse_text(text: str) -> Quantity:
    """Parse a quantity string (cached: the same few strings recur in every object)."""
    s = text.strip()
    m = _QUANTITY_RE.match(s)
    if not s or not m:
        raise ValueError(FORMAT_WRONG)
    number, suffix = m.group(1), m.group(2)
    try:
        base = Fraction(number)
    except ValueError:
        raise ValueError(FORMAT_WRONG) from None
    if suffix in _DECIMAL:
        value, fmt = base * Fraction(10) ** _DECIMAL[suffix], "DecimalSI"
    elif suffix in _BINARY:
        value, fmt = base * (2 ** _BINARY[suffix]), "BinarySI"
    elif em := _EXP_RE.match(suffix):
        exp = int(em.group(1))
        if abs(exp) > 1000:
            raise ValueError("quantity is too great")
        value, fmt = base * Fraction(10) ** exp, "DecimalExponent"
    else:
        raise ValueError("unable to parse quantity's suffix")
    return Quantity(value, fmt)


def parse_value(text: Any) -> Fraction:
    """Shortcut: the exact value of a quantity."""
    return parse(text).value


def cpu_millis(text: Any) -> int:
    return parse(text).cpu_millis()


def bytes_(text: Any) -> int:
    return parse(text).bytes_()


def _round_up_nano(value: Fraction) -> Fraction:
    """Kubernetes keeps at most nano precision, rounding away from zero."""
    scaled = value * 10**9
    if scaled.denominator == 1:
        return value
    sign = -1 if scaled < 0 else 1
    return Fraction(sign * math.ceil(abs(scaled)), 10**9)


def format_quantity(value: Fraction | int, fmt: str = "DecimalSI") -> str:
    """Canonical form as Kubernetes serializes it: "1500m" → "1500m", "1.5" → "1500m", "1024Ki" → "1Mi"."""
    value = Fraction(value)
    if value == 0:
        return "0"
    if fmt == "BinarySI" and value.denominator == 1:
        n = abs(value.numerator)
        # the largest binary suffix that divides exactly; values < 1024 stay bare (as Kubernetes does)
        for suffix, shift in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
            if n % (1 << shift) == 0 and n >= (1 << shift):
                return f"{'-' if value < 0 else ''}{n >> shift}{suffix}"
        return str(value.numerator)
    value = _round_up_nano(value)
    sign = "-" if value < 0 else ""
    nanos = abs(value) * 10**9
    n = int(nanos)  # exact after rounding
    exp = -9
    while n % 10 == 0 and n:
        n //= 10
        exp += 1
    if fmt == "DecimalExponent":
        # mantissa with the exponent a multiple of 3, like Kubernetes
        e3 = (exp // 3) * 3
        mantissa = n * 10 ** (exp - e3)
        return f"{sign}{mantissa}" + (f"e{e3}" if e3 else "")
    e3 = (exp // 3) * 3
    e3 = max(-9, min(18, e3))
    mantissa = n * 10 ** (exp - e3)
    suffix = {v: k for k, v in _DECIMAL.items()}[e3]
    return f"{sign}{mantissa}{suffix}"


def canonical(text: Any) -> str:
    """Parse and re-format a quantity in canonical form."""
    if isinstance(text, str):
        return _canonical_text(text)
    q = parse(text)
    return format_quantity(q.value, q.format)


@functools.lru_cache(maxsize=4096)
def _canonical_text(text: str) -> str:
    q = _parse_text(text)
    return format_quantity(q.value, q.format)
