# cython: language_level=3
"""Compiled twin of akri._fast.pure.uevent (the contract and the rules are documented there).

Walks the datagram with memchr instead of building a list of split() pieces, and decodes
each key and value straight from the buffer. Error messages are built with the same
Python code as the twin's, so both raise identical ValueErrors.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.ref cimport PyObject
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memchr, memcmp, memcpy

from akri._fast.pure.uevent import _entry_repr


cdef extern from "Python.h":
    object PyUnicode_DecodeUTF8(const char *s, Py_ssize_t size, const char *errors)


cdef extern from *:
    """
    #include <arpa/inet.h>
    """
    uint32_t ntohl(uint32_t)


cdef enum:
    HEADER_SIZE = 40  # sizeof(struct monitor_netlink_header)

cdef uint32_t LIBUDEV_MAGIC = 0xFEEDCAFE


cdef inline str _decode(const char *p, Py_ssize_t n):
    return PyUnicode_DecodeUTF8(p, n, "surrogateescape")


cdef inline uint32_t _u32(const char *p) noexcept:
    # memcpy: the fields need not be aligned inside the caller's buffer
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef int _parse_properties(const char *p, Py_ssize_t n, dict props) except -1:
    cdef Py_ssize_t pos = 0, index = 0, entry_len, key_len
    cdef const char *entry
    cdef const char *nul
    cdef const char *cut
    cdef const char *eq
    while pos < n:
        entry = p + pos
        nul = <const char *>memchr(entry, 0, n - pos)
        if nul == NULL:
            raise ValueError(
                f"uevent property {index} is not NUL-terminated (truncated message?): "
                f"{_entry_repr(PyBytes_FromStringAndSize(entry, n - pos))}"
            )
        entry_len = nul - entry
        pos += entry_len + 1
        cut = <const char *>memchr(entry, b'\n', entry_len)
        if cut != NULL:
            entry_len = cut - entry
        eq = <const char *>memchr(entry, b'=', entry_len)
        if eq == NULL:
            raise ValueError(
                f"uevent property {index} has no '=': {_entry_repr(PyBytes_FromStringAndSize(entry, entry_len))}"
            )
        key_len = eq - entry
        if key_len == 0:
            raise ValueError(
                f"uevent property {index} has an empty key: "
                f"{_entry_repr(PyBytes_FromStringAndSize(entry, entry_len))}"
            )
        PyDict_SetItem(props, _decode(entry, key_len), _decode(eq + 1, entry_len - key_len - 1))
        index += 1
    return 0


cdef dict _parse_libudev(const char *p, Py_ssize_t n):
    if n < HEADER_SIZE:
        raise ValueError(f"libudev uevent header truncated: {n} bytes, need {HEADER_SIZE}")
    cdef uint32_t magic = ntohl(_u32(p + 8))
    if magic != LIBUDEV_MAGIC:
        raise ValueError(f"libudev uevent has bad magic 0x{magic:08x} (expected 0x{LIBUDEV_MAGIC:08x})")
    cdef uint32_t header_size = _u32(p + 12)
    cdef uint32_t off = _u32(p + 16)
    cdef uint32_t length = _u32(p + 20)
    if header_size < HEADER_SIZE:
        raise ValueError(f"libudev uevent header_size {header_size} is below {HEADER_SIZE}")
    if off < header_size:
        raise ValueError(f"libudev uevent properties_off {off} lies inside the {header_size}-byte header")
    if <uint64_t>off + length > <uint64_t>n:
        raise ValueError(
            f"libudev uevent properties (off {off}, len {length}) run past the end of the {n}-byte message"
        )
    cdef dict props = {}
    _parse_properties(p + off, length, props)
    if PyDict_GetItem(props, "ACTION") == NULL:
        raise ValueError("libudev uevent has no ACTION property")
    if PyDict_GetItem(props, "DEVPATH") == NULL:
        raise ValueError("libudev uevent has no DEVPATH property")
    return props


cdef int _agree(dict props, str key, str value) except -1:
    cdef PyObject *have = PyDict_GetItem(props, key)
    if have == NULL:
        PyDict_SetItem(props, key, value)
    elif <object>have != value:
        raise ValueError(f"kernel uevent header says {key} {value!r} but the property says {<object>have!r}")
    return 0


cdef dict _parse_kernel(const char *p, Py_ssize_t n):
    cdef const char *nul = <const char *>memchr(p, 0, n)
    if nul == NULL:
        raise ValueError("kernel uevent header (ACTION@DEVPATH) is not NUL-terminated")
    cdef Py_ssize_t end = nul - p
    cdef const char *at = <const char *>memchr(p, b'@', end)
    if at == NULL:
        raise ValueError(f"kernel uevent header has no '@': {_entry_repr(PyBytes_FromStringAndSize(p, end))}")
    cdef Py_ssize_t at_pos = at - p
    if at_pos == 0:
        raise ValueError(f"kernel uevent header has an empty action: {_entry_repr(PyBytes_FromStringAndSize(p, end))}")
    if at_pos + 1 >= end or p[at_pos + 1] != b'/':
        raise ValueError(
            f"kernel uevent header devpath does not start with '/': {_entry_repr(PyBytes_FromStringAndSize(p, end))}"
        )
    cdef dict props = {}
    _parse_properties(nul + 1, n - end - 1, props)
    _agree(props, "ACTION", _decode(p, at_pos))
    _agree(props, "DEVPATH", _decode(at + 1, end - at_pos - 1))
    return props


cdef dict _parse(const char *p, Py_ssize_t n):
    if n == 0:
        raise ValueError("empty uevent")
    if n >= 8 and memcmp(p, b"libudev\0", 8) == 0:
        return _parse_libudev(p, n)
    return _parse_kernel(p, n)


def parse_uevent(data) -> dict:
    """Properties of one uevent datagram (kernel or libudev format); ValueError if malformed."""
    cdef Py_buffer view
    if PyBytes_CheckExact(data):
        return _parse(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        return _parse(<const char *>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
