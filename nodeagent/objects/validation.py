"""Field errors and the syntax rules of names, labels and ports.

Errors read exactly as Kubernetes' ``field.Error`` does
(``spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be
between 1 and 65535, inclusive``), because people paste them into search
engines and compare them with kubectl's.  Checks return lists of messages so
one request reports every problem at once, not the first only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "FieldError",
    "Path",
    "dns1035_label_errors",
    "dns1123_label_errors",
    "dns1123_subdomain_errors",
    "label_key_errors",
    "label_value_errors",
    "path_segment_errors",
    "port_name_errors",
    "port_number_errors",
]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem at one field; ``reason`` is Kubernetes' ``FieldValueXxx`` cause type."""

    path: str
    reason: str  # FieldValueInvalid, FieldValueRequired, ...
    detail: str
    value: Any = None
    has_value: bool = True

    _TITLES = {
        "FieldValueInvalid": "Invalid value",
        "FieldValueRequired": "Required value",
        "FieldValueNotSupported": "Unsupported value",
        "FieldValueDuplicate": "Duplicate value",
        "FieldValueForbidden": "Forbidden",
        "FieldValueTooLong": "Too long",
        "FieldValueTooMany": "Too many",
        "FieldValueNotFound": "Not found",
        "FieldValueTypeInvalid": "Invalid value",
    }

    def body(self) -> str:
        """The message without the path (Status causes carry the path apart)."""
        title = self._TITLES.get(self.reason, self.reason)
        parts = [title]
        if self.has_value and self.reason not in ("FieldValueRequired", "FieldValueForbidden",
                                                  "FieldValueTooLong"):
            parts.append(format_value(self.value))
        if self.detail:
            parts.append(self.detail)
        return ": ".join(parts)

    def __str__(self) -> str:
        return f"{self.path}: {self.body()}"


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


class Path:
    """Builds field paths the Kubernetes way: ``spec.containers[0].name``."""

    __slots__ = ("text",)

    def __init__(self, text: str = "") -> None:
        self.text = text

    def child(self, name: str) -> Path:
        return Path(f"{self.text}.{name}" if self.text else name)

    def index(self, i: int) -> Path:
        return Path(f"{self.text}[{i}]")

    def key(self, k: str) -> Path:
        return Path(f"{self.text}[{k}]")

    def __str__(self) -> str:
        return self.text

    def invalid(self, value: Any, detail: str) -> FieldError:
        return FieldError(self.text, "FieldValueInvalid", detail, value)

    def required(self, detail: str = "") -> FieldError:
        return FieldError(self.text, "FieldValueRequired", detail, None, False)

    def unsupported(self, value: Any, allowed: list[str]) -> FieldError:
        detail = "supported values: " + ", ".join(f'"{a}"' for a in allowed)
        return FieldError(self.text, "FieldValueNotSupported", detail, value)

    def duplicate(self, value: Any) -> FieldError:
        return FieldError(self.text, "FieldValueDuplicate", "", value)

    def forbidden(self, detail: str) -> FieldError:
        return FieldError(self.text, "FieldValueForbidden", detail, None, False)

    def too_long(self, limit: int) -> FieldError:
        return FieldError(self.text, "FieldValueTooLong",
                          f"must have at most {limit} bytes", None, False)

    def too_many(self, count: int, limit: int) -> FieldError:
        return FieldError(self.text, "FieldValueTooMany", f"must have at most {limit} items",
                          count)

    def not_found(self, value: Any, detail: str = "") -> FieldError:
        return FieldError(self.text, "FieldValueNotFound", detail, value)


_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_IANA_SVC_NAME = re.compile(r"^[-a-z0-9]+$")
_C_IDENTIFIER_ENV = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def dns1123_label_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.match(value):
        errs.append("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                    "characters or '-', and must start and end with an alphanumeric character "
                    "(e.g. 'my-name',  or '123-abc', regex used for validation is "
                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
    return errs


def dns1123_subdomain_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.match(value):
        errs.append("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                    "characters, '-' or '.', and must start and end with an alphanumeric "
                    "character (e.g. 'example.com', regex used for validation is "
                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    return errs


def path_segment_errors(value: str) -> list[str]:
    """What a name must be when it goes in a URL and nothing more (apimachinery's
    ValidatePathSegmentName): RBAC's names, like system:controller:x."""
    errs = []
    if value in (".", ".."):
        errs.append(f'may not be \'{value}\'')
    for bad in ("/", "%"):
        if bad in value:
            errs.append(f"may not contain '{bad}'")
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    return errs


def dns1035_label_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1035_LABEL.match(value):
        errs.append("a DNS-1035 label must consist of lower case alphanumeric characters or "
                    "'-', start with an alphabetic character, and end with an alphanumeric "
                    "character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
                    "'[a-z]([-a-z0-9]*[a-z0-9])?')")
    return errs


def qualified_name_errors(value: str) -> list[str]:
    """Label keys and annotation keys: ``[prefix/]name``."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + e for e in dns1123_subdomain_errors(prefix))
    else:
        return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character (e.g. 'MyName',  or "
                "'my.name',  or '123-abc', regex used for validation is "
                "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain "
                "prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if name and not _QUALIFIED_NAME.match(name):
        errs.append("name part must consist of alphanumeric characters, '-', '_' or '.', and "
                    "must start and end with an alphanumeric character (e.g. 'MyName',  or "
                    "'my.name',  or '123-abc', regex used for validation is "
                    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
    return errs


label_key_errors = qualified_name_errors


def label_value_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE.match(value):
        errs.append("a valid label must be an empty string or consist of alphanumeric "
                    "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                    "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
                    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
    return errs


def port_number_errors(value: int) -> list[str]:
    if not 1 <= value <= 65535:
        return ["must be between 1 and 65535, inclusive"]
    return []


def port_name_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 15:
        errs.append("must be no more than 15 characters")
    if not _IANA_SVC_NAME.match(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    if not re.search("[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    return errs


def env_var_name_errors(value: str) -> list[str]:
    if not _C_IDENTIFIER_ENV.match(value):
        return ["a valid environment variable name must consist of alphabetic characters, "
                "digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',"
                "  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is "
                "'[-._a-zA-Z][-._a-zA-Z0-9]*')"]
    return []


def validate_labels(labels: dict[str, str] | None, path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    for k, v in (labels or {}).items():
        errs.extend(path.invalid(k, e) for e in label_key_errors(k))
        errs.extend(path.key(k).invalid(v, e) for e in label_value_errors(v))
    return errs


TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024


def validate_annotations(annotations: dict[str, str] | None, path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    total = 0
    for k, v in (annotations or {}).items():
        errs.extend(path.invalid(k, e) for e in qualified_name_errors(k.lower()))
        total += len(k) + len(v)
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(path.too_long(TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs
