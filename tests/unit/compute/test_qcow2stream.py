"""The forward-only qcow2 writer: what it streams is the guest's disk, byte for byte."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stratus.compute.virt import qcow2stream
from stratus.compute.virt.qcow2stream import StreamError, stream_qcow2

pytestmark = pytest.mark.skipif(
    not shutil.which("qemu-io"),
    reason="needs qemu-io from qemu-utils; scripts/install.sh installs it, then these run")


def _qemu(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


async def _stream_to(image: Path, out: Path) -> list[int]:
    sizes: list[int] = []
    with out.open("wb") as f:
        async def sink(chunk: bytes) -> None:
            sizes.append(len(chunk))
            f.write(chunk)

        total = await stream_qcow2(image, sink)
    assert total == out.stat().st_size
    return sizes


async def test_a_chain_with_holes_and_scattered_writes_streams_identical(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, top, out = tmp_path / "base.qcow2", tmp_path / "top.qcow2", tmp_path / "out.qcow2"
    _qemu("qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M")
    _qemu("qemu-io", "-c", "write -P 0x11 0 3M", "-c", "write -P 0x22 5M 1M",
          "-c", "write -P 0x33 20M 9M", str(base))
    _qemu("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(top))
    # The overlay splits the base's extents: reads alternate files inside one chunk.
    _qemu("qemu-io", "-c", "write -P 0x44 1M 64k", "-c", "write -P 0x55 22M 128k",
          "-c", "write -z 24M 1M", "-c", "write -P 0x66 40M 4M", str(top))
    monkeypatch.setattr(qcow2stream, "READ_CHUNK", 1 << 20)  # many chunk boundaries
    sizes = await _stream_to(top, out)
    assert max(sizes) <= 1 << 20
    _qemu("qemu-img", "check", str(out))
    _qemu("qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", str(top), str(out))
    assert "backing file" not in _qemu("qemu-img", "info", str(out))


async def test_a_data_file_shorter_than_its_map_is_an_error(tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\x5a" * (1 << 20))
    extents = [qcow2stream.Extent(0, 2 << 20, raw, 0)]  # claims 2 MiB, the file has 1
    reader = qcow2stream._GuestReader(extents)
    try:
        with pytest.raises(StreamError, match="short read"):
            reader.read(0, 2 << 20)
        assert reader.read(0, 1 << 20) == b"\x5a" * (1 << 20)
    finally:
        reader.close()
