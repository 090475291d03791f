"""One node's view of one Instance's slots (pure-Python twin of `akri._fast._slots`).

An Instance with `capacity` N has N slots `<instance>-<i>`; `spec.deviceUsage` says who holds
each one: absent or `""` = free, `"<node>"` = an instance-level allocation on that node,
`"C:<vdev>:<node>"` = a configuration-level allocation (spec §3.1).

The node's instance-level device plugin advertises N kubelet device ids ("tokens")
`<instance>-<i>`. Normally token i is backed by slot i, but the table keeps the two apart: when
the kubelet hands this node token i after another node won slot i in a race, the plugin backs
token i with another free slot j instead of failing the pod (`bind(i, j)`). Slots are
interchangeable shares of one device, so only the count matters for correctness; the binding
just remembers which key this node wrote for which kubelet id.

Rules kept here so both twins implement them identically:

* `load()` rebuilds the whole vector from a deviceUsage map (absent = free), except that slots
  this node holds locally are *sticky*: a map that disagrees (a watch event older than our own
  write, or the controller wiping a dead node's claims) is reported as a conflict for the
  plugin to verify with the store, never applied silently. Slots the map says this node holds
  but the table does not (agent restart) are adopted, and instance-level ones get a token.
* `health()` is per token: a bound token is Healthy (the kubelet has it), and among the
  unbound tokens exactly as many as there are slots this node could still take are Healthy,
  preferring tokens whose own slot is free. Without aliases that is spec §3.2: Healthy iff the
  slot is free or held by this node; configuration-level use and other nodes are Unhealthy.

State is kept as small ints (FREE/NODE/CONFIG) with owners interned per table (0 = this
node, -1 = some other node we lost a race to).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

FREE = 0
NODE = 1
CONFIG = 2

_THIS = 0
_UNKNOWN = -1
# shown as the value of a slot lost to a race before the winner's write was seen
UNKNOWN_HOLDER = "?"


def _canonical_index(text: str) -> int:
    """Slot index from the text after `<instance>-`; -1 unless canonical decimal digits."""
    if not text or not text.isascii() or not text.isdigit():
        return -1
    if len(text) > 1 and text[0] == "0":
        return -1
    return int(text)


class SlotTable:
    """Slots of one Instance as seen by one node, plus the kubelet ids bound to them."""

    __slots__ = (
        "_back",
        "_capacity",
        "_instance",
        "_name_ids",
        "_names",
        "_node",
        "_owner",
        "_prefix",
        "_state",
        "_tok",
        "_vdev",
    )

    def __init__(self, instance: str, node: str, capacity: int) -> None:
        if not isinstance(instance, str) or not instance:
            raise ValueError("instance: must be a non-empty string")
        if not isinstance(node, str) or not node:
            raise ValueError("node: must be a non-empty string")
        if not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"capacity: must be an integer >= 0, got {capacity!r}")
        self._instance = instance
        self._node = node
        self._prefix = instance + "-"
        self._capacity = capacity
        self._state = [FREE] * capacity
        self._owner = [_UNKNOWN] * capacity
        self._vdev: list[str | None] = [None] * capacity
        self._tok = [-1] * capacity  # token -> slot backing it
        self._back = [-1] * capacity  # slot -> token it backs
        self._names = [node]
        self._name_ids = {node: _THIS}

    # --- identity -------------------------------------------------------------------------
    @property
    def instance(self) -> str:
        return self._instance

    @property
    def node(self) -> str:
        return self._node

    @property
    def capacity(self) -> int:
        return self._capacity

    def slot_id(self, i: int) -> str:
        """`<instance>-<i>`: the deviceUsage key of slot i and the kubelet id of token i."""
        return self._prefix + str(i)

    def _check(self, i: int) -> None:
        if not 0 <= i < self._capacity:
            raise IndexError(f"slot {i} out of range (capacity {self._capacity})")

    def _intern(self, name: str) -> int:
        ident = self._name_ids.get(name)
        if ident is None:
            ident = len(self._names)
            self._names.append(name)
            self._name_ids[name] = ident
        return ident

    # --- reading --------------------------------------------------------------------------
    def state(self, i: int) -> int:
        self._check(i)
        return self._state[i]

    def value(self, i: int) -> str:
        """The deviceUsage value slot i has in this table."""
        self._check(i)
        st = self._state[i]
        if st == FREE:
            return ""
        owner = self._owner[i]
        name = UNKNOWN_HOLDER if owner == _UNKNOWN else self._names[owner]
        if st == NODE:
            return name
        return f"C:{self._vdev[i]}:{name}"

    def owned_by_me(self, i: int) -> bool:
        self._check(i)
        return self._state[i] != FREE and self._owner[i] == _THIS

    def first_free(self) -> int:
        for i in range(self._capacity):
            if self._state[i] == FREE:
                return i
        return -1

    def free_count(self) -> int:
        n = 0
        for st in self._state:
            if st == FREE:
                n += 1
        return n

    def free_slots(self) -> list[int]:
        return [i for i in range(self._capacity) if self._state[i] == FREE]

    def owned(self) -> dict[str, str]:
        """slot id -> value for every slot this node holds (what its claims amount to)."""
        return {
            self._prefix + str(i): self.value(i)
            for i in range(self._capacity)
            if self._state[i] != FREE and self._owner[i] == _THIS
        }

    def node_slots(self) -> list[int]:
        """Slots held by this node at instance level."""
        return [i for i in range(self._capacity) if self._state[i] == NODE and self._owner[i] == _THIS]

    def config_slots(self) -> dict[str, int]:
        """vdev -> slot for this node's configuration-level slots."""
        return {
            self._vdev[i]: i
            for i in range(self._capacity)
            if self._state[i] == CONFIG and self._owner[i] == _THIS
        }

    def unbacked(self) -> list[int]:
        """Instance-level slots this node holds that back no kubelet id."""
        return [
            i
            for i in range(self._capacity)
            if self._state[i] == NODE and self._owner[i] == _THIS and self._back[i] < 0
        ]

    # --- tokens (kubelet ids) -------------------------------------------------------------
    def binding(self, token: int) -> int:
        """Slot backing kubelet id `token`, or -1."""
        self._check(token)
        return self._tok[token]

    def token_of(self, slot: int) -> int:
        self._check(slot)
        return self._back[slot]

    def bound_tokens(self) -> list[int]:
        return [t for t in range(self._capacity) if self._tok[t] >= 0]

    def bind(self, token: int, slot: int) -> None:
        """Record that kubelet id `token` is backed by `slot` (which this node must hold)."""
        self._check(token)
        self._check(slot)
        if self._state[slot] != NODE or self._owner[slot] != _THIS:
            raise ValueError(f"slot {slot} is not held by {self._node} at instance level")
        if self._back[slot] >= 0 and self._back[slot] != token:
            raise ValueError(f"slot {slot} already backs token {self._back[slot]}")
        old = self._tok[token]
        if old >= 0:
            self._back[old] = -1
        self._tok[token] = slot
        self._back[slot] = token

    def unbind(self, token: int) -> int:
        """Forget kubelet id `token`; returns the slot that backed it (still held) or -1."""
        self._check(token)
        slot = self._tok[token]
        if slot >= 0:
            self._back[slot] = -1
            self._tok[token] = -1
        return slot

    # --- local changes --------------------------------------------------------------------
    def claim(self, i: int) -> bool:
        """Take slot i for an instance-level use on this node: allowed if free or already ours."""
        self._check(i)
        st = self._state[i]
        if st == FREE or (st == NODE and self._owner[i] == _THIS):
            self._state[i] = NODE
            self._owner[i] = _THIS
            self._vdev[i] = None
            return True
        return False

    def claim_config_at(self, i: int, vdev: str) -> bool:
        """Take free slot i for configuration-level virtual device `vdev` on this node."""
        self._check(i)
        if self._state[i] != FREE:
            return False
        self._state[i] = CONFIG
        self._owner[i] = _THIS
        self._vdev[i] = vdev
        return True

    def claim_config(self, vdev: str) -> int:
        """Take the first free slot for `vdev`; its index, or -1 when none is free."""
        i = self.first_free()
        if i >= 0:
            self.claim_config_at(i, vdev)
        return i

    def release(self, i: int) -> None:
        """Slot i is free again (and backs no kubelet id any more)."""
        self._check(i)
        tok = self._back[i]
        if tok >= 0:
            self._tok[tok] = -1
            self._back[i] = -1
        self._state[i] = FREE
        self._owner[i] = _UNKNOWN
        self._vdev[i] = None

    def mark_taken(self, i: int) -> None:
        """Another node won slot i (a lost claim) before we saw its write."""
        self._check(i)
        if self._state[i] != FREE and self._owner[i] == _THIS:
            raise ValueError(f"slot {i} is held by this node")
        if self._state[i] == FREE:
            self._state[i] = NODE
            self._owner[i] = _UNKNOWN
            self._vdev[i] = None

    # --- health ---------------------------------------------------------------------------
    def health(self) -> list[bool]:
        """Per kubelet id: True = Healthy. See the module docstring for the rule."""
        cap = self._capacity
        state, owner, tok, back = self._state, self._owner, self._tok, self._back
        out = [False] * cap
        available = 0
        for i in range(cap):
            st = state[i]
            if st == FREE or (st == NODE and owner[i] == _THIS and back[i] < 0):
                available += 1
        for t in range(cap):
            if tok[t] >= 0:
                out[t] = True
            else:
                st = state[t]
                if st == FREE or (st == NODE and owner[t] == _THIS and back[t] < 0):
                    out[t] = True
                    available -= 1
        if available > 0:  # aliases: some free slots have their own id bound elsewhere
            for pass_mine in (True, False):
                for t in range(cap):
                    if available == 0:
                        break
                    if out[t]:
                        continue
                    mine = state[t] == NODE and owner[t] == _THIS
                    if mine == pass_mine:
                        out[t] = True
                        available -= 1
        return out

    # --- bulk -----------------------------------------------------------------------------
    def _parse_value(self, value: object) -> tuple[int, int, str | None] | None:
        """(state, owner id, vdev) for a deviceUsage value, or None when it is invalid."""
        if not isinstance(value, str):
            return None
        if value == "":
            return (FREE, _UNKNOWN, None)
        if ":" not in value:
            return (NODE, self._intern(value), None)
        parts = value.split(":")
        if len(parts) != 3 or parts[0] != "C" or not parts[1] or not parts[2]:
            return None
        return (CONFIG, self._intern(parts[2]), parts[1])

    def load(self, usage: Mapping[str, str], released: Collection[int] = ()) -> tuple[list[str], list[int]]:
        """Rebuild from a deviceUsage map; returns (problems, conflicting slots).

        `released` are slots this node freed recently: a map still showing them as ours is
        older than our release, so they count as free. Invalid values keep their slot away
        from this node (it shows as held by the raw value); invalid keys are skipped.
        """
        cap = self._capacity
        prefix = self._prefix
        plen = len(prefix)
        # interned names are rebuilt from scratch; only this node (0) survives
        self._names = [self._node]
        self._name_ids = {self._node: _THIS}
        problems: list[str] = []
        seen_state = [FREE] * cap
        seen_owner = [_UNKNOWN] * cap
        seen_vdev: list[str | None] = [None] * cap
        for key, value in usage.items():
            if not isinstance(key, str) or not key.startswith(prefix):
                problems.append(f"deviceUsage key {key!r}: not a slot of instance {self._instance!r}")
                continue
            i = _canonical_index(key[plen:])
            if i < 0:
                problems.append(f"deviceUsage key {key!r}: not a slot of instance {self._instance!r}")
                continue
            if i >= cap:
                problems.append(f"deviceUsage key {key!r}: slot {i} is out of range (capacity {cap})")
                continue
            parsed = self._parse_value(value)
            if parsed is None:
                problems.append(
                    f"deviceUsage[{key!r}] = {value!r}: invalid usage "
                    "(expected '', '<node>' or 'C:<vdev>:<node>')"
                )
                parsed = (NODE, self._intern(str(value)), None)
            seen_state[i], seen_owner[i], seen_vdev[i] = parsed
        conflicts: list[int] = []
        state, owner, vdev = self._state, self._owner, self._vdev
        for i in range(cap):
            s_st, s_own, s_vd = seen_state[i], seen_owner[i], seen_vdev[i]
            if state[i] != FREE and owner[i] == _THIS:  # ours locally: sticky
                if not (s_st == state[i] and s_own == _THIS and s_vd == vdev[i]):
                    conflicts.append(i)
                continue
            if s_st != FREE and s_own == _THIS and i in released:
                s_st, s_own, s_vd = FREE, _UNKNOWN, None
            state[i], owner[i], vdev[i] = s_st, s_own, s_vd
        self._adopt()
        return problems, conflicts

    def _adopt(self) -> None:
        """Give every instance-level slot of ours that backs no id a kubelet id."""
        cap = self._capacity
        state, owner, tok, back = self._state, self._owner, self._tok, self._back
        for s in range(cap):
            if state[s] == NODE and owner[s] == _THIS and back[s] < 0:
                t = s if tok[s] < 0 else -1
                if t < 0:
                    for u in range(cap):
                        if tok[u] < 0:
                            t = u
                            break
                if t >= 0:  # always found: bound ids never outnumber our slots
                    tok[t] = s
                    back[s] = t

    def resize(self, capacity: int) -> list[int]:
        """Change the slot count; returns the slots this node held beyond the new end."""
        if not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"capacity: must be an integer >= 0, got {capacity!r}")
        old = self._capacity
        if capacity >= old:
            grow = capacity - old
            self._state.extend([FREE] * grow)
            self._owner.extend([_UNKNOWN] * grow)
            self._vdev.extend([None] * grow)
            self._tok.extend([-1] * grow)
            self._back.extend([-1] * grow)
            self._capacity = capacity
            return []
        dropped = [i for i in range(capacity, old) if self._state[i] != FREE and self._owner[i] == _THIS]
        for t in range(old):  # ids or slots past the end lose their binding
            s = self._tok[t]
            if s >= 0 and (t >= capacity or s >= capacity):
                self._tok[t] = -1
                self._back[s] = -1
        del self._state[capacity:], self._owner[capacity:], self._vdev[capacity:]
        del self._tok[capacity:], self._back[capacity:]
        self._capacity = capacity
        self._adopt()
        return dropped

    def __repr__(self) -> str:
        vals = [self.value(i) for i in range(self._capacity)]
        return f"SlotTable({self._instance!r}, node={self._node!r}, slots={vals}, tokens={self._tok})"
