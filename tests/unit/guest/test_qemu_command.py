"""The QEMU command line the guest launcher builds (no QEMU started)."""

from __future__ import annotations

from pathlib import Path

from stratus.guest import qemu as gq


def _memory(accel: str, mib: int) -> str:
    argv = gq.qemu_command(gq.GuestSpec(disk=Path("/d.qcow2"), workdir=Path("/tmp/w"),
                                        memory_mib=mib, accel=accel))
    return argv[argv.index("-m") + 1]


def test_tcg_guests_get_their_memory_plus_a_page_so_live_migration_tracks_every_write() -> None:
    # A whole number of 256 KiB words sends QEMU 7.2 down the dirty-bitmap path that
    # loses pages under TCG (bench/qemu_migrate_soak.py measures it).
    for mib in (64, 128, 256, 2048):
        size = _memory("tcg", mib)
        assert size.endswith("K")
        kib = int(size[:-1])
        assert kib == mib * 1024 + gq.TCG_RAM_PAD_KIB
        assert kib % 256 != 0


def test_kvm_guests_get_exactly_their_flavor_memory() -> None:
    assert _memory("kvm", 128) == "128"
