"""The udev rule language of Akri's udev discovery handler (spec §5.3): parse and compile.

A rule is a list of filters ``FIELD OP "VALUE"`` (``FIELD{key}`` for ATTR, ATTRS and ENV),
read the way systemd-udevd reads a rules line (udev-rules.c `parse_line`): filters are
separated by commas and/or whitespace, and whitespace may surround the operator. Upstream
Akri's grammar silently drops every filter after the first one that is not joined by a
comma (spec §5.3 [quirk]); udev honours them all, and so do we.

Only match filters (``==`` and ``!=``) on the fields below are supported; every other udev
key (ACTION, NAME, RUN{...}, ...) and every assignment operator is rejected with the rule
position, so a rule never silently means something else than it says.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from akri.discovery.handlers.udev.glob import GlobError, UdevValue, compile_value


class Scope(enum.Enum):
    DEVICE = "device"  # tested on the device itself
    ANCESTOR = "ancestor"  # tested on the device or one of its ancestors (all on the same one)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    scope: Scope
    takes_key: bool


FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec("DEVPATH", Scope.DEVICE, False),
        FieldSpec("KERNEL", Scope.DEVICE, False),
        FieldSpec("SUBSYSTEM", Scope.DEVICE, False),
        FieldSpec("DRIVER", Scope.DEVICE, False),
        FieldSpec("TAG", Scope.DEVICE, False),
        FieldSpec("ENV", Scope.DEVICE, True),
        FieldSpec("ATTR", Scope.DEVICE, True),
        FieldSpec("KERNELS", Scope.ANCESTOR, False),
        FieldSpec("SUBSYSTEMS", Scope.ANCESTOR, False),
        FieldSpec("DRIVERS", Scope.ANCESTOR, False),
        FieldSpec("TAGS", Scope.ANCESTOR, False),
        FieldSpec("ATTRS", Scope.ANCESTOR, True),
    )
}

# udev keys that are valid in a rules file but mean an action (or an unsupported match).
UNSUPPORTED_FIELDS = frozenset({
    "ACTION", "CONST", "GOTO", "GROUP", "IMPORT", "LABEL", "MODE", "NAME", "OPTIONS", "OWNER",
    "PROGRAM", "RESULT", "RUN", "SECLABEL", "SYMLINK", "SYSCTL", "TEST", "WAIT_FOR",
})

OPERATORS = ("==", "!=", "+=", "-=", ":=", "=")
_WHITESPACE = " \t\n\r"
_SEPARATORS = _WHITESPACE + ","
_PREFIXED_VALUE = re.compile(r'(?:e|i|ei|ie)"')


class RuleError(ValueError):
    """A rule that cannot be used; `column` is 1-based within the rule text."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} at column {column}")
        self.message = message
        self.column = column


@dataclass(frozen=True, slots=True)
class Filter:
    """One parsed ``FIELD{key} OP "VALUE"`` (positions are 0-based offsets in the rule)."""

    field: str
    key: str | None
    op: str
    value: str
    column: int  # 1-based column of the field name
    value_column: int = 0  # 1-based column of the value's first character (after the quote)

    def __str__(self) -> str:
        key = f"{{{self.key}}}" if self.key is not None else ""
        return f'{self.field}{key}{self.op}"{self.value}"'


@dataclass(frozen=True, slots=True)
class SubsystemAttribute:
    """``ATTR{[subsystem/kernel]attribute}``: an attribute of another, named device."""

    subsystem: str
    sysname: str
    attribute: str


@dataclass(frozen=True, slots=True)
class Token:
    """A compiled filter: what to read from a device and how to test it."""

    field: str
    scope: Scope
    key: str | None
    value: UdevValue
    source: Filter
    subsystem_attribute: SubsystemAttribute | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    text: str
    filters: tuple[Filter, ...]
    device_tokens: tuple[Token, ...] = ()
    ancestor_tokens: tuple[Token, ...] = ()
    # devices whose attributes this rule reads by name ([subsystem/kernel]attr)
    referenced_devices: tuple[SubsystemAttribute, ...] = field(default=())

    @property
    def uses_ancestors(self) -> bool:
        return bool(self.ancestor_tokens)


def _skip(text: str, i: int, chars: str) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def parse_filters(text: str) -> list[Filter]:
    """Split a rule into filters, checking fields and operators. Raises RuleError."""
    filters: list[Filter] = []
    i = 0
    n = len(text)
    while True:
        i = _skip(text, i, _SEPARATORS)
        if i >= n:
            return filters
        start = i
        # udev: the key runs to whitespace, '=', '{' or an operator's first character
        while i < n and text[i] not in _WHITESPACE + "={" and not (
            text[i] in "+-!:" and text[i + 1 : i + 2] == "="
        ):
            i += 1
        name = text[start:i]
        col = start + 1
        if not name:
            raise RuleError(f"expected a field name, found {text[i]!r}", col)
        if name in UNSUPPORTED_FIELDS:
            raise RuleError(f"unsupported field {name}", col)
        spec = FIELDS.get(name)
        if spec is None:
            supported = ", ".join(FIELDS)
            raise RuleError(f"unknown field {name!r} (supported: {supported})", col)
        key: str | None = None
        if i < n and text[i] == "{":
            close = text.find("}", i + 1)
            if close < 0:
                raise RuleError(f"unterminated '{{' after {name}", i + 1)
            key = text[i + 1 : close]
            if not spec.takes_key:
                raise RuleError(f"{name} takes no {{key}}", i + 1)
            if not key:
                raise RuleError(f"{name} needs a non-empty {{key}}", i + 1)
            i = close + 1
        elif spec.takes_key:
            raise RuleError(f"{name} needs a {{key}}, e.g. {name}{{name}}", i + 1)
        i = _skip(text, i, _WHITESPACE)
        op = next((o for o in OPERATORS if text.startswith(o, i)), None)
        if op is None:
            found = repr(text[i]) if i < n else "end of rule"
            raise RuleError(f"expected an operator (== or !=) after {name}, found {found}", i + 1)
        if op not in ("==", "!="):
            raise RuleError(f"unsupported operator '{op}' for {name} (only == and != match)", i + 1)
        i = _skip(text, i + len(op), _WHITESPACE)
        if _PREFIXED_VALUE.match(text, i):
            raise RuleError('unsupported value prefix (e"..." or i"..."); use a plain "..."', i + 1)
        if i >= n or text[i] != '"':
            found = repr(text[i]) if i < n else "end of rule"
            raise RuleError(f"expected '\"' to start the value of {name}, found {found}", i + 1)
        close = text.find('"', i + 1)
        if close < 0:
            raise RuleError(f"unterminated value of {name} (no closing '\"')", i + 1)
        value = text[i + 1 : close]
        filters.append(Filter(name, key, op, value, col, i + 2))
        i = close + 1


def _subsystem_attribute(key: str, column: int) -> SubsystemAttribute:
    # udev_resolve_subsys_kernel(): "[<subsystem>/<kernel>]<attribute>"
    close = key.find("]")
    slash = key.find("/", 1, close if close > 0 else None)
    if close < 0 or slash < 0:
        raise RuleError(f"attribute {key!r} must look like [subsystem/kernel]attribute", column)
    subsystem, sysname, attribute = key[1:slash], key[slash + 1 : close], key[close + 1 :]
    if not subsystem or not sysname or not attribute:
        raise RuleError(f"attribute {key!r} must look like [subsystem/kernel]attribute", column)
    return SubsystemAttribute(subsystem, sysname, attribute)


def compile_filter(f: Filter) -> Token:
    spec = FIELDS[f.field]
    key_column = f.column + len(f.field) + 1
    sub_attr: SubsystemAttribute | None = None
    if f.field in ("ATTR", "ATTRS") and f.key is not None:
        if f.key.startswith("["):
            sub_attr = _subsystem_attribute(f.key, key_column)
        elif "$" in f.key or "%" in f.key:
            raise RuleError(f"{f.field}{{{f.key}}}: substitutions ($kernel, %k, ...) are not supported",
                            key_column)
    try:
        value = compile_value(
            f.value,
            negate=f.op == "!=",
            subsystem_words=f.field == "SUBSYSTEM",
            attribute=f.field in ("ATTR", "ATTRS"),
        )
    except GlobError as exc:
        raise RuleError(f"invalid pattern {f.value!r} for {f.field}: {exc.message}",
                        f.value_column + exc.offset) from None
    return Token(f.field, spec.scope, f.key, value, f, sub_attr)


def parse_rule(text: str) -> Rule:
    """Parse and compile one rule. An empty rule has no filters and matches every device."""
    if not isinstance(text, str):
        raise RuleError(f"must be a string, got {type(text).__name__}", 1)
    filters = parse_filters(text)
    tokens = [compile_filter(f) for f in filters]
    return Rule(
        text=text,
        filters=tuple(filters),
        device_tokens=tuple(t for t in tokens if t.scope is Scope.DEVICE),
        ancestor_tokens=tuple(t for t in tokens if t.scope is Scope.ANCESTOR),
        referenced_devices=tuple(t.subsystem_attribute for t in tokens if t.subsystem_attribute),
    )
