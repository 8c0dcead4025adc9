"""`stratus image build`: the guest built offline from Debian packages, and its cache."""

from __future__ import annotations

import gzip
import json
import subprocess
import time
from pathlib import Path

import pytest

from stratus.guest.builder import GuestArtifacts, build_guest, find_cached
from stratus.guest.qemu import accel_for, probe_accel

pytestmark = pytest.mark.vm


def test_build_makes_a_64_mib_qcow2_and_a_kernel_initramfs_pair(
        guest_image: GuestArtifacts) -> None:
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(guest_image.disk)],
                                     capture_output=True, check=True, text=True).stdout)
    assert info["format"] == "qcow2"
    assert info["virtual-size"] == 64 * 2**20
    assert guest_image.disk.stat().st_size < 16 * 2**20
    initramfs = gzip.decompress(guest_image.initrd.read_bytes())
    assert initramfs.startswith(b"070701")
    for member in (b"init\0", b"bin/busybox\0", b"etc/stratus/boot\0", b"virtio_net.ko\0"):
        assert member in initramfs
    assert guest_image.vmlinux is not None
    assert guest_image.vmlinux.read_bytes()[:4] == b"\x7fELF"
    assert guest_image.manifest["kernel"].startswith("linux-image-6.")


def test_a_warm_rebuild_comes_from_the_cache(vm_data_dir: Path,
                                            guest_image: GuestArtifacts) -> None:
    t0 = time.monotonic()
    again = build_guest(vm_data_dir / "guest")
    assert again.cached
    assert again.directory == guest_image.directory
    assert time.monotonic() - t0 < 5
    assert find_cached(vm_data_dir / "guest") == again


def test_the_kvm_probe_is_answered_once_per_host(vm_data_dir: Path, accel: str,
                                                 guest_image: GuestArtifacts) -> None:
    probe = probe_accel(vm_data_dir, guest_image.disk)
    assert probe.cached
    assert probe.accel == accel == accel_for(vm_data_dir)
    assert accel in ("kvm", "tcg")
