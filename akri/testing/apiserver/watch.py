"""Watch events and subscriptions (the streaming itself is in routes.py)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import orjson

from .objects import Obj
from .resources import ResourceType

Filter = Callable[[Obj], bool] | None


class Event:
    """One committed change. `prev` is the object before it (for selector transitions on watch)."""

    __slots__ = ("_line", "obj", "prev", "rv", "type")

    def __init__(self, type_: str, rv: int, obj: Obj, prev: Obj | None) -> None:
        self.type = type_
        self.rv = rv
        self.obj = obj
        self.prev = prev
        self._line: bytes | None = None

    def line(self, type_: str | None = None) -> bytes:
        """The watch-stream line; serialized once and shared by every watcher."""
        if type_ is not None and type_ != self.type:
            return orjson.dumps({"type": type_, "object": self.obj}) + b"\n"
        if self._line is None:
            self._line = orjson.dumps({"type": self.type, "object": self.obj}) + b"\n"
        return self._line


class Watcher:
    """A subscription of one watch request: matching events are queued until the stream takes them."""

    def __init__(self, rt: ResourceType, namespace: str | None, match: Filter) -> None:
        self.rt = rt
        self.namespace = namespace
        self.match = match
        self.pending: deque[tuple[str, Event]] = deque()
        self.wakeup = asyncio.Event()
        self.closed = False

    def offer(self, event: Event) -> None:
        type_ = self._translate(event)
        if type_ is not None:
            self.pending.append((type_, event))
            self.wakeup.set()

    def _translate(self, event: Event) -> str | None:
        """With a selector, an object moving into / out of the selection is ADDED / DELETED (as the
        real watch cache does); None when the watcher does not see the event at all."""
        if self.namespace is not None and event.obj["metadata"].get("namespace") != self.namespace:
            return None
        match = self.match
        if match is None:
            return event.type
        now = match(event.obj)
        if event.type != "MODIFIED" or event.prev is None:
            return event.type if now else None
        before = match(event.prev)
        if now:
            return "MODIFIED" if before else "ADDED"
        return "DELETED" if before else None

    def take(self) -> list[tuple[str, Event]]:
        out = list(self.pending)
        self.pending.clear()
        self.wakeup.clear()
        return out

    def close(self) -> None:
        self.closed = True
        self.wakeup.set()
