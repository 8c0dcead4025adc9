"""Where image data lives: a small store interface and the file store.

A store keeps opaque blobs named by a location string. Writes are streamed:
:meth:`Store.add` consumes an async iterator of chunks, computes md5 (the
``checksum``) and sha512 (the ``os_hash_value``) and the size on the way, and
the data becomes visible only once it is complete and durable. Reads stream
too, optionally verifying the md5 so that a corrupted file never reaches a
client as if it were good.

Adding an object store means implementing :class:`Store`; for example a store
on S3 would upload parts as they fill and complete the multipart upload in
``add``, and map ``open`` onto ranged GETs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import hashlib
import mmap
import os
import socket
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from stratus.image.formats import PREFIX_BYTES

HASH_ALGO = "sha512"


class StoreError(Exception):
    """The store cannot do what was asked (missing file, I/O error)."""


class DataCorrupt(StoreError):
    """Stored data no longer matches its recorded size or checksum."""


class SizeLimitExceeded(StoreError):
    """More bytes arrived than the caller allowed (quota)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"image data exceeds the {limit} bytes allowed")
        self.limit = limit


@dataclass(frozen=True)
class StoredData:
    location: str
    size: int
    checksum: str  # md5 hex
    hash_algo: str
    hash_value: str
    prefix: bytes  # the first bytes, for format inspection


PrefixCheck = Callable[[bytes], None]
# Called when an upload grows past what it may store so far, with the size it
# needs; returns the new allowance (>= that size) or raises to refuse.
Reserve = Callable[[int], Awaitable[int]]


class Store(Protocol):
    """What the image service needs from a place that keeps bytes."""

    id: str
    description: str

    async def add(self, key: str, chunks: AsyncIterable[bytes], *, area: str = "images",
                  max_size: int | None = None, check_prefix: PrefixCheck | None = None,
                  tag: str = "", reserve: Reserve | None = None) -> StoredData:
        """Write every chunk, then publish atomically under ``key``.

        Raises :class:`SizeLimitExceeded` past ``max_size`` bytes, and
        whatever ``check_prefix`` raises about the first bytes or ``reserve``
        raises when asked for room for more; on any error nothing is left
        behind.
        """

    async def promote(self, location: str, key: str) -> str:
        """Move data written to another area (staging) to the images area."""

    def open(self, location: str, *, start: int = 0, end: int | None = None,
             expect_md5: str | None = None) -> AsyncIterator[bytes]:
        """Stream bytes ``start..end`` (inclusive); verify md5 when given."""

    async def size_of(self, location: str) -> int: ...

    async def delete(self, location: str) -> None:
        """Remove the data; a missing location is not an error."""

    async def discard_partial(self, key: str, tag: str) -> None:
        """Remove the temporary file of an interrupted ``add`` of ``key``."""


def upload_tag() -> str:
    """Names the writer of a temporary file: this host and process."""
    return f"{socket.gethostname()}.{os.getpid()}"


class FileStore:
    """Image data as files under one directory.

    Layout: ``images/<id[:2]>/<id>`` for data, ``staging/<id>`` for staged
    uploads, ``tmp/<id>.<host>.<pid>.part`` while a write is in flight. A
    write goes to the temporary file, is fsynced and renamed into place, so a
    reader never sees half an image and a crash leaves only a ``.part`` file
    that :meth:`discard_partial` (or start-up recovery) removes.
    """

    id = "file"
    description = "Local file store"

    def __init__(self, root: Path, *, write_chunk: int = 4 << 20, read_chunk: int = 4 << 20,
                 threads: int = 4, pipeline_depth: int = 3, direct_io: bool = False) -> None:
        self.root = root
        self.direct_io = direct_io
        self.write_chunk = write_chunk
        self.read_chunk = read_chunk
        self.pipeline_depth = pipeline_depth
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="image-store")
        for area in ("images", "staging", "tmp"):
            (root / area).mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- paths ---------------------------------------------------------------
    def _final_path(self, area: str, key: str) -> Path:
        if area == "images":
            return self.root / "images" / key[:2] / key
        return self.root / area / key

    def tmp_path(self, key: str, tag: str) -> Path:
        return self.root / "tmp" / f"{key}.{tag}.part"

    def path_of(self, location: str) -> Path:
        parsed = urlparse(location)
        if parsed.scheme != "file":
            raise StoreError(f"not a file store location: {location!r}")
        path = Path(unquote(parsed.path))
        if self.root.resolve() not in path.resolve().parents:
            raise StoreError(f"location {location!r} is outside the store")
        return path

    # -- writing -------------------------------------------------------------
    async def add(self, key: str, chunks: AsyncIterable[bytes], *, area: str = "images",
                  max_size: int | None = None, check_prefix: PrefixCheck | None = None,
                  tag: str = "", reserve: Reserve | None = None) -> StoredData:
        tmp = self.tmp_path(key, tag or upload_tag())
        final = self._final_path(area, key)
        writer = _FileWriter.create(tmp, self.write_chunk, direct=self.direct_io)
        fd = writer.fd
        md5 = hashlib.md5(usedforsecurity=False)
        sha = hashlib.sha512()
        # md5, sha512 and the write each release the GIL and each keeps its
        # own order: three lanes that run side by side, a few blocks deep,
        # while the event loop gathers the next block.
        pipe = _Pipeline((partial(_feed, md5.update), partial(_feed, sha.update),
                          writer.write), depth=self.pipeline_depth)
        size = 0
        allowed = 0  # bytes ``reserve`` has granted so far
        prefix = b""
        checked = check_prefix is None
        parts: list[bytes] = []
        buffered = 0
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise SizeLimitExceeded(max_size)
                if reserve is not None and size > allowed:
                    allowed = await reserve(size)
                if len(prefix) < PREFIX_BYTES:
                    prefix += chunk[:PREFIX_BYTES - len(prefix)]
                    if not checked and len(prefix) >= PREFIX_BYTES:
                        checked = True
                        assert check_prefix is not None
                        check_prefix(prefix)
                parts.append(chunk)
                buffered += len(chunk)
                if buffered >= self.write_chunk:
                    await pipe.push(tuple(parts))
                    parts.clear()
                    buffered = 0
            if not checked:
                assert check_prefix is not None
                check_prefix(prefix)
            if parts:
                await pipe.push(tuple(parts))
                parts.clear()
            await pipe.drain()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._pool, writer.finish)
            await loop.run_in_executor(self._pool, os.fsync, fd)
            os.close(fd)
            fd = -1
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            await loop.run_in_executor(self._pool, _fsync_dir, final.parent)
        except BaseException:
            # Let in-flight writes finish before closing the descriptor.
            await asyncio.shield(pipe.abandon())
            if fd >= 0:
                os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        finally:
            pipe.close()
            writer.release()
        return StoredData(location=final.as_uri(), size=size, checksum=md5.hexdigest(),
                          hash_algo=HASH_ALGO, hash_value=sha.hexdigest(), prefix=prefix)


    async def promote(self, location: str, key: str) -> str:
        source = self.path_of(location)
        final = self._final_path("images", key)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, final)
        except FileNotFoundError:
            raise StoreError(f"staged data for {key} is missing") from None
        await asyncio.get_running_loop().run_in_executor(self._pool, _fsync_dir, final.parent)
        return final.as_uri()

    # -- reading -------------------------------------------------------------
    async def size_of(self, location: str) -> int:
        try:
            return self.path_of(location).stat().st_size
        except FileNotFoundError:
            raise DataCorrupt(f"the data file of {location} is missing") from None

    async def open(self, location: str, *, start: int = 0, end: int | None = None,
                   expect_md5: str | None = None) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        path = self.path_of(location)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise DataCorrupt(f"the data file {path} is missing") from None
        ahead: asyncio.Future[bytes] | None = None
        try:
            total = os.fstat(fd).st_size
            stop = total if end is None else min(end + 1, total)
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(fd, start, stop - start, os.POSIX_FADV_SEQUENTIAL)
            md5 = hashlib.md5(usedforsecurity=False) if expect_md5 else None
            hashing: asyncio.Future[object] | None = None
            held: bytes | None = None

            def read(at: int) -> asyncio.Future[bytes]:
                return loop.run_in_executor(self._pool, os.pread, fd,
                                            min(self.read_chunk, stop - at), at)

            # Read one block ahead, so the disk works while the client receives.
            pos = start
            ahead = read(pos) if pos < stop else None
            while ahead is not None:
                data = await ahead
                if not data:
                    raise DataCorrupt(f"{path} ended at {pos} bytes")
                pos += len(data)
                ahead = read(pos) if pos < stop else None
                if md5 is not None:
                    if hashing is not None:
                        await hashing
                    hashing = loop.run_in_executor(self._pool, md5.update, data)
                    # Hold the last chunk back until the checksum is known, so
                    # a corrupted file makes the transfer fail, not succeed.
                    if held is not None:
                        yield held
                    held = data
                else:
                    yield data
            if md5 is not None:
                if hashing is not None:
                    await hashing
                if md5.hexdigest() != expect_md5:
                    raise DataCorrupt(
                        f"{path}: md5 {md5.hexdigest()} does not match the recorded {expect_md5}")
                if held is not None:
                    yield held
        finally:
            if ahead is not None:  # the reader went away mid-transfer
                await asyncio.gather(ahead, return_exceptions=True)
            os.close(fd)

    async def checksums(self, location: str) -> tuple[int, str, str]:
        """Size, md5 and sha512 of stored data (``stratus image verify``)."""
        loop = asyncio.get_running_loop()
        md5 = hashlib.md5(usedforsecurity=False)
        sha = hashlib.sha512()
        size = 0
        async for data in self.open(location):
            size += len(data)
            await asyncio.gather(loop.run_in_executor(self._pool, md5.update, data),
                                 loop.run_in_executor(self._pool, sha.update, data))
        return size, md5.hexdigest(), sha.hexdigest()

    # -- removing ------------------------------------------------------------
    async def delete(self, location: str) -> None:
        try:
            self.path_of(location).unlink(missing_ok=True)
        except StoreError:
            pass

    async def discard_partial(self, key: str, tag: str) -> None:
        self.tmp_path(key, tag).unlink(missing_ok=True)

    def partial_files(self) -> list[tuple[str, str, Path]]:
        """(key, tag, path) of every temporary file left in ``tmp/``."""
        found = []
        for path in (self.root / "tmp").glob("*.part"):
            key, _, tag = path.name[: -len(".part")].partition(".")
            found.append((key, tag, path))
        return found


def _write_all(fd: int, data: bytes | memoryview | mmap.mmap) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


Block = tuple[bytes, ...]


def _feed(update: Callable[[bytes], object], block: Block) -> None:
    for part in block:
        update(part)


class _FileWriter:
    """Appends blocks to a new file, optionally bypassing the page cache.

    Image data is fsynced before the image turns active anyway, and copying
    it through the page cache is the largest CPU cost of an upload after the
    two hashes (though a download right after then reads the disk, which is
    why it is a setting, ``image.direct_io``). With ``O_DIRECT`` the data is
    gathered into one page-aligned buffer and written from there; the tail
    that does not fill a whole 4 KiB block is written after dropping
    ``O_DIRECT``. Filesystems without ``O_DIRECT`` (tmpfs) get plain writes.
    """

    ALIGN = 4096

    def __init__(self, fd: int, buffer: mmap.mmap | None) -> None:
        self.fd = fd
        self.buffer = buffer
        self.fill = 0
        self.written = 0  # bytes handed to the page cache so far

    @classmethod
    def create(cls, path: Path, block_size: int, *, direct: bool = True) -> _FileWriter:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        o_direct = getattr(os, "O_DIRECT", 0) if direct else 0
        if o_direct:
            try:
                fd = os.open(path, flags | o_direct, 0o640)
            except OSError:
                pass
            else:
                size = max(block_size // cls.ALIGN, 1) * cls.ALIGN
                return cls(fd, mmap.mmap(-1, size))
        return cls(os.open(path, flags, 0o640), None)

    def write(self, block: Block) -> None:
        if self.buffer is None:
            written = os.writev(self.fd, block) if 0 < len(block) <= 1024 else 0
            for part in block:  # whatever one writev did not take
                if written >= len(part):
                    written -= len(part)
                    continue
                _write_all(self.fd, memoryview(part)[written:])
                written = 0
            # Start writing the block to disk now, so that the fsync before
            # the image turns active waits for the last blocks only, not the
            # whole image (it still waits for all of it: durability is the
            # fsync's, this only moves the disk's work earlier).
            size = sum(map(len, block))
            _start_writeback(self.fd, self.written, size)
            self.written += size
            return
        buf, cap = self.buffer, len(self.buffer)
        for part in block:
            view = memoryview(part)
            while view:
                n = min(len(view), cap - self.fill)
                buf[self.fill:self.fill + n] = view[:n]
                self.fill += n
                view = view[n:]
                if self.fill == cap:
                    _write_all(self.fd, buf)
                    self.fill = 0

    def finish(self) -> None:
        """Write what is still buffered."""
        if self.buffer is None or not self.fill:
            return
        with memoryview(self.buffer) as view:
            whole = self.fill - self.fill % self.ALIGN
            if whole:
                _write_all(self.fd, view[:whole])
            if whole < self.fill:
                flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
                fcntl.fcntl(self.fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
                _write_all(self.fd, view[whole:self.fill])
        self.fill = 0

    def release(self) -> None:
        if self.buffer is not None:
            with contextlib.suppress(BufferError):  # a cancelled write still holds it
                self.buffer.close()
            self.buffer = None


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):  # not Linux
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    fn.restype = ctypes.c_int
    return fn


_SYNC_FILE_RANGE = _sync_file_range()
SYNC_FILE_RANGE_WRITE = 2


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to begin writing a range out, without waiting (advisory)."""
    if _SYNC_FILE_RANGE is not None and length:
        _SYNC_FILE_RANGE(fd, offset, length, SYNC_FILE_RANGE_WRITE)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Pipeline:
    """Feed blocks to a few consumers, each in its own thread and in order.

    At most ``depth`` blocks are in flight: :meth:`push` waits for the oldest
    block to be consumed by every lane first, which bounds memory to about
    ``depth`` blocks whatever the upload's size.
    """

    def __init__(self, consumers: tuple[Callable[[Block], object], ...], depth: int) -> None:
        self.consumers = consumers
        self.depth = max(depth, 1)
        self.lanes = [ThreadPoolExecutor(max_workers=1, thread_name_prefix="image-lane")
                      for _ in consumers]
        self.inflight: deque[list[asyncio.Future[object]]] = deque()

    async def push(self, block: Block) -> None:
        while len(self.inflight) >= self.depth:
            await asyncio.gather(*self.inflight.popleft())
        loop = asyncio.get_running_loop()
        self.inflight.append([loop.run_in_executor(lane, consume, block)
                              for lane, consume in zip(self.lanes, self.consumers,
                                                       strict=True)])

    async def drain(self) -> None:
        while self.inflight:
            await asyncio.gather(*self.inflight.popleft())

    async def abandon(self) -> None:
        while self.inflight:
            await asyncio.gather(*self.inflight.popleft(), return_exceptions=True)

    def close(self) -> None:
        for lane in self.lanes:
            lane.shutdown(wait=False)
