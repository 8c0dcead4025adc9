"""Scheduler filters: each one small, pure, and able to say why it said no.

A filter is a class with a ``name`` and one method::

    class NoOddHostsFilter(Filter):
        name = "NoOddHostsFilter"

        def reject(self, host: HostState, spec: RequestSpec) -> str | None:
            if host.node_id % 2:
                return "host id is odd"
            return None

``reject`` returns ``None`` when the host passes, otherwise a short reason;
the reasons are counted per filter and become the "No valid host" message.
``applies`` (optional) says whether a request needs the filter at all, so a
request without, say, a server group never pays for the group filters.
``keep`` (optional) is the batch form the scheduler calls on the hot path:
the hosts that pass, in order. Override it with a comprehension over plain
attributes when the filter runs on every request (the resource filters do):
over 10,000 hosts that is the difference between tens of milliseconds and a
few. It must agree with ``reject``, which is only called to explain a
NoValidHost. Filters run in the order of :data:`DEFAULT_FILTERS`, cheapest
first.
"""

from __future__ import annotations

from stratus.compute.scheduler.hoststate import HostState, RequestSpec


class Filter:
    name = "Filter"

    def applies(self, spec: RequestSpec) -> bool:
        return True

    def reject(self, host: HostState, spec: RequestSpec) -> str | None:
        raise NotImplementedError

    def keep(self, hosts: list[HostState], spec: RequestSpec) -> list[HostState]:
        return [h for h in hosts if self.reject(h, spec) is None]


class ComputeFilter(Filter):
    name = "ComputeFilter"

    def reject(self, host: HostState, spec: RequestSpec) -> str | None:
        if not host.enabled:
            return "compute service disabled"
        if not host.up:
            return "compute service down"
        return None

    def keep(self, hosts: list[HostState], spec: RequestSpec) -> list[HostState]:
        return [h for h in hosts if h.enabled and h.up]


class IgnoreHostsFilter(Filter):
    """Excludes hosts the request must not land on (the source of a migration)."""

    name = "IgnoreHostsFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.force_host or spec.ignore_hosts)

    def reject(self, host: HostState, spec: RequestSpec) -> str | None:
        if spec.force_host and host.host != spec.force_host:
            return f"not the requested host {spec.force_host}"
        if host.host in spec.ignore_hosts:
            return "host excluded by the request (current host)"
        return None


class AvailabilityZoneFilter(Filter):
    name = "AvailabilityZoneFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.availability_zone)

    def reject(self, host: HostState, spec: RequestSpec) -> str | None:
        if spec.availability_zone and host.availability_zone != spec.availability_zone:
            return f"not in availability zone {spec.availability_zone}"
        return None


class VCPUFilter(Filter):
    name = "VCPUFilter"

    def reject(self, host: HostState, spec: RequestSpec) -> str | None:
        if host.free_vcpus < spec.vcpus:
            return f"needs {spec.vcpus} vCPU, {max(host.free_vcpus, 0):g} free"
        return None

    def keep(self, hosts: list[HostState], spec: RequestSpec) -> list[HostState]:
        need = spec.vcpus
        return [h for h in hosts if h.free_vcpus >= need]


class RamFilter(Filter):
    name = "RamFilter"

    def reject(self, host: HostState, spec: RequestSpec) -> str | None:
        if host.free_memory_mb < spec.memory_mb:
            return f"needs {spec.memory_mb} MiB RAM, {max(host.free_memory_mb, 0):g} MiB free"
        return None

    def keep(self, hosts: list[HostState], spec: RequestSpec) -> list[HostState]:
        need = spec.memory_mb
        return [h for h in hosts if h.free_memory_mb >= need]


class DiskFilter(Filter):
    name = "DiskFilter"

    def reject(self, host: HostState, spec: RequestSpec) -> str | None:
        if host.free_disk_gb < spec.disk_gb:
            return f"needs {spec.disk_gb} GiB disk, {max(host.free_disk_gb, 0):g} GiB free"
        return None

    def keep(self, hosts: list[HostState], spec: RequestSpec) -> list[HostState]:
        need = spec.disk_gb
        return [h for h in hosts if h.free_disk_gb >= need]


class ImagePropertiesFilter(Filter):
    name = "ImagePropertiesFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.image_properties)

    def reject(self, host: HostState, spec: RequestSpec) -> str | None:
        props = spec.image_properties
        arch = props.get("hw_architecture") or props.get("architecture")
        if arch and arch != host.architecture:
            return f"image needs architecture {arch}, host is {host.architecture}"
        hv = props.get("img_hv_type") or props.get("hypervisor_type")
        if hv and hv not in (host.hypervisor_type, "qemu" if host.hypervisor_type == "kvm"
                             else host.hypervisor_type):
            return f"image needs hypervisor {hv}, host runs {host.hypervisor_type}"
        return None


class AggregateInstanceExtraSpecsFilter(Filter):
    """Flavor extra specs ``aggregate_instance_extra_specs:k=v`` must match the host's."""

    name = "AggregateInstanceExtraSpecsFilter"
    PREFIX = "aggregate_instance_extra_specs:"

    def applies(self, spec: RequestSpec) -> bool:
        return any(k.startswith(self.PREFIX) for k in spec.extra_specs)

    def reject(self, host: HostState, spec: RequestSpec) -> str | None:
        for key, value in spec.extra_specs.items():
            if key.startswith(self.PREFIX):
                name = key[len(self.PREFIX):]
                if host.aggregate_metadata.get(name) != value:
                    return f"aggregate metadata {name} is not {value}"
        return None


class ServerGroupAffinityFilter(Filter):
    name = "ServerGroupAffinityFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return spec.group_policy == "affinity" and bool(spec.group_hosts)

    def reject(self, host: HostState, spec: RequestSpec) -> str | None:
        if spec.group_policy == "affinity" and spec.group_hosts \
                and host.host not in spec.group_hosts:
            return "server group 'affinity' needs the host of its other members"
        return None


class ServerGroupAntiAffinityFilter(Filter):
    name = "ServerGroupAntiAffinityFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return spec.group_policy == "anti-affinity"

    def reject(self, host: HostState, spec: RequestSpec) -> str | None:
        if spec.group_policy == "anti-affinity":
            count = spec.group_hosts.count(host.host)
            if count >= spec.group_max_server_per_host:
                return "server group 'anti-affinity' already has a member on this host"
        return None


class SameHostFilter(Filter):
    name = "SameHostFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.same_host)

    def reject(self, host: HostState, spec: RequestSpec) -> str | None:
        if spec.same_host and host.host not in spec.same_host:
            return "hint same_host: not the host of the given servers"
        return None


class DifferentHostFilter(Filter):
    name = "DifferentHostFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.different_host)

    def reject(self, host: HostState, spec: RequestSpec) -> str | None:
        if host.host in spec.different_host:
            return "hint different_host: hosts one of the given servers"
        return None


DEFAULT_FILTERS: tuple[Filter, ...] = (
    ComputeFilter(), IgnoreHostsFilter(), AvailabilityZoneFilter(), VCPUFilter(), RamFilter(),
    DiskFilter(), ImagePropertiesFilter(), AggregateInstanceExtraSpecsFilter(),
    ServerGroupAffinityFilter(), ServerGroupAntiAffinityFilter(), SameHostFilter(),
    DifferentHostFilter(),
)
