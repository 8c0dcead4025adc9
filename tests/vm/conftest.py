"""Real QEMU guests for tests/vm: the built guest image, KVM-or-TCG, and a guest launcher.

The guest build and the KVM probe are cached across runs in
$STRATUS_TEST_DATA_DIR (default ~/.cache/stratus-test): the first run
downloads two Debian packages and builds (~20 s), later runs start at once.
Guests use QEMU user-mode networking with restrict=on: no host interface, no
traffic leaves the QEMU process, forwarded ports bind 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stratus.guest.builder import GuestArtifacts, build_guest
from stratus.guest.qemu import Guest, GuestSpec, probe_accel, start
from tests.vm.qemu_cloud import QemuCloud

BUILD_TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils",
               "mkfs.vfat": "dosfstools", "mcopy": "mtools", "syslinux": "syslinux",
               "depmod": "kmod", "apt-get": "apt", "dpkg": "dpkg"}
ENABLE = "run as root with scripts/install.sh done (it apt-installs QEMU and the build tools)"


def _missing() -> str | None:
    if os.geteuid() != 0:
        return f"tests/vm need root; {ENABLE}"
    absent = sorted({pkg for tool, pkg in BUILD_TOOLS.items()
                     if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}")
                     and not os.path.exists(f"/sbin/{tool}")})
    if absent:
        return f"missing {', '.join(absent)}: apt-get install {' '.join(absent)} ({ENABLE})"
    return None


@pytest.fixture(scope="session")
def vm_data_dir() -> Path:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    path = Path(os.environ.get("STRATUS_TEST_DATA_DIR",
                               Path.home() / ".cache" / "stratus-test"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def guest_image(vm_data_dir: Path) -> GuestArtifacts:
    return build_guest(vm_data_dir / "guest")


@pytest.fixture(scope="session")
def accel(vm_data_dir: Path, guest_image: GuestArtifacts) -> str:
    """kvm when a probe boot under KVM works on this host (cached), tcg otherwise."""
    return probe_accel(vm_data_dir, guest_image.disk).accel


Launch = Callable[..., Guest]


@pytest.fixture
def launch(tmp_path: Path, guest_image: GuestArtifacts, accel: str) -> Iterator[Launch]:
    """Start guests from the built disk image; every one still running is killed after."""
    started: list[Guest] = []

    def _launch(name: str = "vm", **overrides: Any) -> Guest:
        fields: dict[str, Any] = {"disk": guest_image.disk, "workdir": tmp_path / name,
                                  "name": name, "accel": accel, "vnc": False, **overrides}
        guest = start(GuestSpec(**fields))
        started.append(guest)
        return guest

    yield _launch
    for guest in started:
        guest.kill()


@pytest.fixture(scope="module")
def cloud(vm_data_dir: Path, guest_image: GuestArtifacts) -> Iterator[QemuCloud]:
    """`stratus up` on the QEMU driver, one host; modules that need more override it."""
    with QemuCloud(guest_image, vm_data_dir) as c:
        yield c
