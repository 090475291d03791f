"""Rule values matched exactly as systemd-udevd matches them.

udev (src/udev/udev-rules.c, `rule_line_add_token` and `token_match_string`) classifies a
match value once, when the rule is read:

* ``""`` matches only the empty string (an absent ENV property, a device without driver...);
* the whole value ``"?*"`` is rewritten to "is not empty" with the operator flipped;
* ``SUBSYSTEM=="subsystem"`` (also ``bus``, ``class``) matches any of those three words;
* otherwise the value is split on ``|`` into alternatives. An empty alternative (leading,
  trailing or doubled ``|``) adds "or the empty string". When the WHOLE value contains one of
  ``*?[`` every alternative is a shell pattern for glibc ``fnmatch(pattern, string, 0)``;
  else every alternative is compared as a plain string (so a backslash is literal there).

The value matches when ANY alternative matches; ``!=`` is the negation of that whole test,
so ``KERNEL!="a|b"`` means "neither a nor b".

udevd runs in the C locale, where fnmatch compares bytes, so matching here is on bytes too
(``os.fsencode`` of the text pyudev hands out). Flags 0 mean ``*`` and ``?`` also match ``/``
and a leading ``.``, and a backslash escapes the next character, inside brackets as well.

Patterns that glibc cannot use as written (unterminated ``[``, unknown ``[:class:]``, a
trailing backslash, a range without an end) are rejected with `GlobError`: fnmatch would
quietly never match (or match the text literally), which is never what a rule author meant.
"""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass

GLOB_CHARS = "*?["
# udev's WHITESPACE (delete_trailing_chars) and C isspace() (the "value ends in a space" test)
_WHITESPACE = b" \t\n\r"
_ISSPACE = " \t\n\v\f\r"

# POSIX classes in the C locale: ASCII only, as glibc's isalpha() etc. there.
_CLASSES: dict[str, frozenset[int]] = {
    "alnum": frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
    "alpha": frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
    "blank": frozenset(b" \t"),
    "cntrl": frozenset([*range(0x20), 0x7F]),
    "digit": frozenset(b"0123456789"),
    "graph": frozenset(range(0x21, 0x7F)),
    "lower": frozenset(b"abcdefghijklmnopqrstuvwxyz"),
    "print": frozenset(range(0x20, 0x7F)),
    "punct": frozenset(c for c in range(0x21, 0x7F) if not chr(c).isalnum()),
    "space": frozenset(b" \t\n\v\f\r"),
    "upper": frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    "xdigit": frozenset(b"0123456789ABCDEFabcdef"),
}
_ALL_BYTES = frozenset(range(256))
# glibc reads "[:", "[=" and "[." inside brackets in ways that depend on what follows;
# anything but a complete "[:class:]", "[=x=]" or "[.x.]" is refused rather than guessed.
_AMBIGUOUS = "'[' inside brackets must start '[:class:]', '[=x=]' or '[.x.]' (escape a literal one as '\\[')"


class GlobError(ValueError):
    """A pattern glibc fnmatch cannot use as written. `offset` is the index in the pattern."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def _byte_class(members: frozenset[int]) -> str:
    """A regex (bytes) character class for exactly these byte values."""
    if not members:
        return "(?!)"
    runs: list[str] = []
    values = sorted(members)
    start = prev = values[0]
    for v in [*values[1:], -2]:
        if v == prev + 1:
            prev = v
            continue
        runs.append(f"\\x{start:02x}" if start == prev else f"\\x{start:02x}-\\x{prev:02x}")
        start = prev = v
    return "[" + "".join(runs) + "]"


def _bracket(p: bytes, start: int) -> tuple[frozenset[int], int]:
    """Parse the bracket expression at p[start] == '[' the way glibc's fnmatch_loop does.

    Returns (matching byte values, index after the closing ']').
    """
    n = len(p)
    i = start + 1
    negate = i < n and p[i] in b"!^"
    if negate:
        i += 1
    members: set[int] = set()
    first = True
    while True:
        if i >= n:
            raise GlobError("unterminated '[' (no closing ']')", start)
        c = p[i]
        if c == ord("]") and not first:
            i += 1
            break
        first = False
        if c == ord("\\"):
            if i + 1 >= n:
                raise GlobError("unterminated '[' (pattern ends in a backslash)", start)
            low, i = p[i + 1], i + 2
        elif c == ord("[") and i + 1 < n and p[i + 1] == ord(":"):
            # "[:name:]": the name is read while it looks like one (glibc: 'a' <= c < 'z');
            # anything else makes this '[' an ordinary member.
            j = i + 2
            while j < n and p[j] != ord(":") and ord("a") <= p[j] < ord("z"):
                j += 1
            if j + 1 < n and p[j] == ord(":") and p[j + 1] == ord("]"):
                name = p[i + 2 : j].decode()
                if name not in _CLASSES:
                    raise GlobError(f"unknown character class '[:{name}:]'", i)
                members |= _CLASSES[name]
                i = j + 2
                continue
            raise GlobError(_AMBIGUOUS, i)
        elif c == ord("[") and i + 1 < n and p[i + 1] == ord("="):
            # "[=x=]" (equivalence class): in the C locale just the character x
            if i + 4 < n and p[i + 3 : i + 5] == b"=]":
                members.add(p[i + 2])
                i += 5
                continue
            raise GlobError(_AMBIGUOUS, i)
        elif c == ord("[") and i + 1 < n and p[i + 1] == ord("."):
            # "[.x.]" (collating symbol): only single characters exist in the C locale
            end = p.find(b".]", i + 2)
            if end < 0:
                raise GlobError("unterminated collating symbol '[.'", i)
            if end - (i + 2) != 1:
                raise GlobError("collating symbol must be one character, e.g. '[.-.]'", i)
            low, i = p[i + 2], end + 2
            if i < n and p[i] == ord("-") and i + 1 < n and p[i + 1] == ord("]"):
                # glibc drops the symbol here ("[[.a.]-]" matches only '-'); refuse the oddity
                raise GlobError("collating symbol followed by '-]' is ambiguous", start)
        else:
            low, i = c, i + 1
        # A '-' after a member starts a range unless it is the last thing before ']'.
        if i < n and p[i] == ord("-") and not (i + 1 < n and p[i + 1] == ord("]")):
            if i + 1 >= n:
                raise GlobError("unterminated range in '['", start)
            high, i = p[i + 1], i + 2
            if high == ord("["):
                raise GlobError(_AMBIGUOUS, i - 1)
            if high == ord("\\"):
                if i >= n:
                    raise GlobError("unterminated range in '[' (pattern ends in a backslash)", start)
                high, i = p[i], i + 1
            members.update(range(low, high + 1))  # reversed range: empty, as in glibc
        else:
            members.add(low)
    result = frozenset(members)
    return (_ALL_BYTES - result if negate else result), i


def translate(pattern: bytes) -> str:
    """Regex source (for bytes, use with re.DOTALL and fullmatch) equal to fnmatch(pattern, s, 0)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == ord("*"):
            if not out or out[-1] != ".*":
                out.append(".*")
            i += 1
        elif c == ord("?"):
            out.append(".")
            i += 1
        elif c == ord("["):
            members, i = _bracket(pattern, i)
            out.append(_byte_class(members))
        elif c == ord("\\"):
            if i + 1 >= n:
                raise GlobError("pattern ends in a backslash (escapes nothing)", i)
            out.append(re.escape(pattern[i + 1 : i + 2]).decode("latin-1"))
            i += 2
        else:
            out.append(re.escape(pattern[i : i + 1]).decode("latin-1"))
            i += 1
    return "".join(out)


def compile_glob(pattern: str | bytes) -> re.Pattern[bytes]:
    """A compiled matcher for one shell pattern; `.fullmatch(bytes)` is fnmatch(..., 0) == 0."""
    raw = os.fsencode(pattern) if isinstance(pattern, str) else pattern
    return re.compile(translate(raw).encode("latin-1"), re.DOTALL)


def fnmatch(pattern: str | bytes, string: str | bytes) -> bool:
    """glibc fnmatch(pattern, string, 0) == 0 for well-formed patterns (GlobError otherwise)."""
    raw = os.fsencode(string) if isinstance(string, str) else string
    return compile_glob(pattern).fullmatch(raw) is not None


class MatchType(enum.Enum):
    EMPTY = "empty"
    PLAIN = "plain"
    GLOB = "glob"
    SUBSYSTEM = "subsystem"


_SUBSYSTEM_WORDS = (b"subsystem", b"class", b"bus")


@dataclass(frozen=True, slots=True)
class UdevValue:
    """One match value of a rule, classified as udev classifies it, with its operator.

    `test(s)` is udev's `token_match_string`: True when the filter PASSES for string `s`
    (bytes; pass b"" for a missing property, driver or subsystem).
    """

    text: str
    negate: bool  # the effective operator is != (after the "?*" rewrite)
    match_type: MatchType
    with_empty: bool  # an empty alternative: the empty string also matches
    plain: tuple[bytes, ...] = ()
    globs: tuple[re.Pattern[bytes], ...] = ()
    strip_trailing_whitespace: bool = False  # ATTR/ATTRS only (udev MATCH_REMOVE_TRAILING_WHITESPACE)

    def matches(self, s: bytes) -> bool:
        """Whether the value (ignoring the operator) matches `s`."""
        mt = self.match_type
        if mt is MatchType.EMPTY:
            return not s
        if mt is MatchType.SUBSYSTEM:
            return s in _SUBSYSTEM_WORDS
        if self.with_empty and not s:
            return True
        if mt is MatchType.PLAIN:
            return s in self.plain
        return any(g.fullmatch(s) is not None for g in self.globs)

    def test(self, s: bytes) -> bool:
        return self.matches(s) != self.negate


def compile_value(
    text: str, *, negate: bool, subsystem_words: bool = False, attribute: bool = False
) -> UdevValue:
    """Classify and compile a rule value like udev's rule_line_add_token.

    `subsystem_words`: the field is SUBSYSTEM (not SUBSYSTEMS), where "subsystem", "bus" and
    "class" are special. `attribute`: the field is ATTR/ATTRS (trailing-whitespace rule).
    Raises GlobError (offset into `text`) for a pattern fnmatch cannot use.
    """
    if subsystem_words and text in ("subsystem", "bus", "class"):
        return UdevValue(text, negate, MatchType.SUBSYSTEM, False)
    # The nulstr conversion: split on '|', remembering whether any alternative is empty.
    pieces = text.split("|")
    alternatives = [p for p in pieces if p]
    with_empty = len(alternatives) != len(pieces)
    # udev tests "ends in whitespace" with strlen() of the converted value, i.e. on its
    # first non-empty alternative; an empty value never strips.
    strip = attribute and bool(alternatives) and alternatives[0][-1] not in _ISSPACE
    if not text:
        return UdevValue(text, negate, MatchType.EMPTY, False, strip_trailing_whitespace=False)
    if text == "?*":  # udev: KEY=="?*" -> KEY!="" (and != -> ==)
        return UdevValue(text, not negate, MatchType.EMPTY, False, strip_trailing_whitespace=strip)
    if any(ch in text for ch in GLOB_CHARS):
        globs: list[re.Pattern[bytes]] = []
        offset = 0
        for piece in pieces:
            if piece:
                try:
                    globs.append(compile_glob(piece))
                except GlobError as exc:
                    raise GlobError(exc.message, offset + exc.offset) from None
            offset += len(piece) + 1
        return UdevValue(text, negate, MatchType.GLOB, with_empty, globs=tuple(globs),
                         strip_trailing_whitespace=strip)
    return UdevValue(text, negate, MatchType.PLAIN, with_empty,
                     plain=tuple(os.fsencode(a) for a in alternatives), strip_trailing_whitespace=strip)


# Attribute values are copied into a 512-byte buffer (UDEV_NAME_SIZE) before trailing
# whitespace is removed, so only their first 511 bytes take part in the match.
_UDEV_NAME_SIZE = 512


def attribute_for_match(value: bytes, value_spec: UdevValue) -> bytes:
    """What udev compares for an ATTR/ATTRS value (already without trailing newlines)."""
    if value_spec.strip_trailing_whitespace:
        return value[: _UDEV_NAME_SIZE - 1].rstrip(_WHITESPACE)
    return value
