"""Filters, weighers and the explanation of a NoValidHost."""

from __future__ import annotations

import random

from stratus.compute.scheduler.hoststate import HostState, RequestSpec
from stratus.compute.scheduler.select import filter_hosts, rank
from stratus.compute.scheduler.weighers import CPUWeigher, RAMWeigher


def host(i: int, **kw: object) -> HostState:
    base = dict(node_id=i, host=f"h{i}", node=f"h{i}", availability_zone="nova", vcpus=8,
                memory_mb=16384, disk_gb=100)
    base.update(kw)
    return HostState(**base)  # type: ignore[arg-type]


def test_no_valid_host_explains_per_filter() -> None:
    hosts = [host(1, enabled=False), host(2, up=False), host(3, memory_mb_used=16000),
             host(4, availability_zone="other")]
    passed, why = filter_hosts(hosts, RequestSpec(vcpus=1, memory_mb=512, disk_gb=1,
                                                  availability_zone="nova"))
    assert passed == []
    text = why.explain()
    assert "4 host(s) considered" in text
    assert "ComputeFilter removed 2 host(s)" in text
    assert "AvailabilityZoneFilter removed 1 host(s)" in text
    assert "RamFilter removed 1 host(s) (needs 512 MiB RAM, 384 MiB free)" in text


def test_allocation_ratios_and_reservations_bound_capacity() -> None:
    h = host(1, vcpus=2, cpu_ratio=4.0, reserved_cpus=0, memory_mb=1024,
             reserved_memory_mb=512)
    assert h.vcpus_limit == 8 and h.memory_limit == 512


def test_anti_affinity_and_affinity() -> None:
    hosts = [host(1), host(2)]
    spec = RequestSpec(vcpus=1, memory_mb=1, disk_gb=0, group_policy="anti-affinity",
                       group_hosts=["h1"])
    assert [h.host for h in filter_hosts(hosts, spec)[0]] == ["h2"]
    spec.group_policy = "affinity"
    assert [h.host for h in filter_hosts(hosts, spec)[0]] == ["h1"]


def test_ram_weigher_spreads_and_negative_multiplier_stacks() -> None:
    hosts = [host(1, memory_mb_used=8000), host(2)]
    spec = RequestSpec(vcpus=1, memory_mb=1, disk_gb=0)
    assert rank(hosts, spec, (RAMWeigher(1.0),))[0].host == "h2"
    assert rank(hosts, spec, (RAMWeigher(-1.0),))[0].host == "h1"


def test_choosing_among_10000_hosts_picks_a_host_that_fits() -> None:
    # How fast this is gets measured by bench/compute_boot.py --scheduler-only, not asserted here.
    rng = random.Random(1)
    hosts = [host(i, memory_mb_used=rng.randrange(16000), vcpus_used=rng.randrange(30))
             for i in range(10_000)]
    spec = RequestSpec(vcpus=2, memory_mb=2048, disk_gb=10)
    passed, _ = filter_hosts(hosts, spec)
    best = rank(passed, spec, (RAMWeigher(1.0), CPUWeigher(1.0)))[0]
    assert best in passed
    assert best.free_memory_mb >= 2048


def test_candidate_search_stops_at_its_limit_but_explains_over_all_hosts() -> None:
    from stratus.compute.scheduler.select import candidates

    hosts = [host(i, memory_mb_used=0 if i % 3 == 0 else 16000) for i in range(3000)]
    spec = RequestSpec(vcpus=1, memory_mb=2048, disk_gb=1)
    passed, _ = candidates(hosts, spec, limit=100, start=2990, chunk=64)
    assert 100 <= len(passed) < 200 and all(h.node_id % 3 == 0 for h in passed)
    assert passed[0].node_id == 2991  # the first passing host from the start point
    lonely = [host(i, memory_mb_used=16000) for i in range(3000)]
    lonely[1234] = host(1234)
    passed, _ = candidates(lonely, spec, limit=100, start=2000, chunk=64)
    assert [h.node_id for h in passed] == [1234]  # found even behind the start point
    passed, why = candidates(lonely, RequestSpec(vcpus=1, memory_mb=99999, disk_gb=1),
                             limit=100, start=5)
    assert passed == [] and "3000 host(s) considered" in why.explain()
