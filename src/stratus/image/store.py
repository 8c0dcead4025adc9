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
import hashlib
import os
import socket
from collections.abc import AsyncIterable, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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


class Store(Protocol):
    """What the image service needs from a place that keeps bytes."""

    id: str
    description: str

    async def add(self, key: str, chunks: AsyncIterable[bytes], *, area: str = "images",
                  max_size: int | None = None, check_prefix: PrefixCheck | None = None,
                  tag: str = "") -> StoredData:
        """Write every chunk, then publish atomically under ``key``.

        Raises :class:`SizeLimitExceeded` past ``max_size`` bytes and whatever
        ``check_prefix`` raises about the first bytes; on any error nothing
        is left behind.
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

    def __init__(self, root: Path, *, write_chunk: int = 4 << 20, read_chunk: int = 1 << 20,
                 threads: int = 4) -> None:
        self.root = root
        self.write_chunk = write_chunk
        self.read_chunk = read_chunk
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
                  tag: str = "") -> StoredData:
        loop = asyncio.get_running_loop()
        tmp = self.tmp_path(key, tag or upload_tag())
        final = self._final_path(area, key)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        md5 = hashlib.md5(usedforsecurity=False)
        sha = hashlib.sha512()
        size = 0
        prefix = b""
        checked = check_prefix is None
        pending: list[asyncio.Future[object]] = []
        parts: list[bytes] = []
        buffered = 0

        def flush(data: bytes) -> list[asyncio.Future[object]]:
            # md5, sha512 and the write each release the GIL: run side by side.
            return [loop.run_in_executor(self._pool, md5.update, data),
                    loop.run_in_executor(self._pool, sha.update, data),
                    loop.run_in_executor(self._pool, _write_all, fd, data)]

        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise SizeLimitExceeded(max_size)
                if len(prefix) < PREFIX_BYTES:
                    prefix += chunk[:PREFIX_BYTES - len(prefix)]
                if not checked and len(prefix) >= PREFIX_BYTES:
                    checked = True
                    assert check_prefix is not None
                    check_prefix(prefix)
                parts.append(chunk)
                buffered += len(chunk)
                if buffered >= self.write_chunk:
                    data = b"".join(parts)
                    parts.clear()
                    buffered = 0
                    await _gather(pending)
                    pending = flush(data)
            if not checked:
                assert check_prefix is not None
                check_prefix(prefix)
            if parts:
                await _gather(pending)
                pending = flush(b"".join(parts))
                parts.clear()
            await _gather(pending)
            pending = []
            await loop.run_in_executor(self._pool, os.fsync, fd)
            os.close(fd)
            fd = -1
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            await loop.run_in_executor(self._pool, _fsync_dir, final.parent)
        except BaseException:
            # Let in-flight writes finish before closing the descriptor.
            await asyncio.gather(*pending, return_exceptions=True)
            if fd >= 0:
                os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
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
        try:
            total = os.fstat(fd).st_size
            stop = total if end is None else min(end + 1, total)
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(fd, start, stop - start, os.POSIX_FADV_SEQUENTIAL)
            md5 = hashlib.md5(usedforsecurity=False) if expect_md5 else None
            hashing: asyncio.Future[object] | None = None
            held: bytes | None = None
            pos = start
            while pos < stop:
                data = await loop.run_in_executor(
                    self._pool, os.pread, fd, min(self.read_chunk, stop - pos), pos)
                if not data:
                    raise DataCorrupt(f"{path} ended at {pos} bytes")
                pos += len(data)
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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def _gather(futures: list[asyncio.Future[object]]) -> None:
    if futures:
        await asyncio.gather(*futures)
