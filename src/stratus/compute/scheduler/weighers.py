"""Weighers: rank the hosts that passed the filters; higher is better.

A weigher returns a raw number per host; the scheduler normalises each
weigher's numbers to 0..1 across the candidates and sums them times the
weigher's multiplier (from the settings), as Nova does::

    class FewestVMsWeigher(Weigher):
        name = "FewestVMsWeigher"

        def weigh(self, host: HostState, spec: RequestSpec) -> float:
            return -host.running_vms
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


class RAMWeigher(Weigher):
    """Spread by free RAM (a negative multiplier stacks instead)."""

    name = "RAMWeigher"

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        return host.free_memory_mb


class CPUWeigher(Weigher):
    name = "CPUWeigher"

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        return host.free_vcpus


class DiskWeigher(Weigher):
    name = "DiskWeigher"

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        return host.free_disk_gb


class ServerGroupSoftAffinityWeigher(Weigher):
    name = "ServerGroupSoftAffinityWeigher"

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        if spec.group_policy != "soft-affinity":
            return 0.0
        return float(spec.group_hosts.count(host.host))


class ServerGroupSoftAntiAffinityWeigher(Weigher):
    name = "ServerGroupSoftAntiAffinityWeigher"

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        if spec.group_policy != "soft-anti-affinity":
            return 0.0
        return -float(spec.group_hosts.count(host.host))


def weigh(hosts: list[HostState], spec: RequestSpec, weighers: tuple[Weigher, ...],
          top: int | None = None) -> list[tuple[float, HostState]]:
    """Hosts with their total weight, best first (only the best ``top`` if given)."""
    totals = [0.0] * len(hosts)
    for weigher in weighers:
        if not weigher.multiplier:
            continue
        raw = [weigher.weigh(h, spec) for h in hosts]
        low, high = min(raw, default=0.0), max(raw, default=0.0)
        span = high - low
        if span == 0:
            continue
        for i, value in enumerate(raw):
            totals[i] += weigher.multiplier * (value - low) / span
    pairs = zip(totals, hosts)
    if top is not None and top < len(hosts):
        return heapq.nlargest(top, pairs, key=lambda p: p[0])
    return sorted(pairs, key=lambda p: (-p[0], p[1].host))
