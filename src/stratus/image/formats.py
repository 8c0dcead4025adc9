"""Read what an image file says about itself from its first bytes.

A tiny header parser (``qemu-img`` may not be installed): enough to learn the
virtual size of qcow2, vmdk (sparse), vhd (dynamic), vdi images, and to refuse
qcow2 files that point at other files (a backing file or an external data
file would let a guest read the host's disks).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# How many leading bytes :func:`inspect` wants to see.
PREFIX_BYTES = 4096

QCOW2_MAGIC = b"QFI\xfb"
VMDK_MAGIC = b"KDMV"
VHD_COOKIE = b"conectix"
VDI_SIGNATURE = 0xBEDA107F
ISO_MAGIC = b"CD001"
ISO_OFFSET = 0x8001


@dataclass(frozen=True)
class Inspection:
    format: str | None  # "qcow2", "vmdk", "vhd", "vdi", "vhdx" or None when unknown
    virtual_size: int | None = None
    backing_file: bool = False
    data_file: bool = False

    @property
    def unsafe(self) -> str | None:
        """Why this image must not be accepted, or None."""
        if self.backing_file:
            return "qcow2 images with a backing file are not allowed"
        if self.data_file:
            return "qcow2 images with an external data file are not allowed"
        return None


def inspect(prefix: bytes) -> Inspection:
    """What the header in ``prefix`` (the first bytes of a file) says."""
    if prefix[:4] == QCOW2_MAGIC and len(prefix) >= 32:
        version, backing_offset = struct.unpack(">IQ", prefix[4:16])
        size = struct.unpack(">Q", prefix[24:32])[0]
        data_file = False
        if version >= 3 and len(prefix) >= 80:
            incompatible = struct.unpack(">Q", prefix[72:80])[0]
            data_file = bool(incompatible & 0x4)
        return Inspection("qcow2", size, backing_file=backing_offset != 0, data_file=data_file)
    if prefix[:4] == VMDK_MAGIC and len(prefix) >= 20:
        capacity = struct.unpack("<Q", prefix[12:20])[0]
        return Inspection("vmdk", capacity * 512)
    if prefix[:8] == VHD_COOKIE and len(prefix) >= 56:
        # Dynamic VHDs start with a copy of the footer; current size at 48.
        return Inspection("vhd", struct.unpack(">Q", prefix[48:56])[0])
    if prefix[:8] == b"vhdxfile":
        return Inspection("vhdx")
    if len(prefix) >= 0x178 and struct.unpack("<I", prefix[0x40:0x44])[0] == VDI_SIGNATURE:
        return Inspection("vdi", struct.unpack("<Q", prefix[0x170:0x178])[0])
    return Inspection(None)


def virtual_size(disk_format: str | None, found: Inspection, size: int) -> int | None:
    """The virtual size to record for data of ``size`` bytes declared ``disk_format``.

    Raw and ISO images are as large as their data; other formats report it
    in their header when the data really is of the declared format.
    """
    if disk_format in ("raw", "iso"):
        return size
    if found.format is not None and found.format == disk_format:
        return found.virtual_size
    return None


def qcow2_header(virtual_size: int, *, backing_file: str = "", version: int = 3) -> bytes:
    """A minimal qcow2 header (for tests and tools that make empty images)."""
    header = bytearray(104 if version >= 3 else 72)
    struct.pack_into(">4sIQIIQ", header, 0, QCOW2_MAGIC, version,
                     104 if backing_file else 0, len(backing_file), 16, virtual_size)
    if version >= 3:
        struct.pack_into(">I", header, 100, 104)
    return bytes(header) + backing_file.encode()
