"""parse_uevent: the compiled extension and its pure-Python twin, on real and hostile input.

The fixtures in tests/fixtures/uevents/ are real datagrams captured from this kernel and
from Debian's systemd-udevd (see capture.py there), so these tests need no root.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from akri._fast import pure

try:
    from akri._fast import _uevent as compiled
except ImportError:  # extension not built: the compiled side is skipped, the twin still tested
    compiled = None

FIXTURES = Path(__file__).parent / "fixtures" / "uevents"
MESSAGES = {p.stem: p.read_bytes() for p in sorted(FIXTURES.glob("*.bin"))}
needs_compiled = pytest.mark.skipif(
    compiled is None, reason="akri._fast._uevent is not built (run: python setup.py build_ext --inplace)"
)

IMPLS = [
    pytest.param(lambda: compiled.parse_uevent, id="compiled", marks=needs_compiled),
    pytest.param(lambda: pure.parse_uevent, id="pure"),
]

Parse = Callable[[bytes], dict[str, str]]


@pytest.fixture(params=IMPLS)
def parse(request: pytest.FixtureRequest) -> Parse:
    return request.param()


def libudev_message(block: bytes, *, magic: int = 0xFEEDCAFE, header_size: int = 40,
                    off: int = 40, length: int | None = None) -> bytes:
    length = len(block) if length is None else length
    header = b"libudev\0" + struct.pack(">I", magic) + struct.pack("=III", header_size, off, length)
    return header + bytes(16) + block


def outcome(fn: Parse, data: bytes) -> tuple[str, object]:
    """What a call did, in a form two implementations can be compared on (order included)."""
    try:
        return ("ok", list(fn(data).items()))
    except ValueError as exc:
        return ("ValueError", str(exc))


# --- real messages ---------------------------------------------------------------------

def test_fixtures_cover_both_formats_and_add_change_remove() -> None:
    assert sum(name.startswith("kernel-") for name in MESSAGES) >= 5
    assert sum(name.startswith("libudev-") for name in MESSAGES) >= 3
    actions = {pure.parse_uevent(m)["ACTION"] for m in MESSAGES.values()}
    assert {"add", "change", "remove"} <= actions


def test_kernel_message(parse: Parse) -> None:
    props = parse(MESSAGES["kernel-block-loop0-change"])
    assert props["ACTION"] == "change"
    assert props["DEVPATH"] == "/devices/virtual/block/loop0"
    assert props["SUBSYSTEM"] == "block"
    assert (props["MAJOR"], props["MINOR"], props["DEVNAME"], props["DEVTYPE"]) == ("7", "0", "loop0", "disk")
    assert props["SEQNUM"].isdigit()


def test_kernel_message_synthetic_arguments(parse: Parse) -> None:
    props = parse(MESSAGES["kernel-net-lo-change-args"])
    assert props["SYNTH_UUID"] == "6f2c9f1e-8a41-4b7e-9d3a-0c5e2b7a1d44"
    assert props["SYNTH_ARG_AKRITEST"] == "1"
    assert props["SYNTH_ARG_LABEL"] == "capture"
    assert props["INTERFACE"] == "lo"


def test_kernel_add_and_remove(parse: Parse) -> None:
    added = parse(MESSAGES["kernel-net-veth-add"])
    removed = parse(MESSAGES["kernel-net-veth-remove"])
    assert (added["ACTION"], removed["ACTION"]) == ("add", "remove")
    assert added["DEVPATH"] == removed["DEVPATH"] == "/devices/virtual/net/akri0"
    assert added["INTERFACE"] == "akri0"


def test_libudev_message_carries_udev_properties(parse: Parse) -> None:
    props = parse(MESSAGES["libudev-block-loop0-change"])
    assert props["ACTION"] == "change"
    assert props["DEVPATH"] == "/devices/virtual/block/loop0"
    assert props["DEVNAME"] == "/dev/loop0"  # udev's absolute name, unlike the kernel's "loop0"
    assert props["DEVLINKS"] == "/dev/disk/by-diskseq/1"
    assert props["TAGS"] == ":systemd:"
    assert props["USEC_INITIALIZED"].isdigit()


def test_libudev_and_kernel_messages_of_one_event_agree(parse: Parse) -> None:
    kernel = parse(MESSAGES["kernel-net-lo-change"])
    udev = parse(MESSAGES["libudev-net-lo-change"])
    assert kernel["SEQNUM"] == udev["SEQNUM"]
    assert set(kernel.items()) <= set(udev.items())
    assert {"USEC_INITIALIZED", "UDEV_DATABASE_VERSION"} <= udev.keys() - kernel.keys()


def test_accepts_any_bytes_like(parse: Parse) -> None:
    msg = MESSAGES["libudev-tty-tty1-change"]
    expected = parse(msg)
    assert parse(bytearray(msg)) == expected
    assert parse(memoryview(b"xx" + msg)[2:]) == expected


@pytest.mark.parametrize("bad", ["text", 5, None])
def test_rejects_non_bytes(parse: Parse, bad: object) -> None:
    with pytest.raises(TypeError):
        parse(bad)  # type: ignore[arg-type]


# --- rules of the format ---------------------------------------------------------------

def test_kernel_header_fills_missing_action_and_devpath(parse: Parse) -> None:
    assert parse(b"add@/devices/x\0SUBSYSTEM=foo\0") == {
        "SUBSYSTEM": "foo", "ACTION": "add", "DEVPATH": "/devices/x",
    }
    assert parse(b"bind@/devices/y\0") == {"ACTION": "bind", "DEVPATH": "/devices/y"}


def test_later_duplicate_key_wins(parse: Parse) -> None:
    assert parse(b"add@/d\0K=1\0K=2\0")["K"] == "2"


def test_value_may_be_empty_or_contain_equals_and_at(parse: Parse) -> None:
    props = parse(b"add@/d\0EMPTY=\0EQ=a=b\0AT=x@y\0")
    assert (props["EMPTY"], props["EQ"], props["AT"]) == ("", "a=b", "x@y")


def test_entry_is_cut_at_first_newline_like_libudev(parse: Parse) -> None:
    props = parse(b"add@/d\0DRIVER=usb\n\0MODEL=a\nb=c\0")
    assert props["DRIVER"] == "usb"
    assert props["MODEL"] == "a"


def test_non_utf8_bytes_survive_as_surrogates(parse: Parse) -> None:
    import os

    props = parse(b"add@/devices/\xff\0LABEL=caf\xc3\xa9 \xe9\0")
    assert props["DEVPATH"] == "/devices/\udcff"
    assert props["LABEL"] == "caf\u00e9 \udce9"
    assert os.fsencode(props["LABEL"]) == b"caf\xc3\xa9 \xe9"


def test_libudev_properties_len_bounds_the_block(parse: Parse) -> None:
    block = b"ACTION=add\0DEVPATH=/d\0"
    msg = libudev_message(block + b"IGNORED=1\0", length=len(block))
    assert parse(msg) == {"ACTION": "add", "DEVPATH": "/d"}


def test_libudev_properties_after_a_longer_header(parse: Parse) -> None:
    msg = libudev_message(b"PAD" * 4 + b"ACTION=add\0DEVPATH=/d\0", header_size=44, off=52, length=22)
    assert parse(msg) == {"ACTION": "add", "DEVPATH": "/d"}


MALFORMED = {
    "empty": (b"", "empty uevent"),
    "kernel header unterminated": (b"add@/devices/x", "not NUL-terminated"),
    "kernel header without @": (b"add /devices/x\0A=b\0", "has no '@'"),
    "kernel header empty action": (b"@/devices/x\0", "empty action"),
    "kernel devpath not absolute": (b"add@devices/x\0", "does not start with '/'"),
    "kernel devpath empty": (b"add@\0", "does not start with '/'"),
    "entry without =": (b"add@/d\0JUNK\0", "property 0 has no '='"),
    "entry cut by newline loses =": (b"add@/d\0A=1\0KEY\n=v\0", "property 1 has no '='"),
    "empty entry": (b"add@/d\0A=1\0\0", "property 1 has no '='"),
    "empty key": (b"add@/d\0=v\0", "property 0 has an empty key"),
    "last entry unterminated": (b"add@/d\0A=1\0B=2", "property 1 is not NUL-terminated"),
    "header disagrees with ACTION": (b"add@/d\0ACTION=remove\0", "header says ACTION 'add'"),
    "header disagrees with DEVPATH": (b"add@/d\0DEVPATH=/e\0", "header says DEVPATH '/d'"),
    "libudev header truncated": (b"libudev\0\xfe\xed\xca\xfe", "header truncated: 12 bytes, need 40"),
    "libudev bad magic": (
        libudev_message(b"ACTION=add\0DEVPATH=/d\0", magic=0xCAFEFEED), "bad magic 0xcafefeed",
    ),
    "libudev magic in host order": (
        b"libudev\0" + struct.pack("<I", 0xFEEDCAFE) + bytes(28), "bad magic 0xfecaedfe",
    ),
    "libudev small header_size": (
        libudev_message(b"ACTION=add\0DEVPATH=/d\0", header_size=8), "header_size 8",
    ),
    "libudev off inside header": (libudev_message(b"ACTION=add\0DEVPATH=/d\0", off=12), "properties_off 12"),
    "libudev block past end": (libudev_message(b"ACTION=add\0DEVPATH=/d\0", length=23), "run past the end"),
    "libudev off past end": (libudev_message(b"", off=4096, length=0), "run past the end"),
    "libudev huge len": (libudev_message(b"A=1\0", length=0xFFFFFFFF), "len 4294967295"),
    "libudev no ACTION": (libudev_message(b"DEVPATH=/d\0"), "no ACTION property"),
    "libudev no DEVPATH": (libudev_message(b"ACTION=add\0"), "no DEVPATH property"),
    "libudev block unterminated": (libudev_message(b"ACTION=add\0DEVPATH=/d"), "property 1 is not NUL"),
}


@pytest.mark.parametrize(("data", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_raises_value_error_saying_what(parse: Parse, data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(data)


@needs_compiled
@pytest.mark.parametrize("data", [m for m, _ in MALFORMED.values()], ids=MALFORMED.keys())
def test_twins_raise_identical_errors(data: bytes) -> None:
    assert outcome(compiled.parse_uevent, data) == outcome(pure.parse_uevent, data)
    assert outcome(pure.parse_uevent, data)[0] == "ValueError"


def test_error_message_quotes_at_most_64_bytes(parse: Parse) -> None:
    with pytest.raises(ValueError) as err:
        parse(b"add@/d\0" + b"X" * 1000 + b"\0")
    assert str(err.value).endswith("'...") and len(str(err.value)) < 120


# --- the twins agree on every input ----------------------------------------------------

# bytes that steer the parser: separators, the libudev prefix, a devpath start, UTF-8 junk
SPECIAL = [b"\0", b"=", b"@", b"\n", b"/", b"libudev\0", b"\xfe\xed\xca\xfe", b"\xff", b"\xc3", b"(\0\0\0"]
real_message = st.sampled_from(sorted(MESSAGES.values()))


@st.composite
def truncated(draw: st.DrawFn) -> bytes:
    msg = draw(real_message)
    return msg[: draw(st.integers(0, len(msg)))]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    msg = bytearray(draw(real_message))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(msg)))
        op = draw(st.sampled_from(["replace", "insert", "delete", "u32"]))
        if op == "delete":
            del msg[pos : pos + draw(st.integers(1, 8))]
        elif op == "u32":  # rewrite a header field: magic, header_size, properties_off/len
            field = draw(st.sampled_from([8, 12, 16, 20]))
            if len(msg) >= field + 4:
                msg[field : field + 4] = draw(st.integers(0, 2**32 - 1)).to_bytes(4, "little")
        else:
            piece = draw(st.sampled_from(SPECIAL) | st.binary(min_size=1, max_size=4))
            msg[pos : pos + (len(piece) if op == "replace" else 0)] = piece
    return bytes(msg)


@st.composite
def assembled(draw: st.DrawFn) -> bytes:
    """Messages built from random parts: nearly well-formed, often exactly on an edge."""
    part = st.lists(st.sampled_from(SPECIAL) | st.binary(max_size=6), max_size=4).map(b"".join)
    entries = draw(st.lists(st.tuples(part, part), max_size=6))
    block = b"".join(k + b"=" + v + draw(st.sampled_from([b"\0", b"\0", b""])) for k, v in entries)
    if draw(st.booleans()):
        return draw(part) + b"@" + draw(part) + b"\0" + block
    return libudev_message(
        block,
        header_size=draw(st.sampled_from([40, 0, 44])),
        off=draw(st.sampled_from([40, 44, 0])),
        length=draw(st.integers(0, len(block) + 2)),
    )


any_input = st.binary(max_size=300) | truncated() | mutated() | assembled() | real_message


@needs_compiled
@settings(max_examples=1000, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(any_input)
def test_twins_agree_on_every_input(data: bytes) -> None:
    assert outcome(compiled.parse_uevent, data) == outcome(pure.parse_uevent, data)


# text the format can carry unchanged: no separators, no lone surrogates
safe_key = st.text(
    st.characters(exclude_characters="\0\n=", exclude_categories=["Cs"]), min_size=1, max_size=12
)
safe_value = st.text(st.characters(exclude_characters="\0\n", exclude_categories=["Cs"]), max_size=24)


@settings(max_examples=300, deadline=1000)
@given(props=st.dictionaries(safe_key, safe_value, max_size=8), libudev=st.booleans(),
       action=safe_key.filter(lambda s: "@" not in s), devpath=safe_value.map(lambda s: "/" + s))
def test_well_formed_messages_round_trip(
    props: dict[str, str], libudev: bool, action: str, devpath: str
) -> None:
    props = {**props, "ACTION": action, "DEVPATH": devpath}
    block = b"".join(f"{k}={v}".encode() + b"\0" for k, v in props.items())
    data = libudev_message(block) if libudev else f"{action}@{devpath}".encode() + b"\0" + block
    for fn in [pure.parse_uevent] + ([compiled.parse_uevent] if compiled else []):
        assert fn(data) == props


@pytest.mark.slow
@needs_compiled
def test_neither_twin_hangs_on_hostile_input() -> None:
    """A C loop that never advances cannot be interrupted in-process, so run it in a child."""
    script = textwrap.dedent(
        """
        import random, sys
        from pathlib import Path
        from akri._fast import _uevent, pure
        rng = random.Random(20240611)
        real = [p.read_bytes() for p in sorted(Path(sys.argv[1]).glob("*.bin"))]
        special = [b"\\0", b"=", b"@", b"\\n", b"/", b"libudev\\0", b"\\xff"]
        checked = 0
        for i in range(30000):
            msg = bytearray(rng.choice(real))
            for _ in range(rng.randint(0, 4)):
                pos = rng.randrange(len(msg) + 1)
                piece = rng.choice(special) if rng.random() < 0.7 else rng.randbytes(3)
                msg[pos:pos + rng.randint(0, 3)] = piece
            msg = bytes(msg[: rng.randint(0, len(msg))]) if i % 3 == 0 else bytes(msg)
            for fn in (_uevent.parse_uevent, pure.parse_uevent):
                try:
                    fn(msg)
                except ValueError:
                    pass
            checked += 1
        print(checked)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(FIXTURES)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "30000"
