"""The file store: hashes, atomic publication, cleanup, verified reads."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stratus.image.store import DataCorrupt, FileStore, SizeLimitExceeded, StoreError


async def chunks_of(data: bytes, size: int = 100_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def failing_after(data: bytes, error: BaseException) -> AsyncIterator[bytes]:
    yield data
    raise error


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    made = FileStore(tmp_path / "store", write_chunk=256 * 1024, read_chunk=64 * 1024)
    yield made
    made.close()


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_add_computes_md5_sha512_and_size(store: FileStore) -> None:
    data = bytes(range(256)) * 5000
    stored = await store.add("11111111-1111-1111-1111-111111111111", chunks_of(data))
    assert stored.size == len(data)
    assert stored.checksum == hashlib.md5(data).hexdigest()
    assert stored.hash_algo == "sha512"
    assert stored.hash_value == hashlib.sha512(data).hexdigest()
    assert store.path_of(stored.location).read_bytes() == data


async def test_data_is_published_only_when_complete(store: FileStore) -> None:
    key = "22222222-2222-2222-2222-222222222222"
    seen_during: list[list[Path]] = []

    async def slow() -> AsyncIterator[bytes]:
        yield b"a" * 300_000
        seen_during.append(files_under(store.root / "images"))
        yield b"b" * 300_000

    stored = await store.add(key, slow(), tag="host.1")
    assert seen_during == [[]]  # nothing under images/ while writing
    assert files_under(store.root / "tmp") == []
    assert files_under(store.root / "images") == [store.path_of(stored.location)]


async def test_interrupted_add_leaves_no_file(store: FileStore) -> None:
    with pytest.raises(ConnectionAbortedError):
        await store.add("33333333-3333-3333-3333-333333333333",
                        failing_after(b"x" * 500_000, ConnectionAbortedError()))
    assert files_under(store.root) == []


async def test_cancelled_add_leaves_no_file(store: FileStore) -> None:
    gate = asyncio.Event()

    async def hanging() -> AsyncIterator[bytes]:
        yield b"y" * 400_000
        await gate.wait()
        yield b""

    task = asyncio.create_task(store.add("44444444-4444-4444-4444-444444444444", hanging()))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert files_under(store.root) == []


async def test_size_limit_cuts_off_and_cleans_up(store: FileStore) -> None:
    with pytest.raises(SizeLimitExceeded):
        await store.add("55555555-5555-5555-5555-555555555555",
                        chunks_of(b"z" * 1_000_000), max_size=999_999)
    assert files_under(store.root) == []


async def test_prefix_check_can_refuse_data(store: FileStore) -> None:
    def refuse(prefix: bytes) -> None:
        if prefix.startswith(b"BAD"):
            raise ValueError("bad header")

    stored = await store.add("66666666-6666-6666-6666-666666666666",
                             chunks_of(b"BAD" + b"0" * 9000))
    assert stored.size == 9003
    with pytest.raises(ValueError):
        await store.add("77777777-7777-7777-7777-777777777777", chunks_of(b"BAD!"),
                        check_prefix=refuse)
    assert not (store.root / "images" / "77").exists()


async def test_read_verifies_md5_and_fails_on_corruption(store: FileStore) -> None:
    data = b"0123456789" * 50_000
    stored = await store.add("88888888-8888-8888-8888-888888888888", chunks_of(data))
    got = b"".join([c async for c in store.open(stored.location, expect_md5=stored.checksum)])
    assert got == data
    path = store.path_of(stored.location)
    raw = bytearray(path.read_bytes())
    raw[123_456] ^= 0xFF
    path.write_bytes(bytes(raw))
    received = bytearray()
    with pytest.raises(DataCorrupt):
        async for chunk in store.open(stored.location, expect_md5=stored.checksum):
            received += chunk
    assert len(received) < len(data)  # the last chunk is held back


async def test_ranges(store: FileStore) -> None:
    data = bytes(range(256)) * 1000
    stored = await store.add("99999999-9999-9999-9999-999999999999", chunks_of(data))
    got = b"".join([c async for c in store.open(stored.location, start=1000, end=70_000)])
    assert got == data[1000:70_001]


async def test_promote_moves_staged_data(store: FileStore) -> None:
    key = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"
    staged = await store.add(key, chunks_of(b"s" * 1000), area="staging")
    assert "staging" in staged.location
    final = await store.promote(staged.location, key)
    assert store.path_of(final).read_bytes() == b"s" * 1000
    assert not store.path_of(staged.location).exists()


async def test_locations_outside_the_store_are_refused(store: FileStore) -> None:
    with pytest.raises(StoreError):
        store.path_of("file:///etc/passwd")


@pytest.mark.parametrize("direct_io", [True, False])
@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 256 * 1024, 256 * 1024 + 4097, 1_000_003])
async def test_every_byte_lands_whatever_the_alignment(tmp_path: Path, size: int,
                                                       direct_io: bool) -> None:
    # O_DIRECT writes go through an aligned buffer; the unaligned tail and
    # blocks spanning buffer boundaries must come out byte-identical.
    store = FileStore(tmp_path / "s", write_chunk=256 * 1024, direct_io=direct_io)
    try:
        data = hashlib.sha512(str(size).encode()).digest() * (size // 64 + 1)
        data = data[:size]
        stored = await store.add("12121212-1212-1212-1212-121212121212",
                                 chunks_of(data, 70_001))
        assert stored.size == size and stored.checksum == hashlib.md5(data).hexdigest()
        assert store.path_of(stored.location).read_bytes() == data
    finally:
        store.close()
