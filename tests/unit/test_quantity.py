"""Quantities are parsed exactly and written back in Kubernetes' canonical form."""

from fractions import Fraction

import pytest

from nodeagent.objects.quantity import QuantityError, parse_quantity


@pytest.mark.parametrize(("text", "value"), [
    ("500m", Fraction(1, 2)),
    ("0.5", Fraction(1, 2)),
    ("128Mi", 128 * 2**20),
    ("1G", 10**9),
    ("1e3", 1000),
    ("1.5Gi", 3 * 2**29),
    ("100n", Fraction(1, 10**7)),
    (2, 2),
    (0.25, Fraction(1, 4)),
    ("+3k", 3000),
    ("-2", -2),
])
def test_values_are_exact(text, value):
    assert parse_quantity(text).value == value


@pytest.mark.parametrize(("text", "canonical"), [
    ("500m", "500m"),
    ("0.5", "500m"),
    ("1000m", "1"),
    ("1024Mi", "1Gi"),
    ("1536Mi", "1536Mi"),
    ("1e3", "1e3"),
    ("1000", "1k"),
    ("1G", "1G"),
    ("0", "0"),
    ("0.1m", "100u"),
])
def test_canonical_form(text, canonical):
    assert parse_quantity(text).canonical() == canonical


def test_equal_values_compare_equal_across_formats():
    assert parse_quantity("1Gi") == parse_quantity(str(2**30))
    assert parse_quantity("500m") < parse_quantity("1")
    assert parse_quantity("0.5").milli() == 500
    assert parse_quantity("1n").milli() == 1  # CPU counts round up


@pytest.mark.parametrize("bad", ["", "abc", "1Xi", "1.2.3", "--1", "1 Gi", True, None, "1e99", [1], {}])
def test_bad_quantities_are_rejected(bad):
    with pytest.raises(QuantityError):
        parse_quantity(bad)
