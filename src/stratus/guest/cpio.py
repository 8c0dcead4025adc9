"""A reproducible cpio "newc" archive writer, the format the kernel unpacks as initramfs."""

from __future__ import annotations

import gzip
import io
import stat
from pathlib import Path

_TRAILER = "TRAILER!!!"


class CpioWriter:
    """Collect directories, files and symlinks; `gzipped()` gives the archive.

    Every entry is owned by root with mtime 0, so the same inputs give the
    same bytes (and the same image checksum) on every build.
    """

    def __init__(self) -> None:
        self._out = io.BytesIO()
        self._ino = 1
        self._dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0),
               ) -> None:
        encoded = name.encode() + b"\0"
        header = "070701" + "".join(f"{v:08x}" for v in (
            self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, *rdev, len(encoded), 0))
        self._ino += 1
        self._out.write(header.encode() + encoded)
        self._pad()
        self._out.write(data)
        self._pad()

    def _pad(self) -> None:
        self._out.write(b"\0" * (-self._out.tell() % 4))

    def mkdir(self, path: str) -> None:
        path = path.strip("/")
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub and sub not in self._dirs:
                self._dirs.add(sub)
                self._entry(sub, stat.S_IFDIR | 0o755)

    def add_bytes(self, path: str, data: bytes, mode: int = 0o644) -> None:
        path = path.strip("/")
        if "/" in path:
            self.mkdir(path.rsplit("/", 1)[0])
        self._entry(path, stat.S_IFREG | mode, data)

    def add_file(self, path: str, source: Path, mode: int | None = None) -> None:
        self.add_bytes(path, source.read_bytes(), mode if mode is not None else
                       stat.S_IMODE(source.stat().st_mode))

    def symlink(self, path: str, target: str) -> None:
        path = path.strip("/")
        if "/" in path:
            self.mkdir(path.rsplit("/", 1)[0])
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        path = path.strip("/")
        if "/" in path:
            self.mkdir(path.rsplit("/", 1)[0])
        self._entry(path, stat.S_IFCHR | mode, rdev=(major, minor))

    def gzipped(self) -> bytes:
        self._entry(_TRAILER, 0)
        return gzip.compress(self._out.getvalue(), compresslevel=9, mtime=0)
