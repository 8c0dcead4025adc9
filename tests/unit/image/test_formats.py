"""Header parsing: virtual sizes and unsafe qcow2 files."""

from __future__ import annotations

import struct

from stratus.image.formats import inspect, qcow2_header, virtual_size


def test_qcow2_virtual_size_is_read_from_the_header() -> None:
    found = inspect(qcow2_header(64 * 1024 * 1024))
    assert found.format == "qcow2" and found.virtual_size == 64 * 1024 * 1024
    assert found.unsafe is None


def test_qcow2_with_backing_file_is_unsafe() -> None:
    found = inspect(qcow2_header(1 << 30, backing_file="/etc/shadow"))
    assert found.backing_file and "backing file" in (found.unsafe or "")


def test_qcow2_with_external_data_file_is_unsafe() -> None:
    header = bytearray(qcow2_header(1 << 20))
    struct.pack_into(">Q", header, 72, 0x4)
    assert inspect(bytes(header)).data_file


def test_vmdk_capacity_in_sectors() -> None:
    header = b"KDMV" + struct.pack("<II", 1, 3) + struct.pack("<Q", 2048) + b"\0" * 100
    assert inspect(header).virtual_size == 2048 * 512


def test_vhd_dynamic_footer_copy() -> None:
    header = bytearray(512)
    header[0:8] = b"conectix"
    struct.pack_into(">Q", header, 48, 10 << 20)
    assert inspect(bytes(header)) .virtual_size == 10 << 20


def test_vdi_disk_size() -> None:
    header = bytearray(0x200)
    struct.pack_into("<I", header, 0x40, 0xBEDA107F)
    struct.pack_into("<Q", header, 0x170, 5 << 20)
    assert inspect(bytes(header)).virtual_size == 5 << 20


def test_raw_and_iso_are_as_large_as_their_data() -> None:
    unknown = inspect(b"\0" * 4096)
    assert unknown.format is None
    assert virtual_size("raw", unknown, 12345) == 12345
    assert virtual_size("iso", unknown, 999) == 999


def test_declared_format_must_match_the_data() -> None:
    qcow = inspect(qcow2_header(1 << 30))
    assert virtual_size("qcow2", qcow, 200) == 1 << 30
    assert virtual_size("vmdk", qcow, 200) is None
    assert virtual_size("qcow2", inspect(b"\0" * 512), 512) is None
