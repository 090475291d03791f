"""Label and field selectors, parsed with the grammar of the real API (k8s.io/apimachinery labels/fields).

Label selectors: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`, `a>1`, `a<1`,
comma-separated (AND). Field selectors: `f=v`, `f==v`, `f!=v`, comma-separated, with `\\,` `\\=` `\\\\`
escapes; which fields are allowed depends on the type (see `ResourceType.field_labels`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import bad_request
from .resources import ResourceType
from .validation import label_value_error, qualified_name_error


@dataclass(frozen=True, slots=True)
class LabelRequirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        op = self.op
        if op == "exists":
            return self.key in labels
        if op == "!":
            return self.key not in labels
        if op in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        if op in ("!=", "notin"):
            return self.key not in labels or labels[self.key] not in self.values
        # gt / lt: the label must exist and parse as an integer.
        try:
            have = int(labels[self.key])
        except (KeyError, ValueError):
            return False
        want = int(self.values[0])
        return have > want if op == "gt" else have < want


LabelSelector = tuple[LabelRequirement, ...]

_SPECIAL = set(" \t\n,=!()<>")


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\n":
            i += 1
        elif c in ",()<>":
            tokens.append(c)
            i += 1
        elif c == "=":
            if text.startswith("==", i):
                tokens.append("==")
                i += 2
            else:
                tokens.append("=")
                i += 1
        elif c == "!":
            if text.startswith("!=", i):
                tokens.append("!=")
                i += 2
            else:
                tokens.append("!")
                i += 1
        else:
            j = i
            while j < n and text[j] not in _SPECIAL:
                j += 1
            tokens.append("\0" + text[i:j])  # marks an identifier, so "in" the word differs from values
            i = j
    return tokens


def _is_ident(tok: str | None) -> bool:
    return tok is not None and tok.startswith("\0")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a labelSelector query value; raise 400 BadRequest on bad syntax, like the real API."""
    if not text or not text.strip():
        return ()
    toks = _tokenize(text)
    pos = 0

    def fail(why: str) -> Exception:
        return bad_request(f"unable to parse requirement: {why} in label selector {text!r}")

    def peek() -> str | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> str | None:
        nonlocal pos
        tok = peek()
        pos += 1
        return tok

    def key_token() -> str:
        tok = take()
        if not _is_ident(tok):
            raise fail(f"found {tok!r}, expected a key")
        key = tok[1:]  # type: ignore[index]
        if err := qualified_name_error(key):
            raise fail(f"invalid label key {key!r}: {err}")
        return key

    def value(allow_empty: bool = True) -> str:
        tok = peek()
        if _is_ident(tok):
            take()
            val = tok[1:]  # type: ignore[index]
        elif allow_empty and tok in (None, ",", ")"):
            val = ""
        else:
            raise fail(f"found {tok!r}, expected a value")
        if err := label_value_error(val):
            raise fail(f"invalid label value {val!r}: {err}")
        return val

    reqs: list[LabelRequirement] = []
    while True:
        if peek() == "!":
            take()
            reqs.append(LabelRequirement(key_token(), "!"))
        else:
            key = key_token()
            tok = peek()
            if tok is None or tok == ",":
                reqs.append(LabelRequirement(key, "exists"))
            elif tok in ("=", "=="):
                take()
                reqs.append(LabelRequirement(key, "=", (value(),)))
            elif tok == "!=":
                take()
                reqs.append(LabelRequirement(key, "!=", (value(),)))
            elif tok in ("<", ">"):
                take()
                num = value(allow_empty=False)
                try:
                    int(num)
                except ValueError:
                    raise fail(
                        f"for 'gt', 'lt' operators, the value must be an integer, not {num!r}"
                    ) from None
                reqs.append(LabelRequirement(key, "gt" if tok == ">" else "lt", (num,)))
            elif tok in ("\0in", "\0notin"):
                take()
                if take() != "(":
                    raise fail("expected '(' after set operator")
                values: list[str] = []
                while True:
                    values.append(value())
                    sep = take()
                    if sep == ")":
                        break
                    if sep != ",":
                        raise fail(f"found {sep!r}, expected ',' or ')'")
                reqs.append(LabelRequirement(key, tok[1:], tuple(values)))
            else:
                raise fail(f"found {tok!r}, expected an operator")
        tok = take()
        if tok is None:
            return tuple(reqs)
        if tok != ",":
            raise fail(f"found {tok!r}, expected ','")


def labels_match(selector: LabelSelector, obj: dict[str, Any]) -> bool:
    if not selector:
        return True
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(req.matches(labels) for req in selector)


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    path: tuple[str, ...]
    equal: bool
    value: str

    def matches(self, obj: dict[str, Any]) -> bool:
        return (field_value(obj, self.path) == self.value) is self.equal


FieldSelector = tuple[FieldRequirement, ...]


def field_value(obj: dict[str, Any], path: tuple[str, ...]) -> str:
    """The string the real API compares: missing fields are "", booleans "true"/"false"."""
    cur: Any = obj
    for part in path:
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if isinstance(cur, dict):
        # involvedObject/source style fields are compared on their string form; close enough here.
        return ""
    return str(cur)


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, cur, i = [], [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if c == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            if text[i + 1] not in "\\,=":
                raise bad_request(f"invalid field selector: invalid escape sequence in {text!r}")
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse_field_selector(text: str | None, rt: ResourceType) -> FieldSelector:
    """Parse a fieldSelector; fields the type does not support are a 400, as in the real API."""
    if not text or not text.strip():
        return ()
    reqs: list[FieldRequirement] = []
    for term in _split_unescaped(text, ","):
        term = term.strip()
        if not term:
            continue
        for op in ("!=", "==", "="):
            idx = term.find(op)
            if idx > 0:
                break
        else:
            raise bad_request(f"invalid selector: '{term}'; can't understand '{term}'")
        equal = op != "!="
        label, value = term[:idx].strip(), _unescape(term[idx + len(op) :])
        if not rt.supports_field(label):
            raise bad_request(f"field label not supported: {label}")
        reqs.append(FieldRequirement(tuple(label.split(".")), equal, value))
    return tuple(reqs)


def fields_match(selector: FieldSelector, obj: dict[str, Any]) -> bool:
    return all(req.matches(obj) for req in selector)


def make_filter(labels: LabelSelector, fields: FieldSelector) -> Callable[[dict[str, Any]], bool] | None:
    """One predicate for list and watch; None when nothing is selected (the common, fast case)."""
    if not labels and not fields:
        return None
    return lambda obj: labels_match(labels, obj) and fields_match(fields, obj)
