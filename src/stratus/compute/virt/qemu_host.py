"""What a QEMU host offers, for ``host_resources``: CPUs, memory, disk, QEMU's version."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from stratus.compute.virt import qemu_disks as disks
from stratus.compute.virt.driver import HostResources
from stratus.guest import qemu as gq

if TYPE_CHECKING:
    from stratus.compute.virt.qemu import QemuDriver


async def host_resources(drv: QemuDriver) -> HostResources:
    usage = shutil.disk_usage(drv.instances)
    version = await asyncio.to_thread(_qemu_version)
    info = {"arch": os.uname().machine, "accel": drv.accel,
            "model": _cpu_model(), "vendor": "stratus-qemu"}
    return HostResources(hostname=drv.host, vcpus=os.cpu_count() or 1,
                         memory_mb=_memory_mb(), local_gb=int(usage.total // disks.GIB),
                         hypervisor_type=drv.hypervisor_type, hypervisor_version=version,
                         cpu_info=json.dumps(info))


def _memory_mb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 1024


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


_VERSION: list[int] = []


def _qemu_version() -> int:
    """Nova's encoding: 7.2.22 -> 7002022."""
    if not _VERSION:
        out = subprocess.run([gq.QEMU, "--version"], capture_output=True, text=True,
                             check=False).stdout
        m = re.search(r"version (\d+)\.(\d+)\.(\d+)", out)
        _VERSION.append(int(m[1]) * 1_000_000 + int(m[2]) * 1000 + int(m[3]) if m else 0)
    return _VERSION[0]
