"""Write a standalone qcow2 image as a forward-only stream: snapshots with no temporary copy.

`qemu-img convert -O qcow2` cannot write to a pipe: it seeks back to fill in
its tables. But once the guest-visible allocation map of a disk is known
(`qemu-img map` over the whole backing chain), every table of the output can
be laid out before the first byte is written, so the image can be produced
strictly in order:

    header | L1 table | refcount table | refcount blocks | L2 tables | data clusters

Data is read with `pread` from the file and offset where `qemu-img map` says
each extent lives (the overlay or a backing file), so the cost is one
sequential read of the allocated data, as for `qemu-img convert`. The result
has no backing file (the chain is flattened), unallocated clusters read as
zeros, and every cluster has refcount 1. Extents the map cannot place in a
file (compressed clusters) are rejected: base images are normalised when
they are cached, and overlays written by QEMU never compress.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import os
import struct
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

CLUSTER_BITS = 16
CLUSTER = 1 << CLUSTER_BITS
L2_ENTRIES = CLUSTER // 8
REFS_PER_BLOCK = CLUSTER // 2  # 16-bit refcounts
COPIED = 1 << 63
HEADER_LENGTH = 104
READ_CHUNK = 4 << 20  # bytes per read and per chunk sent

Sink = Callable[[bytes], Awaitable[None]]


class StreamError(RuntimeError):
    pass


@dataclass(frozen=True)
class Extent:
    start: int  # guest offset
    length: int
    file: Path
    offset: int  # where the bytes are in `file`


def _qemu_img(*args: str) -> str:
    out = subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise StreamError(f"qemu-img {args[0]} failed: {out.stderr.strip()}")
    return out.stdout


def data_extents(image: Path) -> tuple[int, list[Extent]]:
    """(virtual size, the extents holding data) of IMAGE seen through its backing chain."""
    # The two commands read the same (frozen) chain: run them side by side.
    info = subprocess.Popen(["qemu-img", "info", "-U", "--backing-chain", "--output=json",
                             str(image)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        mapped = _qemu_img("map", "-U", "--output=json", str(image))
    finally:
        out, err = info.communicate()
    if info.returncode != 0:
        raise StreamError(f"qemu-img info failed: {err.strip()}")
    chain = json.loads(out)
    files = [Path(layer["filename"]) for layer in chain]
    size = int(chain[0]["virtual-size"])
    extents = []
    for e in json.loads(mapped):
        if not e.get("data") or e.get("zero"):
            continue
        if "offset" not in e:
            raise StreamError(f"{image}: extent at {e['start']} has no file offset "
                              "(compressed?); cannot stream it")
        extents.append(Extent(int(e["start"]), int(e["length"]), files[int(e["depth"])],
                              int(e["offset"])))
    return size, extents


def _clusters(extents: list[Extent]) -> list[int]:
    found: set[int] = set()
    for e in extents:
        found.update(range(e.start // CLUSTER, (e.start + e.length - 1) // CLUSTER + 1))
    return sorted(found)


@dataclass(frozen=True)
class Layout:
    size: int
    clusters: list[int]  # guest cluster indexes with data, in output order
    l1_size: int
    l1_clusters: int
    rt_clusters: int
    rb_clusters: int
    l2_indexes: list[int]  # L1 slots that get an L2 table

    @property
    def l1_offset(self) -> int:
        return CLUSTER

    @property
    def rt_offset(self) -> int:
        return self.l1_offset + self.l1_clusters * CLUSTER

    @property
    def rb_offset(self) -> int:
        return self.rt_offset + self.rt_clusters * CLUSTER

    @property
    def l2_offset(self) -> int:
        return self.rb_offset + self.rb_clusters * CLUSTER

    @property
    def data_offset(self) -> int:
        return self.l2_offset + len(self.l2_indexes) * CLUSTER

    @property
    def total_clusters(self) -> int:
        return self.data_offset // CLUSTER + len(self.clusters)

    @property
    def total_bytes(self) -> int:
        return self.total_clusters * CLUSTER


def layout(size: int, clusters: list[int]) -> Layout:
    l1_size = max(1, math.ceil(size / (CLUSTER * L2_ENTRIES)))
    l1_clusters = math.ceil(l1_size * 8 / CLUSTER)
    l2_indexes = sorted({c // L2_ENTRIES for c in clusters})
    rb = rt = 1
    while True:
        total = 1 + l1_clusters + rt + rb + len(l2_indexes) + len(clusters)
        need_rb = math.ceil(total / REFS_PER_BLOCK)
        need_rt = math.ceil(need_rb * 8 / CLUSTER)
        if (need_rb, need_rt) == (rb, rt):
            break
        rb, rt = max(rb, need_rb), max(rt, need_rt)
    return Layout(size, clusters, l1_size, l1_clusters, rt, rb, l2_indexes)


def metadata(lay: Layout) -> Iterator[bytes]:
    """Everything before the first data cluster, cluster by cluster."""
    header = struct.pack(">4sIQIIQIIQQIIQQQQII", b"QFI\xfb", 3, 0, 0, CLUSTER_BITS, lay.size,
                         0, lay.l1_size, lay.l1_offset, lay.rt_offset, lay.rt_clusters, 0, 0,
                         0, 0, 0, 4, HEADER_LENGTH)
    yield header.ljust(CLUSTER, b"\0")  # header extension end marker = 8 zero bytes
    l2_at = {idx: lay.l2_offset + i * CLUSTER for i, idx in enumerate(lay.l2_indexes)}
    l1 = bytearray(lay.l1_clusters * CLUSTER)
    for idx, offset in l2_at.items():
        struct.pack_into(">Q", l1, idx * 8, offset | COPIED)
    yield bytes(l1)
    rt = bytearray(lay.rt_clusters * CLUSTER)
    for i in range(lay.rb_clusters):
        struct.pack_into(">Q", rt, i * 8, lay.rb_offset + i * CLUSTER)
    yield bytes(rt)
    refs = bytearray(lay.rb_clusters * CLUSTER)
    struct.pack_into(f">{lay.total_clusters}H", refs, 0, *([1] * lay.total_clusters))
    yield bytes(refs)
    data_at = lay.data_offset
    position = {c: data_at + i * CLUSTER for i, c in enumerate(lay.clusters)}
    for idx in lay.l2_indexes:
        l2 = bytearray(CLUSTER)
        first = idx * L2_ENTRIES
        for slot in range(L2_ENTRIES):
            host = position.get(first + slot)
            if host is not None:
                struct.pack_into(">Q", l2, slot * 8, host | COPIED)
        yield bytes(l2)


class _GuestReader:
    """Guest bytes [start, start+length) from the extents, zeros elsewhere."""

    def __init__(self, extents: list[Extent]) -> None:
        self.extents = sorted(extents, key=lambda e: e.start)
        self.ends = [e.start + e.length for e in self.extents]
        self.fds: dict[Path, int] = {}

    def _fd(self, file: Path) -> int:
        fd = self.fds.get(file)
        if fd is None:
            fd = self.fds[file] = os.open(file, os.O_RDONLY)
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        return fd

    def read(self, start: int, length: int) -> bytes:
        # One copy per byte: a run that one extent covers (the usual case) is
        # the bytes `pread` returns; only a run over several extents or holes
        # is joined from its pieces.
        pieces: list[bytes] = []
        pos, end = start, start + length
        for i in range(bisect.bisect_right(self.ends, start), len(self.extents)):
            e = self.extents[i]
            if e.start >= end:
                break
            lo, hi = max(start, e.start), min(end, e.start + e.length)
            if lo > pos:
                pieces.append(bytes(lo - pos))
            data = os.pread(self._fd(e.file), hi - lo, e.offset + lo - e.start)
            if len(data) != hi - lo:
                raise StreamError(f"{e.file}: short read at {e.offset + lo - e.start} "
                                  f"({len(data)} of {hi - lo} bytes)")
            pieces.append(data)
            pos = hi
        if pos < end:
            pieces.append(bytes(end - pos))
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)


def _runs(clusters: list[int]) -> Iterator[tuple[int, int]]:
    """(first cluster, count) of consecutive clusters, at most READ_CHUNK bytes each."""
    per = READ_CHUNK // CLUSTER
    i = 0
    while i < len(clusters):
        j = i + 1
        while j < len(clusters) and clusters[j] == clusters[j - 1] + 1 and j - i < per:
            j += 1
        yield clusters[i], j - i
        i = j


async def stream_qcow2(image: Path, sink: Sink) -> int:
    """Send IMAGE (with its backing chain) to SINK as one standalone qcow2; returns bytes."""
    size, extents = await asyncio.to_thread(data_extents, image)
    lay = layout(size, _clusters(extents))
    sent = 0
    for block in metadata(lay):
        await sink(block)
        sent += len(block)
    reader = _GuestReader(extents)
    loop = asyncio.get_running_loop()
    runs = _runs(lay.clusters)

    def read_next() -> asyncio.Future[bytes] | None:
        run = next(runs, None)
        if run is None:
            return None
        return loop.run_in_executor(None, reader.read, run[0] * CLUSTER, run[1] * CLUSTER)

    # One read ahead: the disk works while the sink takes the previous chunk.
    ahead = read_next()
    try:
        while ahead is not None:
            chunk = await ahead
            ahead = read_next()
            await sink(chunk)
            sent += len(chunk)
    finally:
        if ahead is not None:  # the sink failed: let the last read end before closing
            await asyncio.gather(ahead, return_exceptions=True)
        reader.close()
    assert sent == lay.total_bytes, (sent, lay.total_bytes)
    return sent
