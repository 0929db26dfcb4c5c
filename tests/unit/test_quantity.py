"""resource.Quantity parsing and canonical formatting (cases from apimachinery's quantity_test.go)."""

from fractions import Fraction

import pytest

from kubelite.api import quantity as q

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text,value", [
    ("0", 0), ("100m", Fraction(1, 10)), ("1", 1), ("1.5", Fraction(3, 2)), (".5", Fraction(1, 2)),
    ("1k", 1000), ("1M", 10**6), ("1G", 10**9), ("1T", 10**12), ("1P", 10**15), ("1E", 10**18),
    ("1Ki", 1024), ("64Mi", 64 * 2**20), ("1.5Gi", 3 * 2**29), ("1Ei", 2**60), ("5n", Fraction(5, 10**9)),
    ("3u", Fraction(3, 10**6)), ("1e3", 1000), ("1E-3", Fraction(1, 1000)), ("-2", -2), ("+3k", 3000),
    (2, 2), (0.25, Fraction(1, 4)),
])
def test_parse_exact(text, value):
    assert q.parse(text).value == value


@pytest.mark.parametrize("text", ["", " ", "1K", "1KB", "abc", "1.2.3", "m", "1mi", "--1", "1e", True, None, {}])
def test_parse_rejects(text):
    with pytest.raises(ValueError) as e:
        q.parse(text)
    assert "quantit" in str(e.value) or "suffix" in str(e.value)


def test_format_wrong_message_is_kubernetes():
    with pytest.raises(ValueError, match=r"quantities must match the regular expression"):
        q.parse("abc")


@pytest.mark.parametrize("text,canon", [
    ("1000m", "1"), ("1500m", "1500m"), ("1.5", "1500m"), ("0.1", "100m"), ("100m", "100m"), ("1k", "1k"),
    ("1000", "1k"), ("1024Ki", "1Mi"), ("1.5Gi", "1536Mi"), ("1Ki", "1Ki"), ("512", "512"),
    ("0", "0"), ("0Mi", "0"), ("-1500m", "-1500m"), ("1.0000000001", "1000000001n"), ("1e3", "1e3"),
    ("0.5Ki", "512"), ("1536", "1536"), ("1n", "1n"), ("12Mi", "12Mi"),
])
def test_canonical(text, canon):
    assert q.canonical(text) == canon


def test_helpers_round_up():
    assert q.cpu_millis("250m") == 250
    assert q.cpu_millis("1") == 1000
    assert q.cpu_millis("1.0005") == 1001
    assert q.bytes_("64Mi") == 67108864
    assert q.bytes_("1.5") == 2
    assert str(q.parse("2Gi")) == "2Gi"
