"""A disk image that boots by itself: MBR + one FAT32 partition with syslinux.

No loop device and no mount: the partition is made in a file with
`mkfs.vfat`, filled with `mcopy`, made bootable with `syslinux --install`
(the mtools flavour works on files), then placed behind a hand-written MBR
whose boot code is syslinux's `mbr.bin`. The same FAT partition (label
STRATUS) holds the guest's persistent state.
"""

from __future__ import annotations

import struct
from pathlib import Path

from stratus.guest.debs import GuestBuildError, run
from stratus.guest.scripts import DATA_LABEL

SECTOR = 512
PART_START = 2048  # sectors: the first partition at 1 MiB, as fdisk does
MBR_CODE = Path("/usr/lib/syslinux/mbr/mbr.bin")
FAT32_LBA = 0x0C
VOLUME_ID = "5354524a"  # fixed, so the same inputs give the same image


def syslinux_cfg(append: str) -> str:
    return ("DEFAULT stratus\nPROMPT 0\nTIMEOUT 0\n"
            f"LABEL stratus\n  LINUX /vmlinuz\n  INITRD /initrd.gz\n  APPEND {append}\n")


def mbr(total_sectors: int, disk_id: int = 0x53545241) -> bytes:
    if not MBR_CODE.exists():
        raise GuestBuildError(f"{MBR_CODE} missing: apt-get install syslinux-common")
    code = MBR_CODE.read_bytes()[:440].ljust(440, b"\0")
    size = total_sectors - PART_START
    # CHS fields are legacy; 0xfe/0xff/0xff says "use LBA" to every BIOS since 1998.
    entry = struct.pack("<B3sB3sII", 0x80, b"\xfe\xff\xff", FAT32_LBA, b"\xfe\xff\xff",
                        PART_START, size)
    return code + struct.pack("<IH", disk_id, 0) + entry + b"\0" * 48 + b"\x55\xaa"


def build_disk(dest: Path, files: dict[str, Path], *, append: str, size_mib: int = 64,
               workdir: Path) -> Path:
    """Write a qcow2 at DEST with FILES (name in the partition -> host path) inside."""
    total = size_mib * 1024 * 1024 // SECTOR
    part = workdir / "part.img"
    part.unlink(missing_ok=True)
    part_kib = (total - PART_START) * SECTOR // 1024
    run("mkfs.vfat", "-F", "32", "-s", "1", "-h", str(PART_START), "-n", DATA_LABEL,
        "-i", VOLUME_ID, "-C", part, str(part_kib))
    cfg = workdir / "syslinux.cfg"
    cfg.write_text(syslinux_cfg(append))
    run("mmd", "-i", part, "::/stratus")
    for name, source in {"syslinux.cfg": cfg, **files}.items():
        run("mcopy", "-i", part, "-m", source, f"::/{name}")
    run("syslinux", "--install", part)

    raw = workdir / "disk.raw"
    with raw.open("wb") as out:
        out.write(mbr(total).ljust(PART_START * SECTOR, b"\0"))
        with part.open("rb") as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)
    part.unlink()
    tmp = dest.with_suffix(".tmp")
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, tmp)
    raw.unlink()
    tmp.replace(dest)
    return dest
