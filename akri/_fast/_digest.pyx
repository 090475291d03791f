# cython: language_level=3
"""Compiled twin of akri._fast.pure.digest: BLAKE2b (RFC 7693), unkeyed, 3-byte output.

hashlib's blake2b costs an object allocation, a parameter block and a bytes->hex
round-trip per name; an Instance name needs only the first three bytes of h[0]. This is
the RFC's reference algorithm in C integer arithmetic, reading the str's cached UTF-8
buffer directly and writing the six hex characters straight into the result.
"""

from libc.stdint cimport uint8_t, uint64_t


cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object text, Py_ssize_t *size) except NULL
    object PyUnicode_DecodeASCII(const char *s, Py_ssize_t size, const char *errors)


cdef uint64_t IV[8]
IV[:] = [
    0x6A09E667F3BCC908ULL, 0xBB67AE8584CAA73BULL, 0x3C6EF372FE94F82BULL, 0xA54FF53A5F1D36F1ULL,
    0x510E527FADE682D1ULL, 0x9B05688C2B3E6C1FULL, 0x1F83D9ABFB41BD6BULL, 0x5BE0CD19137E2179ULL,
]

# message word schedule; rounds 10 and 11 reuse rows 0 and 1
cdef uint8_t SIGMA[12][16]
SIGMA[0][:] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
SIGMA[1][:] = [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3]
SIGMA[2][:] = [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4]
SIGMA[3][:] = [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8]
SIGMA[4][:] = [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13]
SIGMA[5][:] = [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9]
SIGMA[6][:] = [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11]
SIGMA[7][:] = [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10]
SIGMA[8][:] = [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5]
SIGMA[9][:] = [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0]
SIGMA[10][:] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
SIGMA[11][:] = [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3]

cdef enum:
    BLOCK = 128
    DIGEST_SIZE = 3

# parameter block word 0 for an unkeyed hash: digest length, key length 0, fanout 1, depth 1
cdef uint64_t PARAM0 = 0x01010000ULL | DIGEST_SIZE

cdef const char *HEX = b"0123456789abcdef"


cdef inline uint64_t rotr(uint64_t x, int n) noexcept nogil:
    return (x >> n) | (x << (64 - n))


cdef inline uint64_t load64(const uint8_t *p) noexcept nogil:
    # little-endian by definition (RFC 7693 §2.4), whatever the host order
    return (<uint64_t>p[0] | (<uint64_t>p[1] << 8) | (<uint64_t>p[2] << 16) | (<uint64_t>p[3] << 24)
            | (<uint64_t>p[4] << 32) | (<uint64_t>p[5] << 40) | (<uint64_t>p[6] << 48)
            | (<uint64_t>p[7] << 56))


cdef inline void mix(uint64_t *v, int a, int b, int c, int d, uint64_t x, uint64_t y) noexcept nogil:
    v[a] = v[a] + v[b] + x
    v[d] = rotr(v[d] ^ v[a], 32)
    v[c] = v[c] + v[d]
    v[b] = rotr(v[b] ^ v[c], 24)
    v[a] = v[a] + v[b] + y
    v[d] = rotr(v[d] ^ v[a], 16)
    v[c] = v[c] + v[d]
    v[b] = rotr(v[b] ^ v[c], 63)


cdef void compress(uint64_t *h, const uint8_t *block, uint64_t t, bint last) noexcept nogil:
    # t is the byte counter's low word; its high word stays 0 below 2**64 bytes of input
    cdef uint64_t v[16]
    cdef uint64_t m[16]
    cdef int i
    cdef const uint8_t *s
    for i in range(16):
        m[i] = load64(block + 8 * i)
    for i in range(8):
        v[i] = h[i]
        v[i + 8] = IV[i]
    v[12] ^= t
    if last:
        v[14] = ~v[14]
    for i in range(12):
        s = SIGMA[i]
        mix(v, 0, 4, 8, 12, m[s[0]], m[s[1]])
        mix(v, 1, 5, 9, 13, m[s[2]], m[s[3]])
        mix(v, 2, 6, 10, 14, m[s[4]], m[s[5]])
        mix(v, 3, 7, 11, 15, m[s[6]], m[s[7]])
        mix(v, 0, 5, 10, 15, m[s[8]], m[s[9]])
        mix(v, 1, 6, 11, 12, m[s[10]], m[s[11]])
        mix(v, 2, 7, 8, 13, m[s[12]], m[s[13]])
        mix(v, 3, 4, 9, 14, m[s[14]], m[s[15]])
    for i in range(8):
        h[i] ^= v[i] ^ v[i + 8]


cdef uint64_t blake2b_h0(const uint8_t *data, Py_ssize_t n) noexcept nogil:
    """h[0] after hashing data: its three low bytes are the digest."""
    cdef uint64_t h[8]
    cdef uint8_t last[BLOCK]
    cdef Py_ssize_t pos = 0, rest, i
    for i in range(8):
        h[i] = IV[i]
    h[0] ^= PARAM0
    # every block but the final one (which may be full, or empty for empty input)
    while n - pos > BLOCK:
        compress(h, data + pos, <uint64_t>(pos + BLOCK), False)
        pos += BLOCK
    rest = n - pos
    for i in range(rest):
        last[i] = data[pos + i]
    for i in range(rest, BLOCK):
        last[i] = 0
    compress(h, last, <uint64_t>n, True)
    return h[0]


cdef str _hex(object text):
    cdef Py_ssize_t n
    cdef char out[2 * DIGEST_SIZE]
    cdef int i
    if not isinstance(text, str):
        raise TypeError(f"digest input must be str, not {type(text).__name__}")
    # the str's own cached UTF-8 (no copy for ASCII); raises UnicodeEncodeError on surrogates
    cdef const uint8_t *data = <const uint8_t *>PyUnicode_AsUTF8AndSize(text, &n)
    cdef uint64_t h0 = blake2b_h0(data, n)
    for i in range(DIGEST_SIZE):
        out[2 * i] = HEX[(h0 >> (8 * i + 4)) & 0xF]
        out[2 * i + 1] = HEX[(h0 >> (8 * i)) & 0xF]
    return PyUnicode_DecodeASCII(out, 2 * DIGEST_SIZE, NULL)


def digest_hex(text) -> str:
    """Upstream Akri's device hash: blake2b(text, digest_size=3) in lowercase hex."""
    return _hex(text)


def digest_hex_batch(texts) -> list:
    """`digest_hex` over many inputs at once (an agent renaming every device on a rescan)."""
    return [_hex(t) for t in texts]
