"""The boot sector of the guest disk: one active FAT32 (LBA) partition at 1 MiB."""

from __future__ import annotations

import struct

import pytest

from stratus.guest import disk


@pytest.mark.skipif(not disk.MBR_CODE.exists(), reason="needs syslinux-common (mbr.bin)")
def test_mbr_has_one_bootable_fat32_partition_filling_the_disk() -> None:
    total = 64 * 2**20 // 512
    sector = disk.mbr(total)
    assert len(sector) == 512 and sector[510:] == b"\x55\xaa"
    assert sector[:440] == disk.MBR_CODE.read_bytes()[:440]
    status, _, kind, _, start, size = struct.unpack_from("<B3sB3sII", sector, 446)
    assert (status, kind, start, size) == (0x80, 0x0C, 2048, total - 2048)
    assert sector[462:510] == b"\0" * 48


def test_syslinux_boots_the_kernel_and_initramfs_with_the_command_line() -> None:
    cfg = disk.syslinux_cfg("console=ttyS0 quiet")
    assert "LINUX /vmlinuz" in cfg and "INITRD /initrd.gz" in cfg
    assert "APPEND console=ttyS0 quiet" in cfg and "TIMEOUT 0" in cfg
