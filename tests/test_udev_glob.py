"""Rule values mean what they mean to udev (udev-rules.c token_match_string + glibc fnmatch).

The table is derived by hand from systemd's udev-rules.c (rule_line_add_token: "?*" becomes
!="" ; '|' splits alternatives, an empty one adds "or empty"; GLOB when the whole value has
one of *?[ ; `!=` negates the whole alternative set) and glibc fnmatch(pattern, s, 0).
Where upstream Akri compiles the value as a regular expression, its answer is shown too:
those rows are why rules copied from udev selected different devices upstream.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akri.discovery.handlers.udev.glob import GlobError, attribute_for_match, compile_glob, compile_value


def udev_passes(value: str, op: str, s: str, **kw: bool) -> bool:
    return compile_value(value, negate=op == "!=", **kw).test(s.encode())


def upstream_regex_passes(value: str, op: str, s: str) -> bool:
    # spec §5.3 step 3: leftmost match that must start at 0 and end at the end of s
    m = re.match(value, s)
    hit = m is not None and m.end() == len(s)
    return hit if op == "==" else not hit


# (value, op, string, udev's answer)
TABLE = [
    # globs, both operators
    ("video*", "==", "video0", True),
    ("video*", "==", "vide", False),
    ("video*", "!=", "video0", False),
    ("video*", "!=", "vbi0", True),
    ("video[0-9]", "==", "video7", True),
    ("video[0-9]", "==", "video10", False),
    ("video[0-9]*", "==", "video10", True),
    ("video[!0-9]", "==", "videox", True),
    ("video[!0-9]", "==", "video1", False),
    ("video[^0-9]", "==", "videox", True),  # glibc takes '^' like '!'
    ("video[^0-9]", "==", "video^", True),
    ("[a-c]x", "==", "bx", True),
    ("[]a]", "==", "]", True),  # ']' first in brackets is literal
    ("[a-]", "==", "-", True),
    ("ttyS?", "==", "ttyS1", True),
    ("ttyS?", "==", "ttyS", False),
    ("*", "==", "a/b", True),  # flags 0: '*' crosses '/'
    ("*/eth0", "==", "/devices/pci0000:00/0000:00:03.0/virtio2/net/eth0", True),
    (".*", "==", "a", False),  # a glob, not a regex
    ("a.c*", "==", "abc", False),
    ("a\\*b?", "==", "a*bc", True),  # backslash escapes in a glob value
    ("a\\*b?", "==", "axbc", False),
    ("?", "==", "é", False),  # C locale: '?' is one byte, "é" is two
    ("??", "==", "é", True),
    ("[[:digit:]]*", "==", "7up", True),
    # alternatives
    ("a|b", "==", "a", True),
    ("a|b", "==", "b", True),
    ("a|b", "==", "a|b", False),
    ("a|b", "!=", "a", False),  # != negates the whole set
    ("a|b", "!=", "c", True),
    ("video*|vbi*", "==", "vbi3", True),
    ("video*|vbi*", "!=", "vbi3", False),
    ("a|", "==", "", True),  # an empty alternative matches the empty string
    ("|a", "==", "", True),
    ("a||b", "==", "", True),
    ("a|", "!=", "", False),
    ("|", "==", "", True),
    ("|", "==", "x", False),
    ("a*|", "==", "", True),
    # empty value and "?*"
    ("", "==", "", True),
    ("", "==", "x", False),
    ("", "!=", "x", True),
    ("", "!=", "", False),
    ("?*", "==", "x", True),
    ("?*", "==", "", False),
    ("?*", "!=", "", True),
    ("?*", "!=", "xy", False),
    # plain values (no *?[ anywhere) compare with strcmp: backslashes are literal
    ("a\\b", "==", "a\\b", True),
    ("a\\b", "==", "ab", False),
    ("a.c", "==", "abc", False),
]


@pytest.mark.parametrize(("value", "op", "s", "expected"), TABLE)
def test_values_mean_what_udev_means(value: str, op: str, s: str, expected: bool) -> None:
    assert udev_passes(value, op, s) is expected


@pytest.mark.parametrize(
    ("value", "op", "s"),
    [
        ("video*", "!=", "video0"),  # regex "video*" is vide + o*: does not span "video0"
        ("video*", "==", "video0"),
        ("a.c*", "==", "abc"),
        ("[!0-9]", "==", "a"),  # regex: '!' or a digit
        ("?*", "==", "x"),  # not even a valid regex: upstream's loop crashed
    ],
)
def test_upstream_regex_semantics_disagree_with_udev(value: str, op: str, s: str) -> None:
    try:
        upstream = upstream_regex_passes(value, op, s)
    except re.error:
        upstream = None
    assert upstream != udev_passes(value, op, s)


def test_subsystem_words() -> None:
    # SUBSYSTEM=="subsystem" (or bus/class) matches any of the three words; SUBSYSTEMS does not
    assert udev_passes("bus", "==", "class", subsystem_words=True)
    assert udev_passes("subsystem", "==", "subsystem", subsystem_words=True)
    assert not udev_passes("bus", "==", "class")
    assert not udev_passes("bus", "==", "net", subsystem_words=True)


@pytest.mark.parametrize(
    ("value", "raw", "compared"),
    [
        ("1500", b"1500  \t", b"1500"),  # trailing whitespace removed...
        ("1500 ", b"1500  ", b"1500  "),  # ...unless the rule value ends in whitespace
        ("a |b", b"a ", b"a "),  # udev looks at the first alternative only
        ("|a", b"a  ", b"a"),
        ("", b"x ", b"x "),
        ("?*", b"   ", b""),  # so ATTR{x}=="?*" fails on an all-blank attribute
        ("x*", b"y" * 600 + b" ", b"y" * 511),  # only UDEV_NAME_SIZE-1 bytes take part
    ],
)
def test_attribute_values_lose_trailing_whitespace_like_udev(value: str, raw: bytes, compared: bytes) -> None:
    spec = compile_value(value, negate=False, attribute=True)
    assert attribute_for_match(raw, spec) == compared


@pytest.mark.parametrize(
    ("pattern", "offset"),
    [("video[0-9", 5), ("a\\", 1), ("[[:foo:]]", 1), ("[a-", 0), ("x[[:a]", 2), ("[a-[]", 3)],
)
def test_patterns_fnmatch_cannot_use_are_reported_with_their_position(pattern: str, offset: int) -> None:
    with pytest.raises(GlobError) as info:
        compile_glob(pattern)
    assert info.value.offset == offset


def test_glob_error_offset_counts_from_the_start_of_the_whole_value() -> None:
    with pytest.raises(GlobError) as info:
        compile_value("ab*|cd[", negate=False)
    assert info.value.offset == 6


# --- the translation equals glibc's fnmatch(pattern, string, 0) -------------------------

_libc = ctypes.CDLL(ctypes.util.find_library("c"))
_libc.fnmatch.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
_libc.fnmatch.restype = ctypes.c_int

_PATTERN_PIECES = st.sampled_from(
    ["a", "b", "0", "9", "-", "]", "!", "^", "*", "?", "[", "\\", "/", ".", ":",
     "[:digit:]", "[:alpha:]", "[:space:]", "[=a=]", "[.-.]", "0-9", "a-z"])
_STRINGS = st.text(alphabet="ab09-]!^*?[\\/.: ", max_size=6)


@settings(max_examples=1500, deadline=None)
@given(pieces=st.lists(_PATTERN_PIECES, max_size=8), s=_STRINGS)
def test_glob_agrees_with_glibc_fnmatch(pieces: list[str], s: str) -> None:
    pattern = "".join(pieces)
    try:
        compiled = compile_glob(pattern)
    except GlobError:
        return  # refused: reported to the user instead of guessing glibc's reading
    ours = compiled.fullmatch(s.encode()) is not None
    assert ours == (_libc.fnmatch(pattern.encode(), s.encode(), 0) == 0), (pattern, s)


def test_realistic_patterns_are_all_accepted_and_agree_with_glibc() -> None:
    patterns = ["video[0-9]*", "ttyUSB*", "card[0-9]", "sd[a-z][0-9]", "*[!0-9]", "hidraw?",
                "nvme[0-9]n[0-9]*", "event[[:digit:]]*", "1-1.[1-4]:1.0", "[Vv]ideo*"]
    names = ["video0", "video12", "ttyUSB0", "card1", "sda1", "sdb", "hidraw3", "nvme0n1p2",
             "event17", "1-1.2:1.0", "Video7", "ttyS0"]
    for pattern in patterns:
        g = compile_glob(pattern)
        for name in names:
            assert (g.fullmatch(name.encode()) is not None) == (
                _libc.fnmatch(pattern.encode(), name.encode(), 0) == 0), (pattern, name)
