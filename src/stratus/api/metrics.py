"""Counters and latency histograms, rendered in the Prometheus text format.

One :class:`Metrics` object per process (built by the wiring function, never a
module global). HTTP middleware and the bus record into it; ``GET /metrics``
on every API port renders it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

Labels = tuple[tuple[str, str], ...]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _fmt_labels(labels: Labels, extra: Iterable[tuple[str, str]] = ()) -> str:
    items = list(labels) + list(extra)
    if not items:
        return ""
    body = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in items
    )
    return "{" + body + "}"


class _Histogram:
    __slots__ = ("counts", "total", "count")

    def __init__(self) -> None:
        self.counts = [0] * len(BUCKETS)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.counts[i] += 1
                break
        self.total += value
        self.count += 1


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = {}
        self._histograms: dict[str, dict[Labels, _Histogram]] = {}
        self._help: dict[str, str] = {}

    def describe(self, name: str, help_text: str) -> None:
        self._help[name] = help_text

    def inc(self, name: str, labels: dict[str, str], amount: float = 1.0) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._counters.setdefault(name, {})
            series[key] = series.get(key, 0.0) + amount

    def observe(self, name: str, labels: dict[str, str], seconds: float) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._histograms.setdefault(name, {})
            hist = series.get(key)
            if hist is None:
                hist = series[key] = _Histogram()
            hist.observe(seconds)

    def value(self, name: str, labels: dict[str, str]) -> float:
        """The current value of a counter (0 if never incremented)."""
        return self._counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        out: list[str] = []
        with self._lock:
            for name, series in sorted(self._counters.items()):
                out.append(f"# HELP {name} {self._help.get(name, name)}")
                out.append(f"# TYPE {name} counter")
                for labels, value in series.items():
                    out.append(f"{name}{_fmt_labels(labels)} {value:g}")
            for name, hseries in sorted(self._histograms.items()):
                out.append(f"# HELP {name} {self._help.get(name, name)}")
                out.append(f"# TYPE {name} histogram")
                for labels, hist in hseries.items():
                    cumulative = 0
                    for bound, count in zip(BUCKETS, hist.counts):
                        cumulative += count
                        out.append(
                            f"{name}_bucket{_fmt_labels(labels, [('le', f'{bound:g}')])} {cumulative}"
                        )
                    out.append(f"{name}_bucket{_fmt_labels(labels, [('le', '+Inf')])} {hist.count}")
                    out.append(f"{name}_sum{_fmt_labels(labels)} {hist.total:.6f}")
                    out.append(f"{name}_count{_fmt_labels(labels)} {hist.count}")
        return "\n".join(out) + "\n"
