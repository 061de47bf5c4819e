"""Resource quantities (``500m``, ``0.5``, ``128Mi``, ``1G``, ``1e3``), parsed exactly.

Kubernetes stores quantities as strings and compares them as exact decimals;
float arithmetic would make ``0.1 + 0.2`` CPUs differ from ``300m``.  We parse
into a :class:`fractions.Fraction` and keep the *format* the user wrote
(decimal SI, binary SI or decimal exponent), because Kubernetes' canonical
form keeps it too: ``1Gi`` stays ``1Gi``, ``0.5`` becomes ``500m``, ``1000``
becomes ``1k``.

Grammar (k8s.io/apimachinery/pkg/api/resource/quantity.go)::

    quantity  ::= signed-number suffix
    suffix    ::= Ki | Mi | Gi | Ti | Pi | Ei | m | "" | k | M | G | T | P | E
                | (e | E) signed-number
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["Quantity", "QuantityError", "parse_quantity"]


class QuantityError(ValueError):
    """The text is not a quantity; the message says why, in Kubernetes' words."""


class Format(enum.Enum):
    DECIMAL_SI = "DecimalSI"
    BINARY_SI = "BinarySI"
    DECIMAL_EXPONENT = "DecimalExponent"


_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -3, "u": -2, "m": -1, "": 0, "k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
_DECIMAL_BY_EXP = {v: k for k, v in _DECIMAL.items()}
_BINARY_BY_EXP = {v: k for k, v in _BINARY.items()}

_RE = re.compile(
    r"^(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?:(?P<bin>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<exp>[eE][+-]?\d+)|(?P<dec>[numkMGTPE]?))$"
)

# Kubernetes refuses quantities it cannot represent in int64 nano units.
_MAX_ABS = Fraction(2**63 - 1)
_NANO = Fraction(1, 10**9)


@dataclass(frozen=True, slots=True, order=False)
class Quantity:
    """An exact quantity and the format it is written back in."""

    value: Fraction
    format: Format

    def __str__(self) -> str:
        return self.canonical()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Quantity):
            return self.value == other.value
        return NotImplemented

    def __lt__(self, other: Quantity) -> bool:
        return self.value < other.value

    def __le__(self, other: Quantity) -> bool:
        return self.value <= other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def milli(self) -> int:
        """Value in thousandths, rounded up (how the scheduler counts CPU)."""
        v = self.value * 1000
        return -((-v.numerator) // v.denominator)

    def canonical(self) -> str:
        """Kubernetes' canonical text: the largest suffix that keeps an integer mantissa."""
        v = self.value
        if v == 0:
            return "0"
        if self.format is Format.BINARY_SI and v.denominator == 1 and v > 0:
            n = v.numerator
            exp = 0
            while exp < 6 and n % 1024 == 0:
                n //= 1024
                exp += 1
            return f"{n}{_BINARY_BY_EXP.get(exp, '')}" if exp else str(n)
        # decimal forms: round up to nano units first, as Kubernetes does
        nanos = v / _NANO
        n = -((-nanos.numerator) // nanos.denominator)
        exp3 = -3  # n is in units of 1000**-3
        while exp3 < 6 and n % 1000 == 0:
            n //= 1000
            exp3 += 1
        if self.format is Format.DECIMAL_EXPONENT:
            return f"{n}e{exp3 * 3}" if exp3 else str(n)
        return f"{n}{_DECIMAL_BY_EXP[exp3]}"


def parse_quantity(raw: str | int | float) -> Quantity:
    """Parse a quantity from YAML/JSON (a string, or a bare number).

    Raises :class:`QuantityError` with Kubernetes' message for bad text.  Cached: the same
    few quantities ("100m", "64Mi") recur in every pod, and exact parsing is not cheap.
    """
    if not isinstance(raw, str | int | float):
        raise QuantityError("quantities must be a string or a number")
    return _parse(raw, type(raw).__name__)  # the type is part of the key: True == 1 is not valid


@functools.lru_cache(maxsize=4096)
def _parse(raw: str | int | float, _kind: str) -> Quantity:
    if isinstance(raw, bool):
        raise QuantityError("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    if isinstance(raw, int):
        text = str(raw)
    elif isinstance(raw, float):
        text = repr(raw)
    elif isinstance(raw, str):
        text = raw.strip()
    else:
        raise QuantityError("quantities must be a string or a number")
    m = _RE.match(text)
    if m is None:
        raise QuantityError("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    num = Fraction(m.group("num"))
    if m.group("bin") is not None:
        value = num * (1024 ** _BINARY[m.group("bin")])
        fmt = Format.BINARY_SI
    elif m.group("exp") is not None:
        e = int(m.group("exp")[1:])
        if abs(e) > 30:
            raise QuantityError("quantity exponent is out of range")
        value = num * Fraction(10) ** e
        fmt = Format.DECIMAL_EXPONENT
    else:
        value = num * Fraction(1000) ** _DECIMAL[m.group("dec") or ""]
        fmt = Format.DECIMAL_SI
    if abs(value) > _MAX_ABS:
        raise QuantityError("quantity is too large")
    return Quantity(value, fmt)
