"""Reading one YAML mapping with errors that name the file, the object and the field.

A `Fields` wraps a mapping at a path (`spec.containers[0]`). Every getter checks the
type; `unread()` lists the keys nobody asked for, so the loader can warn about fields
the lab does not model instead of silently misreading them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from netlab.errors import InputError
from netlab.model import LabelSelector, LabelSelectorRequirement
from netlab.names import is_dns1035_label, is_dns1123_label, is_dns1123_subdomain

# How the API server checks a name, by the rule it applies (apimachinery's validation).
NAME_RULES = {
    "label": (is_dns1123_label, "a DNS-1123 label is at most 63 lower-case letters, digits "
                                "and '-', starting and ending with a letter or digit"),
    "subdomain": (is_dns1123_subdomain, "a DNS-1123 subdomain is at most 253 lower-case "
                                        "letters, digits, '-' and '.', starting and ending "
                                        "with a letter or digit"),
    "dns1035": (is_dns1035_label, "a DNS-1035 label is at most 63 lower-case letters, digits "
                                  "and '-', starting with a letter and ending with a letter "
                                  "or digit"),
}
_QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
ANNOTATIONS_MAX = 256 * 1024  # TotalAnnotationSizeLimitB


@dataclass
class Where:
    file: str
    line: int | None
    obj: str
    warnings: list[str] = field(default_factory=list)

    def error(self, path: str, message: str) -> InputError:
        return InputError(message, file=self.file, obj=self.obj, field=path or None, line=self.line)


_MISSING = object()


class Fields:
    def __init__(self, data: Any, path: str, where: Where) -> None:
        self.where = where
        self.path = path
        if not isinstance(data, dict):
            raise where.error(path, f"must be a mapping, not {_kind(data)}")
        self.data = data
        self._read: set[str] = set()

    def _p(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> InputError:
        return self.where.error(self._p(key) if key else self.path, message)

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self._read.add(key)
        value = self.data.get(key)
        if value is None:
            if default is _MISSING:
                raise self.error(key, "is required")
            return default
        return value

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def str(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(key, f"must be a string, not {_kind(value)}")
        return str(value)

    def int(self, key: str, default: Any = _MISSING, lo: int | None = None,
            hi: int | None = None) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, not {_kind(value)} {value!r}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.error(key, f"{value} is out of range {lo}-{hi}")
        return value

    def number(self, key: str, default: Any = _MISSING, lo: float | None = None,
               hi: float | None = None) -> Any:
        """An integer or a decimal number (seconds, say)."""
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, not {_kind(value)} {value!r}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.error(key, f"{value} is out of range {lo}-{hi}")
        return float(value)

    def bool(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = _MISSING) -> Any:
        value = self.str(key, default)
        if value is not default and value not in choices:
            raise self.error(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def int_or_str(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.error(key, f"must be a number or a name, not {_kind(value)}")
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, int) and not 1 <= value <= 65535:
            raise self.error(key, f"{value} is out of range 1-65535")
        if isinstance(value, str) and not is_port_name(value):
            raise self.error(key, f"{value!r} is not a valid port name (IANA_SVC_NAME: at most 15 "
                                  "lower-case letters, digits and '-', with a letter)")
        return value

    def sub(self, key: str, required: bool = False) -> Fields | None:
        value = self.raw(key, _MISSING if required else None)
        return None if value is None else Fields(value, self._p(key), self.where)

    def list(self, key: str, required: bool = False) -> list[Any]:
        value = self.raw(key, _MISSING if required else [])
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, not {_kind(value)}")
        return value

    def items(self, key: str, required: bool = False) -> list[Fields]:
        return [Fields(v, f"{self._p(key)}[{i}]", self.where)
                for i, v in enumerate(self.list(key, required))]

    def str_list(self, key: str) -> tuple[str, ...]:
        out = []
        for i, v in enumerate(self.list(key)):
            if isinstance(v, bool) or not isinstance(v, str | int | float):
                raise self.where.error(f"{self._p(key)}[{i}]", f"must be a string, not {_kind(v)}")
            out.append(str(v))
        return tuple(out)

    def str_map(self, key: str) -> dict[str, str]:
        value = self.raw(key, {})
        if not isinstance(value, dict):
            raise self.error(key, f"must be a mapping, not {_kind(value)}")
        out = {}
        for k, v in value.items():
            if v is None or isinstance(v, dict | list):
                raise self.where.error(f"{self._p(key)}.{k}", f"must be a string, not {_kind(v)}")
            out[str(k)] = str(v).lower() if isinstance(v, bool) else str(v)
        return out

    def name(self, key: str, what: str = "name", rule: str = "label") -> str:
        """A name checked by one of NAME_RULES: `label`, `subdomain` or `dns1035`."""
        value = self.str(key)
        check, text = NAME_RULES[rule]
        if not check(value):
            raise self.error(key, f"{value!r} is not a valid {what}: {text}")
        return value

    def labels(self, key: str) -> dict[str, str]:
        """A label map (metadata.labels, matchLabels, a Service's selector), its keys and
        values checked as the API server does (ValidateLabels)."""
        out = self.str_map(key)
        for k, v in out.items():
            if err := qualified_name_error(k):
                raise self.where.error(f"{self._p(key)}.{k}", f"label key {k!r} is not valid: "
                                                              f"{err}")
            if err := label_value_error(v):
                raise self.where.error(f"{self._p(key)}.{k}", f"label value {v!r} is not "
                                                              f"valid: {err}")
        return out

    def annotations(self, key: str) -> dict[str, str]:
        """metadata.annotations: keys checked like label keys (lower-cased first, as the API
        server does), values free, at most 256 KiB in all (ValidateAnnotations)."""
        out = self.str_map(key)
        for k in out:
            if err := qualified_name_error(k.lower()):
                raise self.where.error(f"{self._p(key)}.{k}", f"annotation key {k!r} is not "
                                                              f"valid: {err}")
        size = sum(len(k) + len(v) for k, v in out.items())
        if size > ANNOTATIONS_MAX:
            raise self.error(key, f"may not be more than {ANNOTATIONS_MAX} bytes in all, "
                                  f"not {size}")
        return out

    def ignore(self, *keys: str) -> None:
        """Fields deliberately read as meaningless for the lab (no warning)."""
        self._read.update(keys)

    def unread(self) -> list[str]:
        return [self._p(k) for k in self.data if k not in self._read]

    def done(self) -> None:
        for path in self.unread():
            self.where.warnings.append(f"{self.where.obj}: {path} is not modelled by netlab and "
                                       "is ignored")


def qualified_name_error(key: str) -> str | None:
    """Why `key` is not a qualified name (a label or annotation key: an optional DNS-1123
    subdomain prefix and '/', then a name), or None (IsQualifiedName)."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        if "/" in prefix:
            return "a qualified name has at most one '/'"
        if not prefix:
            return "the prefix before '/' must not be empty"
        if not is_dns1123_subdomain(prefix):
            return (f"the prefix {prefix!r} must be a DNS-1123 subdomain: at most 253 lower-case "
                    "letters, digits, '-' and '.', starting and ending with a letter or digit")
    if not name:
        return "the name part must not be empty"
    if len(name) > 63 or not _QUALIFIED.fullmatch(name):
        return ("the name part must be at most 63 letters, digits, '-', '_' and '.', starting "
                "and ending with a letter or digit")
    return None


def label_value_error(value: str) -> str | None:
    """Why `value` is not a label value, or None (IsValidLabelValue): empty, or at most 63
    letters, digits, '-', '_' and '.', starting and ending with a letter or digit."""
    if len(value) > 63:
        return f"it is {len(value)} characters long; a label value is at most 63"
    if value and not _QUALIFIED.fullmatch(value):
        return ("a label value holds letters, digits, '-', '_' and '.', starting and ending "
                "with a letter or digit")
    return None


def is_port_name(value: str) -> bool:
    return (len(value) <= 15 and re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", value) is not None
            and "--" not in value and any(c.isalpha() for c in value))


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "empty"}.get(type(value),
                                                                           type(value).__name__)


def label_selector(f: Fields | None) -> LabelSelector:
    """A metav1.LabelSelector (matchLabels, matchExpressions), its operators and label syntax
    checked as the API server does; None: the empty selector (everything)."""
    if f is None:
        return LabelSelector()
    reqs = []
    for e in f.items("matchExpressions"):
        op = e.choice("operator", ("In", "NotIn", "Exists", "DoesNotExist"))
        values = e.str_list("values")
        if op in ("In", "NotIn") and not values:
            raise e.error("values", f"must not be empty for operator {op}")
        if op in ("Exists", "DoesNotExist") and values:
            raise e.error("values", f"must be empty for operator {op}")
        key = e.str("key")
        if err := qualified_name_error(key):
            raise e.error("key", f"label key {key!r} is not valid: {err}")
        for i, v in enumerate(values):
            if err := label_value_error(v):
                raise e.error(f"values[{i}]", f"label value {v!r} is not valid: {err}")
        reqs.append(LabelSelectorRequirement(key, op, values))
        e.done()
    sel = LabelSelector(tuple(sorted(f.labels("matchLabels").items())), tuple(reqs))
    f.done()
    return sel


def schema_int(f: Fields, key: str, lo: int, hi: int, default: int | None = None) -> int:
    """An integer within a CRD schema's minimum and maximum, refused in the API server's
    words (required unless a `default` is given)."""
    value = f.raw(key) if default is None else f.raw(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise f.error(key, f"must be an integer, not {value!r}")
    if value < lo:
        raise f.error(key, f"Invalid value: {value}: should be greater than or equal to {lo}")
    if value > hi:
        raise f.error(key, f"Invalid value: {value}: should be less than or equal to {hi}")
    return value
