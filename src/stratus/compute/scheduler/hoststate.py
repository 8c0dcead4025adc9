"""What the scheduler knows about a host, and what a request asks for.

Plain dataclasses: filters and weighers are pure functions of these two, so
they are tested without a database and run over 10,000 hosts in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class HostState:
    """One host as the scheduler sees it. The free amounts are stored, not
    computed per access: filters and weighers read them for every host of
    every decision, so :meth:`recompute` runs when the used amounts change
    (a claim in this process, or a refresh from the database)."""

    node_id: int
    host: str
    node: str
    availability_zone: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    vcpus_used: int = 0
    memory_mb_used: int = 0
    disk_gb_used: int = 0
    cpu_ratio: float = 4.0
    ram_ratio: float = 1.0
    disk_ratio: float = 1.0
    reserved_cpus: int = 0
    reserved_memory_mb: int = 0
    reserved_disk_gb: int = 0
    running_vms: int = 0
    hypervisor_type: str = "fake"
    architecture: str = "x86_64"
    enabled: bool = True
    up: bool = True
    aggregate_metadata: dict[str, str] = field(default_factory=dict)
    free_vcpus: float = field(init=False, default=0.0)
    free_memory_mb: float = field(init=False, default=0.0)
    free_disk_gb: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.recompute()

    @property
    def vcpus_limit(self) -> float:
        return (self.vcpus - self.reserved_cpus) * self.cpu_ratio

    @property
    def memory_limit(self) -> float:
        return (self.memory_mb - self.reserved_memory_mb) * self.ram_ratio

    @property
    def disk_limit(self) -> float:
        return (self.disk_gb - self.reserved_disk_gb) * self.disk_ratio

    def recompute(self) -> None:
        self.free_vcpus = self.vcpus_limit - self.vcpus_used
        self.free_memory_mb = self.memory_limit - self.memory_mb_used
        self.free_disk_gb = self.disk_limit - self.disk_gb_used

    def consume(self, spec: RequestSpec) -> None:
        """Account a claim locally so the next pick in this request sees it."""
        self.vcpus_used += spec.vcpus
        self.memory_mb_used += spec.memory_mb
        self.disk_gb_used += spec.disk_gb
        self.running_vms += 1
        self.recompute()


@dataclass
class RequestSpec:
    vcpus: int
    memory_mb: int
    disk_gb: int
    project_id: str = ""
    availability_zone: str | None = None
    force_host: str | None = None
    ignore_hosts: list[str] = field(default_factory=list)
    image_properties: dict[str, Any] = field(default_factory=dict)
    extra_specs: dict[str, str] = field(default_factory=dict)
    group_policy: str | None = None
    group_hosts: list[str] = field(default_factory=list)
    group_max_server_per_host: int = 1
    same_host: list[str] = field(default_factory=list)  # hosts, resolved from instance ids
    different_host: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestSpec:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}
