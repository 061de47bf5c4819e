"""API objects: models, defaults, validation, label selectors and quantities."""

from nodeagent.objects.codec import DecodeError, InvalidError, decode, normalize
from nodeagent.objects.kinds import RESOURCES, Resource, by_kind, by_plural, lookup
from nodeagent.objects.quantity import Quantity, QuantityError, parse_quantity
from nodeagent.objects.selectors import Selector, SelectorError, parse_selector, selector_from_dict
from nodeagent.objects.validation import FieldError

__all__ = [
    "RESOURCES", "DecodeError", "FieldError", "InvalidError", "Quantity", "QuantityError",
    "Resource", "Selector", "SelectorError", "by_kind", "by_plural", "decode", "lookup",
    "normalize", "parse_quantity", "parse_selector", "selector_from_dict",
]
