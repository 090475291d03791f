"""A small metrics registry and the Prometheus text exposition format 0.0.4.

Why not prometheus_client: on the agent's 40 MiB budget it costs about 4 MiB of RSS for a handful
of metrics. This module covers what the agent and the controller use: Counter, Gauge and
Histogram with labelled children (`.labels(...)`, `.remove(...)`), collectors that compute
families at scrape time, and the `process_*` series read from /proc when scraped.

No locks: every metric is touched from the one asyncio event loop of its process (and the
scrape runs on that loop too), so an update never interleaves with a render.

Format (https://prometheus.io/docs/instrumenting/exposition_formats/): `# HELP` and `# TYPE`
per family, counters carry the `_total` suffix (on HELP/TYPE too, as prometheus_client writes
them), histograms `_bucket{le=...}` (cumulative, ending in `+Inf`), `_count` and `_sum`. No
`_created` series. Label values escape `\\`, `"` and newline; HELP text `\\` and newline.
"""

from __future__ import annotations

import math
import os
import re
import sys
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

__all__ = [
    "CONTENT_TYPE",
    "Collector",
    "Counter",
    "Family",
    "Gauge",
    "Histogram",
    "PlatformCollector",
    "ProcessCollector",
    "Registry",
    "format_value",
    "with_process_metrics",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_RESERVED_LABELS = ("le",)  # histograms add it themselves

LabelPairs = tuple[tuple[str, str], ...]


# --- text format ------------------------------------------------------------------------------

def format_value(value: float) -> str:
    """A sample value or bound as Prometheus (Go's ParseFloat) reads it; `repr` of the float
    otherwise, as prometheus_client writes it (so `le="1.0"`, as /metrics has always shown)."""
    value = float(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(value)


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label_text(labels: LabelPairs) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape_label_value(value)}"' for name, value in labels) + "}"


# --- families (what collectors yield) -----------------------------------------------------------

@dataclass(slots=True)
class Family:
    """One metric family as exposed: its samples are (suffix, labels, value), where `suffix` is
    appended to `name` ("" for gauges, "_total" for counters, "_bucket"/"_count"/"_sum")."""

    name: str
    help: str
    type: str  # "counter", "gauge" or "histogram"
    labelnames: tuple[str, ...] = ()
    samples: list[tuple[str, LabelPairs, float]] = field(default_factory=list)

    def add(self, labelvalues: Sequence[str], value: float, suffix: str = "") -> None:
        """Add one sample; `labelvalues` in the order of `labelnames`."""
        if len(labelvalues) != len(self.labelnames):
            raise ValueError(f"metric {self.name}: {len(labelvalues)} label values for labels "
                             f"{list(self.labelnames)}")
        self.samples.append((suffix, tuple(zip(self.labelnames, map(str, labelvalues), strict=True)),
                             float(value)))

    @classmethod
    def gauge(cls, name: str, documentation: str, labelnames: Iterable[str] = ()) -> Family:
        """An empty gauge family, for collectors that compute values at scrape time."""
        return cls(name, documentation, "gauge", _check_names(name, labelnames))

    def render(self, out: list[str]) -> None:
        exposed = self.name + "_total" if self.type == "counter" else self.name
        out.append(f"# HELP {exposed} {_escape_help(self.help)}\n")
        out.append(f"# TYPE {exposed} {self.type}\n")
        for suffix, labels, value in self.samples:
            out.append(f"{self.name}{suffix}{_label_text(labels)} {format_value(value)}\n")


class Collector(Protocol):
    """Anything a Registry can render: yields families when scraped."""

    def collect(self) -> Iterable[Family]: ...


def _check_names(name: str, labelnames: Iterable[str]) -> tuple[str, ...]:
    if not _METRIC_NAME.fullmatch(name):
        raise ValueError(f"metric name {name!r}: not a valid Prometheus metric name")
    names = tuple(labelnames)
    for label in names:
        if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
            raise ValueError(f"metric {name}: label name {label!r} is not valid")
        if label in _RESERVED_LABELS:
            raise ValueError(f"metric {name}: label name {label!r} is reserved")
    if len(set(names)) != len(names):
        raise ValueError(f"metric {name}: duplicate label names {list(names)}")
    return names


# --- metrics with labelled children ---------------------------------------------------------------

Child = TypeVar("Child")


class _Metric(Generic[Child]):
    """Children per label values; an unlabelled metric has one child, created up front (so it
    shows as 0 before its first update, as in prometheus_client)."""

    type = ""

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (),
                 registry: Registry | None = None) -> None:
        self.labelnames = _check_names(name, labelnames)
        self.name = name
        self.documentation = documentation
        self._children: dict[tuple[str, ...], Child] = {}
        if not self.labelnames:
            self._children[()] = self._new_child()
        if registry is not None:
            registry.register(self)

    def _new_child(self) -> Child:
        raise NotImplementedError

    def _key(self, labelvalues: Sequence[object]) -> tuple[str, ...]:
        if len(labelvalues) != len(self.labelnames):
            raise ValueError(f"metric {self.name}: expected label values for {list(self.labelnames)}, "
                             f"got {len(labelvalues)}")
        return tuple(str(v) for v in labelvalues)

    def labels(self, *labelvalues: object) -> Child:
        """The child for these label values (in the order of `labelnames`), created at first use."""
        key = self._key(labelvalues)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new_child()
        return child

    def remove(self, *labelvalues: object) -> None:
        """Forget one child: its series disappear from the exposition (no error if absent)."""
        if self.labelnames:
            self._children.pop(self._key(labelvalues), None)

    def clear(self) -> None:
        """Forget every child of a labelled metric."""
        if self.labelnames:
            self._children.clear()

    def _pairs(self, key: tuple[str, ...]) -> LabelPairs:
        return tuple(zip(self.labelnames, key, strict=True))

    def collect(self) -> Iterable[Family]:
        family = Family(self.name, self.documentation, self.type, self.labelnames)
        for key, child in self._children.items():
            self._samples(family, self._pairs(key), child)
        return (family,)

    def _samples(self, family: Family, labels: LabelPairs, child: Child) -> None:
        raise NotImplementedError


class CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError(f"a counter only goes up: inc({amount})")
        self.value += amount


class Counter(_Metric[CounterChild]):
    """A monotonic counter. `name` without `_total`: the exposition adds it."""

    type = "counter"

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (),
                 registry: Registry | None = None) -> None:
        name = name.removesuffix("_total")
        super().__init__(name, documentation, labelnames, registry)

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def inc(self, amount: float = 1) -> None:
        self.labels().inc(amount)

    def _samples(self, family: Family, labels: LabelPairs, child: CounterChild) -> None:
        family.samples.append(("_total", labels, child.value))


class GaugeChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount


class Gauge(_Metric[GaugeChild]):
    type = "gauge"

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def set(self, value: float) -> None:
        self.labels().set(value)

    def inc(self, amount: float = 1) -> None:
        self.labels().inc(amount)

    def dec(self, amount: float = 1) -> None:
        self.labels().dec(amount)

    def _samples(self, family: Family, labels: LabelPairs, child: GaugeChild) -> None:
        family.samples.append(("", labels, child.value))


class HistogramChild:
    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * len(bounds)  # per bucket, not cumulative; the last bound is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # bucket i counts bounds[i-1] < value <= bounds[i]; NaN lands in +Inf, as in Go's client
        self.counts[bisect_left(self._bounds, value) if not math.isnan(value) else -1] += 1
        self.sum += value


class Histogram(_Metric[HistogramChild]):
    type = "histogram"
    DEFAULT_BUCKETS = (.005, .01, .025, .05, .075, .1, .25, .5, .75, 1.0, 2.5, 5.0, 7.5, 10.0, math.inf)

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (),
                 registry: Registry | None = None, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        bounds = [float(b) for b in buckets]
        if any(math.isnan(b) for b in bounds) or bounds != sorted(set(bounds)):
            raise ValueError(f"metric {name}: buckets must be increasing numbers, got {list(buckets)}")
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self.bounds = tuple(bounds)
        self._le = tuple(format_value(b) for b in self.bounds)
        super().__init__(name, documentation, labelnames, registry)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.bounds)

    def observe(self, value: float) -> None:
        self.labels().observe(value)

    def _samples(self, family: Family, labels: LabelPairs, child: HistogramChild) -> None:
        total = 0
        for le, count in zip(self._le, child.counts, strict=True):
            total += count
            family.samples.append(("_bucket", (*labels, ("le", le)), total))
        family.samples.append(("_count", labels, total))
        family.samples.append(("_sum", labels, child.sum))


# --- registry ---------------------------------------------------------------------------------------

class Registry:
    """Collectors in registration order; `render()` is the body of `GET /metrics`."""

    def __init__(self) -> None:
        self._collectors: list[Collector] = []

    def register(self, collector: Collector) -> None:
        self._collectors.append(collector)

    def unregister(self, collector: Collector) -> None:
        self._collectors.remove(collector)

    def collect(self) -> Iterable[Family]:
        for collector in self._collectors:
            yield from collector.collect()

    def render(self) -> bytes:
        out: list[str] = []
        for family in self.collect():
            family.render(out)
        return "".join(out).encode()


# --- process and platform ----------------------------------------------------------------------------

class ProcessCollector:
    """`process_*` series of this process, read from /proc at scrape time (names, help and
    meaning as in the Go and Python clients). Nothing is reported where /proc is missing."""

    def __init__(self, proc: str = "/proc/self", registry: Registry | None = None) -> None:
        self._proc = proc
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._pagesize = os.sysconf("SC_PAGE_SIZE")
        self._boot_time: float | None = None
        if registry is not None:
            registry.register(self)

    def _btime(self) -> float:
        if self._boot_time is None:
            with open("/proc/stat", "rb") as f:
                for line in f:
                    if line.startswith(b"btime "):
                        self._boot_time = float(line.split()[1])
                        break
                else:
                    raise OSError("no btime in /proc/stat")
        return self._boot_time

    def collect(self) -> Iterable[Family]:
        def gauge(name: str, text: str, value: float) -> Family:
            return Family(name, text, "gauge", samples=[("", (), float(value))])

        families: list[Family] = []
        try:
            with open(f"{self._proc}/stat", "rb") as f:
                # fields after the command (which may hold spaces and parentheses): state is [0]
                fields = f.read().rsplit(b")", 1)[1].split()
            families += [
                gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", float(fields[20])),
                gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                      float(fields[21]) * self._pagesize),
                gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                      float(fields[19]) / self._ticks + self._btime()),
                Family("process_cpu_seconds",
                       "Total user and system CPU time spent in seconds.", "counter",
                       samples=[("_total", (), (float(fields[11]) + float(fields[12])) / self._ticks)]),
            ]
        except (OSError, IndexError, ValueError):
            pass
        try:
            families.append(gauge("process_open_fds", "Number of open file descriptors.",
                                  len(os.listdir(f"{self._proc}/fd"))))
            with open(f"{self._proc}/limits", "rb") as f:
                for line in f:
                    if line.startswith(b"Max open files"):
                        soft = line.split()[3]
                        families.append(gauge("process_max_fds", "Maximum number of open file descriptors.",
                                              math.inf if soft == b"unlimited" else float(soft)))
        except (OSError, IndexError, ValueError):
            pass
        return families


class PlatformCollector:
    """`python_info`, a constant gauge labelled with the interpreter's version."""

    def __init__(self, registry: Registry | None = None) -> None:
        v = sys.version_info
        implementation = {"cpython": "CPython", "pypy": "PyPy"}.get(sys.implementation.name,
                                                                      sys.implementation.name)
        self._family = Family("python_info", "Python platform information", "gauge",
                              ("implementation", "major", "minor", "patchlevel", "version"))
        self._family.add([implementation, str(v.major), str(v.minor), str(v.micro),
                          f"{v.major}.{v.minor}.{v.micro}"], 1)
        if registry is not None:
            registry.register(self)

    def collect(self) -> Iterable[Family]:
        return (self._family,)


def with_process_metrics(registry: Registry | None = None) -> Registry:
    """A registry (new or given) that already reports `process_*` and `python_info`."""
    registry = registry if registry is not None else Registry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry

