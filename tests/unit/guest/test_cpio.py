"""The initramfs writer: a cpio newc archive that GNU cpio (and the kernel) read back."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from stratus.guest.cpio import CpioWriter


def _archive() -> bytes:
    cpio = CpioWriter()
    cpio.add_bytes("etc/stratus/boot", b"#!/bin/sh\necho hi\n", 0o755)
    cpio.symlink("bin/sh", "/bin/busybox")
    cpio.chardev("dev/console", 5, 1)
    return cpio.gzipped()


def test_same_inputs_give_the_same_bytes() -> None:
    assert _archive() == _archive()


@pytest.mark.skipif(not shutil.which("cpio"), reason="needs cpio: apt-get install cpio")
def test_gnu_cpio_lists_files_links_devices_and_parent_dirs(tmp_path: Path) -> None:
    listing = subprocess.run(["cpio", "-itv"], input=gzip.decompress(_archive()),
                             capture_output=True, check=True).stdout.decode()
    names = [line.split()[-1] if "->" not in line else line.split()[-3]
             for line in listing.splitlines()]
    assert names == ["etc", "etc/stratus", "etc/stratus/boot", "bin", "bin/sh", "dev",
                     "dev/console"]
    assert "-rwxr-xr-x" in listing and "crw-------" in listing and "-> /bin/busybox" in listing
