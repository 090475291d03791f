# cython: language_level=3
"""Compiled twin of akri._fast.pure.slots (the contract and the rules are documented there).

Slot states, owners and token bindings live in C int arrays; owner names are interned per
table so the per-slot comparisons in health() and load() are int compares. Error messages
are built with the same f-strings as the twin's.
"""

from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.unicode cimport PyUnicode_Tailmatch

cdef enum:
    FREE_ = 0
    NODE_ = 1
    CONFIG_ = 2
    THIS = 0
    UNKNOWN = -1

FREE = FREE_
NODE = NODE_
CONFIG = CONFIG_
UNKNOWN_HOLDER = "?"


cdef inline Py_ssize_t _canonical_index(str text, Py_ssize_t start):
    """Index from text[start:]; -1 unless canonical ASCII decimal digits (no leading zero)."""
    cdef Py_ssize_t n = len(text), k
    cdef Py_ssize_t value = 0
    cdef Py_UCS4 c
    if start >= n:
        return -1
    if n - start > 1 and text[start] == u"0":
        return -1
    if n - start > 18:  # would overflow; no real capacity is that large
        return -1
    for k in range(start, n):
        c = text[k]
        if c < u"0" or c > u"9":
            return -1
        value = value * 10 + (<int>c - 48)
    return value


cdef int *_resized(int *p, Py_ssize_t n) except NULL:
    cdef void *q = PyMem_Realloc(p, (n if n > 0 else 1) * sizeof(int))
    if q == NULL:
        raise MemoryError()
    return <int *>q


cdef class SlotTable:
    """Slots of one Instance as seen by one node, plus the kubelet ids bound to them."""

    cdef str _instance
    cdef str _node
    cdef str _prefix
    cdef Py_ssize_t _capacity
    cdef Py_ssize_t _alloc
    cdef int *_state
    cdef int *_owner
    cdef int *_tok
    cdef int *_back
    cdef int *_seen_state
    cdef int *_seen_owner
    cdef list _vdev
    cdef list _names
    cdef dict _name_ids

    def __cinit__(self):
        self._state = NULL
        self._owner = NULL
        self._tok = NULL
        self._back = NULL
        self._seen_state = NULL
        self._seen_owner = NULL
        self._alloc = 0

    def __init__(self, instance, node, capacity):
        if not isinstance(instance, str) or not instance:
            raise ValueError("instance: must be a non-empty string")
        if not isinstance(node, str) or not node:
            raise ValueError("node: must be a non-empty string")
        if not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"capacity: must be an integer >= 0, got {capacity!r}")
        self._instance = instance
        self._node = node
        self._prefix = instance + "-"
        self._capacity = 0
        self._vdev = []
        self._names = [node]
        self._name_ids = {node: THIS}
        self._grow(capacity)

    def __dealloc__(self):
        PyMem_Free(self._state)
        PyMem_Free(self._owner)
        PyMem_Free(self._tok)
        PyMem_Free(self._back)
        PyMem_Free(self._seen_state)
        PyMem_Free(self._seen_owner)

    cdef int _reserve(self, Py_ssize_t n) except -1:
        if n <= self._alloc:
            return 0
        self._state = _resized(self._state, n)
        self._owner = _resized(self._owner, n)
        self._tok = _resized(self._tok, n)
        self._back = _resized(self._back, n)
        self._seen_state = _resized(self._seen_state, n)
        self._seen_owner = _resized(self._seen_owner, n)
        self._alloc = n
        return 0

    cdef int _grow(self, Py_ssize_t capacity) except -1:
        cdef Py_ssize_t i
        self._reserve(capacity)
        for i in range(self._capacity, capacity):
            self._state[i] = FREE_
            self._owner[i] = UNKNOWN
            self._tok[i] = -1
            self._back[i] = -1
            self._vdev.append(None)
        self._capacity = capacity
        return 0

    # --- identity -------------------------------------------------------------------------
    @property
    def instance(self):
        return self._instance

    @property
    def node(self):
        return self._node

    @property
    def capacity(self):
        return self._capacity

    def slot_id(self, Py_ssize_t i):
        return self._prefix + str(i)

    cdef inline int _check(self, Py_ssize_t i) except -1:
        if i < 0 or i >= self._capacity:
            raise IndexError(f"slot {i} out of range (capacity {self._capacity})")
        return 0

    cdef int _intern(self, str name) except -2:
        ident = self._name_ids.get(name)
        if ident is None:
            ident = len(self._names)
            self._names.append(name)
            self._name_ids[name] = ident
        return ident

    cdef inline bint _mine(self, Py_ssize_t i) noexcept:
        return self._state[i] != FREE_ and self._owner[i] == THIS

    cdef inline bint _available(self, Py_ssize_t i) noexcept:
        # free, or an instance-level slot of ours that backs no kubelet id
        return self._state[i] == FREE_ or (
            self._state[i] == NODE_ and self._owner[i] == THIS and self._back[i] < 0)

    # --- reading --------------------------------------------------------------------------
    def state(self, Py_ssize_t i):
        self._check(i)
        return self._state[i]

    cdef str _value(self, Py_ssize_t i):
        cdef int st = self._state[i]
        cdef int owner
        if st == FREE_:
            return ""
        owner = self._owner[i]
        name = UNKNOWN_HOLDER if owner == UNKNOWN else self._names[owner]
        if st == NODE_:
            return name
        return f"C:{self._vdev[i]}:{name}"

    def value(self, Py_ssize_t i):
        self._check(i)
        return self._value(i)

    def owned_by_me(self, Py_ssize_t i):
        self._check(i)
        return self._mine(i)

    cdef Py_ssize_t _first_free(self) noexcept:
        cdef Py_ssize_t i
        for i in range(self._capacity):
            if self._state[i] == FREE_:
                return i
        return -1

    def first_free(self):
        return self._first_free()

    def free_count(self):
        cdef Py_ssize_t i, n = 0
        for i in range(self._capacity):
            if self._state[i] == FREE_:
                n += 1
        return n

    def free_slots(self):
        cdef Py_ssize_t i
        return [i for i in range(self._capacity) if self._state[i] == FREE_]

    def owned(self):
        cdef Py_ssize_t i
        cdef dict out = {}
        for i in range(self._capacity):
            if self._mine(i):
                out[self._prefix + str(i)] = self._value(i)
        return out

    def node_slots(self):
        cdef Py_ssize_t i
        return [i for i in range(self._capacity) if self._state[i] == NODE_ and self._owner[i] == THIS]

    def config_slots(self):
        cdef Py_ssize_t i
        cdef dict out = {}
        for i in range(self._capacity):
            if self._state[i] == CONFIG_ and self._owner[i] == THIS:
                out[self._vdev[i]] = i
        return out

    def unbacked(self):
        cdef Py_ssize_t i
        return [i for i in range(self._capacity)
                if self._state[i] == NODE_ and self._owner[i] == THIS and self._back[i] < 0]

    # --- tokens (kubelet ids) -------------------------------------------------------------
    def binding(self, Py_ssize_t token):
        self._check(token)
        return self._tok[token]

    def token_of(self, Py_ssize_t slot):
        self._check(slot)
        return self._back[slot]

    def bound_tokens(self):
        cdef Py_ssize_t t
        return [t for t in range(self._capacity) if self._tok[t] >= 0]

    def bind(self, Py_ssize_t token, Py_ssize_t slot):
        self._check(token)
        self._check(slot)
        if self._state[slot] != NODE_ or self._owner[slot] != THIS:
            raise ValueError(f"slot {slot} is not held by {self._node} at instance level")
        if self._back[slot] >= 0 and self._back[slot] != token:
            raise ValueError(f"slot {slot} already backs token {self._back[slot]}")
        cdef int old = self._tok[token]
        if old >= 0:
            self._back[old] = -1
        self._tok[token] = <int>slot
        self._back[slot] = <int>token

    def unbind(self, Py_ssize_t token):
        self._check(token)
        cdef int slot = self._tok[token]
        if slot >= 0:
            self._back[slot] = -1
            self._tok[token] = -1
        return slot

    # --- local changes --------------------------------------------------------------------
    def claim(self, Py_ssize_t i):
        self._check(i)
        cdef int st = self._state[i]
        if st == FREE_ or (st == NODE_ and self._owner[i] == THIS):
            self._state[i] = NODE_
            self._owner[i] = THIS
            self._vdev[i] = None
            return True
        return False

    def claim_config_at(self, Py_ssize_t i, str vdev):
        self._check(i)
        if self._state[i] != FREE_:
            return False
        self._state[i] = CONFIG_
        self._owner[i] = THIS
        self._vdev[i] = vdev
        return True

    def claim_config(self, str vdev):
        cdef Py_ssize_t i = self._first_free()
        if i >= 0:
            self._state[i] = CONFIG_
            self._owner[i] = THIS
            self._vdev[i] = vdev
        return i

    def release(self, Py_ssize_t i):
        self._check(i)
        cdef int tok = self._back[i]
        if tok >= 0:
            self._tok[tok] = -1
            self._back[i] = -1
        self._state[i] = FREE_
        self._owner[i] = UNKNOWN
        self._vdev[i] = None

    def mark_taken(self, Py_ssize_t i):
        self._check(i)
        if self._mine(i):
            raise ValueError(f"slot {i} is held by this node")
        if self._state[i] == FREE_:
            self._state[i] = NODE_
            self._owner[i] = UNKNOWN
            self._vdev[i] = None

    # --- health ---------------------------------------------------------------------------
    def health(self):
        cdef Py_ssize_t cap = self._capacity, i, t
        cdef Py_ssize_t available = 0
        cdef int pass_mine
        cdef bint mine
        cdef list out = [False] * cap
        for i in range(cap):
            if self._available(i):
                available += 1
        for t in range(cap):
            if self._tok[t] >= 0:
                out[t] = True
            elif self._available(t):
                out[t] = True
                available -= 1
        if available > 0:
            for pass_mine in range(1, -1, -1):
                for t in range(cap):
                    if available == 0:
                        break
                    if out[t] is True:
                        continue
                    mine = self._state[t] == NODE_ and self._owner[t] == THIS
                    if mine == pass_mine:
                        out[t] = True
                        available -= 1
        return out

    # --- bulk -----------------------------------------------------------------------------
    def load(self, usage, released=()):
        cdef Py_ssize_t cap = self._capacity, plen = len(self._prefix), i
        cdef int s_st, s_own
        cdef list problems = []
        cdef list conflicts = []
        cdef list seen_vdev = [None] * cap
        cdef str prefix = self._prefix
        cdef str skey
        cdef str sval
        self._names = [self._node]
        self._name_ids = {self._node: THIS}
        for i in range(cap):
            self._seen_state[i] = FREE_
            self._seen_owner[i] = UNKNOWN
        for key, value in usage.items():
            if type(key) is not str or PyUnicode_Tailmatch(key, prefix, 0, plen, -1) != 1:
                problems.append(f"deviceUsage key {key!r}: not a slot of instance {self._instance!r}")
                continue
            skey = <str>key
            i = _canonical_index(skey, plen)
            if i < 0:
                problems.append(f"deviceUsage key {key!r}: not a slot of instance {self._instance!r}")
                continue
            if i >= cap:
                problems.append(f"deviceUsage key {key!r}: slot {i} is out of range (capacity {cap})")
                continue
            if not isinstance(value, str):
                self._invalid(problems, key, value, i)
                continue
            sval = <str>value
            if len(sval) == 0:
                self._seen_state[i] = FREE_
                self._seen_owner[i] = UNKNOWN
                seen_vdev[i] = None
            elif sval.find(":") < 0:
                self._seen_state[i] = NODE_
                self._seen_owner[i] = self._intern(sval)
                seen_vdev[i] = None
            else:
                parts = sval.split(":")
                if len(parts) != 3 or parts[0] != "C" or not parts[1] or not parts[2]:
                    self._invalid(problems, key, value, i)
                    seen_vdev[i] = None
                    continue
                self._seen_state[i] = CONFIG_
                self._seen_owner[i] = self._intern(parts[2])
                seen_vdev[i] = parts[1]
        for i in range(cap):
            s_st = self._seen_state[i]
            s_own = self._seen_owner[i]
            if self._mine(i):
                if not (s_st == self._state[i] and s_own == THIS and seen_vdev[i] == self._vdev[i]):
                    conflicts.append(i)
                continue
            if s_st != FREE_ and s_own == THIS and i in released:
                s_st = FREE_
                s_own = UNKNOWN
                seen_vdev[i] = None
            self._state[i] = s_st
            self._owner[i] = s_own
            self._vdev[i] = seen_vdev[i]
        self._adopt()
        return problems, conflicts

    cdef int _invalid(self, list problems, key, value, Py_ssize_t i) except -1:
        problems.append(f"deviceUsage[{key!r}] = {value!r}: invalid usage "
                        "(expected '', '<node>' or 'C:<vdev>:<node>')")
        self._seen_state[i] = NODE_
        self._seen_owner[i] = self._intern(str(value))
        return 0

    cdef void _adopt(self) noexcept:
        cdef Py_ssize_t cap = self._capacity, s, u
        cdef Py_ssize_t t
        for s in range(cap):
            if self._state[s] == NODE_ and self._owner[s] == THIS and self._back[s] < 0:
                t = s if self._tok[s] < 0 else -1
                if t < 0:
                    for u in range(cap):
                        if self._tok[u] < 0:
                            t = u
                            break
                if t >= 0:
                    self._tok[t] = <int>s
                    self._back[s] = <int>t

    def resize(self, capacity):
        if not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"capacity: must be an integer >= 0, got {capacity!r}")
        cdef Py_ssize_t new = capacity, old = self._capacity, i, t
        cdef int s
        if new >= old:
            self._grow(new)
            return []
        dropped = [i for i in range(new, old) if self._mine(i)]
        for t in range(old):
            s = self._tok[t]
            if s >= 0 and (t >= new or s >= new):
                self._tok[t] = -1
                self._back[s] = -1
        del self._vdev[new:]
        self._capacity = new
        self._adopt()
        return dropped

    def __repr__(self):
        vals = [self._value(i) for i in range(self._capacity)]
        toks = [self._tok[i] for i in range(self._capacity)]
        return f"SlotTable({self._instance!r}, node={self._node!r}, slots={vals}, tokens={toks})"
