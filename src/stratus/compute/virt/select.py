"""Which hypervisor driver a compute agent runs, and how the QEMU driver is built.

``hypervisor = "auto"`` (the default) picks QEMU when this machine can run
real guests: root, ``qemu-system-x86_64`` and ``qemu-img`` installed, and the
test guest image already built or buildable (its tools present). Otherwise
it picks the fake driver and logs one line saying why and how to fix it.
``fake`` and ``qemu`` are obeyed as given (``qemu`` fails start-up with the
reason when it cannot work).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from stratus.settings import Hypervisor, Settings

log = logging.getLogger("stratus.compute")

BUILD_TOOLS = {"mkfs.vfat": "dosfstools", "mcopy": "mtools", "syslinux": "syslinux",
               "depmod": "kmod", "apt-get": "apt"}
FIX = "run scripts/install.sh as root (it apt-installs qemu-system-x86 and the guest tools)"


def _which(tool: str) -> bool:
    return any((shutil.which(tool), os.path.exists(f"/usr/sbin/{tool}"),
                os.path.exists(f"/sbin/{tool}")))


def qemu_unavailable(settings: Settings) -> str | None:
    """Why the QEMU driver cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "not running as root"
    missing = [t for t in ("qemu-system-x86_64", "qemu-img") if not _which(t)]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install qemu-system-x86 qemu-utils)"
    from stratus.guest.builder import find_cached

    if find_cached(settings.data_dir / "guest") is None:
        absent = sorted({pkg for tool, pkg in BUILD_TOOLS.items() if not _which(tool)})
        if absent:
            return (f"no guest image built and cannot build one: apt-get install "
                    f"{' '.join(absent)}")
    return None


def choose(settings: Settings) -> Hypervisor:
    wanted = settings.hypervisor
    if wanted == Hypervisor.FAKE:
        return Hypervisor.FAKE
    why = qemu_unavailable(settings)
    if wanted == Hypervisor.QEMU:
        if why:
            from stratus.runtime import StartupError

            raise StartupError(f"setting 'hypervisor' is qemu but {why}; {FIX}")
        return Hypervisor.QEMU
    if why:
        log.warning("hypervisor auto: using the fake driver (servers are simulated): %s; "
                    "to boot real guests, %s", why, FIX)
        return Hypervisor.FAKE
    log.info("hypervisor auto: using the QEMU driver (real guests)")
    return Hypervisor.QEMU


def instances_dir(settings: Settings, host: str) -> Path:
    """``compute.instances_path`` for HOST: by default one directory every host of this
    data dir shares (shared storage; guest.json says which host owns a guest); with
    ``{host}`` in it, a directory per host (no shared storage between them)."""
    return settings.data_dir / settings.compute.instances_path.format(host=host)


def qemu_driver(settings: Settings, host: str):  # type: ignore[no-untyped-def]
    from stratus.compute.virt.qemu import QemuDriver
    from stratus.guest.qemu import accel_for

    drv = QemuDriver(host, instances_dir=instances_dir(settings, host),
                     accel=accel_for(settings.data_dir))
    drv.migration_bandwidth = settings.compute.live_migration_bandwidth << 20
    return drv
