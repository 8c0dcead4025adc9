"""Weighers: rank the hosts that passed the filters; higher is better.

A weigher returns a raw number per host; the scheduler normalises each
weigher's numbers to 0..1 across the candidates and sums them times the
weigher's multiplier (from the settings), as Nova does::

    class FewestVMsWeigher(Weigher):
        name = "FewestVMsWeigher"

        def weigh(self, host: HostState, spec: RequestSpec) -> float:
            return -host.running_vms

``weigh_all`` is the batch form the scheduler calls (one number per host, in
order, or ``None`` when the weigher has nothing to say about this request);
weighers that run on every request override it with a comprehension.
"""

from __future__ import annotations

import heapq

from stratus.compute.scheduler.hoststate import HostState, RequestSpec


class Weigher:
    name = "Weigher"
    multiplier = 1.0

    def __init__(self, multiplier: float = 1.0) -> None:
        self.multiplier = multiplier

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        raise NotImplementedError

    def weigh_all(self, hosts: list[HostState], spec: RequestSpec) -> list[float] | None:
        return [self.weigh(h, spec) for h in hosts]


class RAMWeigher(Weigher):
    """Spread by free RAM (a negative multiplier stacks instead)."""

    name = "RAMWeigher"

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        return host.free_memory_mb

    def weigh_all(self, hosts: list[HostState], spec: RequestSpec) -> list[float] | None:
        return [h.free_memory_mb for h in hosts]


class CPUWeigher(Weigher):
    name = "CPUWeigher"

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        return host.free_vcpus

    def weigh_all(self, hosts: list[HostState], spec: RequestSpec) -> list[float] | None:
        return [h.free_vcpus for h in hosts]


class DiskWeigher(Weigher):
    name = "DiskWeigher"

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        return host.free_disk_gb

    def weigh_all(self, hosts: list[HostState], spec: RequestSpec) -> list[float] | None:
        return [h.free_disk_gb for h in hosts]


class ServerGroupSoftAffinityWeigher(Weigher):
    name = "ServerGroupSoftAffinityWeigher"

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        if spec.group_policy != "soft-affinity":
            return 0.0
        return float(spec.group_hosts.count(host.host))

    def weigh_all(self, hosts: list[HostState], spec: RequestSpec) -> list[float] | None:
        return super().weigh_all(hosts, spec) if spec.group_policy == "soft-affinity" else None


class ServerGroupSoftAntiAffinityWeigher(Weigher):
    name = "ServerGroupSoftAntiAffinityWeigher"

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        if spec.group_policy != "soft-anti-affinity":
            return 0.0
        return -float(spec.group_hosts.count(host.host))

    def weigh_all(self, hosts: list[HostState], spec: RequestSpec) -> list[float] | None:
        return (super().weigh_all(hosts, spec) if spec.group_policy == "soft-anti-affinity"
                else None)


def weigh(hosts: list[HostState], spec: RequestSpec, weighers: tuple[Weigher, ...],
          top: int | None = None) -> list[tuple[float, HostState]]:
    """Hosts with their total weight, best first (only the best ``top`` if given).

    Each weigher's numbers are normalised to 0..1 over the candidates, so the
    total is a linear combination of the raw numbers: one coefficient and one
    offset per weigher, summed in a single pass per weigher."""
    totals: list[float] | None = None
    for weigher in weighers:
        if not weigher.multiplier:
            continue
        raw = weigher.weigh_all(hosts, spec)
        if not raw:
            continue
        low, high = min(raw), max(raw)
        span = high - low
        if span == 0:
            continue
        k = weigher.multiplier / span
        if totals is None:
            totals = [k * (v - low) for v in raw]
        else:
            totals = [t + k * (v - low) for t, v in zip(totals, raw)]
    if totals is None:
        totals = [0.0] * len(hosts)
    pairs = zip(totals, hosts)
    if top is not None and top < len(hosts):
        return heapq.nlargest(top, pairs, key=_first)
    return sorted(pairs, key=lambda p: (-p[0], p[1].host))


def _first(pair: tuple[float, HostState]) -> float:
    return pair[0]
