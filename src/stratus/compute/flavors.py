"""Flavors, and the defaults created at first start.

The defaults are scaled to the machine this project targets (2 cores, 24 GiB,
QEMU under TCG, where an idle 128 MiB guest costs ~190 MiB of host memory):
small enough that dozens of guests fit, with the classic names and ids so
scripts written for DevStack keep working.

====  =========  =====  =========  ========
id    name       vCPUs  RAM (MiB)  disk GiB
====  =========  =====  =========  ========
1     m1.tiny    1      64         1
2     m1.small   1      128        2
3     m1.medium  1      256        5
4     m1.large   2      512        10
5     m1.xlarge  2      1024       20
====  =========  =====  =========  ========
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from stratus.compute.models import Flavor
from stratus.db import Database

DEFAULT_FLAVORS = (
    ("1", "m1.tiny", 1, 64, 1),
    ("2", "m1.small", 1, 128, 2),
    ("3", "m1.medium", 1, 256, 5),
    ("4", "m1.large", 2, 512, 10),
    ("5", "m1.xlarge", 2, 1024, 20),
)


async def bootstrap(db: Database) -> None:
    """Create the default flavors when the table is empty (idempotent)."""
    async with db.session() as session:
        if await session.scalar(select(func.count()).select_from(Flavor)):
            return
        for flavorid, name, vcpus, ram, disk in DEFAULT_FLAVORS:
            session.add(Flavor(flavorid=flavorid, name=name, vcpus=vcpus, memory_mb=ram,
                               root_gb=disk, extra_specs={}))


def snapshot(flavor: Flavor) -> dict[str, Any]:
    """The copy of a flavor an instance keeps (it survives the flavor's deletion)."""
    return {"id": flavor.id, "flavorid": flavor.flavorid, "name": flavor.name,
            "vcpus": flavor.vcpus, "ram": flavor.memory_mb, "disk": flavor.root_gb,
            "ephemeral": flavor.ephemeral_gb, "swap": flavor.swap,
            "extra_specs": dict(flavor.extra_specs or {})}
