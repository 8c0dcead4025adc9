"""Build the Stratus test guest from Debian packages, offline after the first download.

    artifacts = build_guest(data_dir / "guest")
    artifacts.disk      # bootable qcow2 (64 MiB virtual): MBR + FAT32 + syslinux
    artifacts.kernel    # vmlinuz, artifacts.initrd: initramfs (busybox + modules)
    artifacts.vmlinux   # uncompressed kernel for direct (PVH) boot: ~2x faster under TCG

Artifacts live in `<cache>/<kernel release>-<key>/`, where the key hashes the
package versions, the guest scripts and this builder's format. A build whose
key exists returns at once; the downloaded .debs stay in `<cache>/debs/`.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import lzma
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stratus.guest import debs, scripts
from stratus.guest.cpio import CpioWriter
from stratus.guest.debs import GuestBuildError, Package, run
from stratus.guest.disk import build_disk

FORMAT = 1  # bump when the builder's output changes for the same inputs
DISK_MIB = 64
MODULES = ("virtio_pci", "virtio_net", "virtio_blk", "vfat", "nls_cp437", "nls_ascii",
           "isofs", "button", "evdev")
CMDLINE = "console=tty0 console=ttyS0,115200 quiet"
MANIFEST = "manifest.json"

Step = Callable[[str], AbstractContextManager[Any]]


@contextlib.contextmanager
def _quiet_step(_: str) -> Iterator[None]:
    yield


@dataclass(frozen=True)
class GuestArtifacts:
    directory: Path
    disk: Path
    kernel: Path
    initrd: Path
    vmlinux: Path | None
    cmdline: str
    manifest: dict[str, Any] = field(repr=False)
    cached: bool = False

    @classmethod
    def load(cls, directory: Path, *, cached: bool = True) -> GuestArtifacts:
        manifest = json.loads((directory / MANIFEST).read_text())
        vmlinux = directory / "vmlinux"
        return cls(directory=directory, disk=directory / "disk.qcow2",
                   kernel=directory / "vmlinuz", initrd=directory / "initrd.gz",
                   vmlinux=vmlinux if vmlinux.exists() else None,
                   cmdline=manifest["cmdline"], manifest=manifest, cached=cached)

    def complete(self) -> bool:
        return all(p.exists() for p in (self.disk, self.kernel, self.initrd))


def find_cached(cache: Path) -> GuestArtifacts | None:
    """The newest complete build in CACHE, with no apt lookup (for services at startup)."""
    builds = sorted(cache.glob(f"*/{MANIFEST}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for manifest in builds:
        artifacts = GuestArtifacts.load(manifest.parent)
        if artifacts.complete():
            return artifacts
    return None


def _apt_stamp() -> str:
    """Changes whenever apt's lists or the installed packages change."""
    stamps = []
    for path in ("/var/lib/apt/lists", "/var/lib/dpkg/status"):
        try:
            stamps.append(str(os.stat(path).st_mtime_ns))
        except OSError:
            stamps.append("-")
    return ":".join(stamps)


def _versions(cache: Path) -> dict[str, str]:
    """Package versions to build from; memoized while apt's state is unchanged (~2 s saved)."""
    memo = cache / "versions.json"
    stamp = _apt_stamp()
    try:
        saved = json.loads(memo.read_text())
        if saved.get("stamp") == stamp:
            return dict(saved["versions"])
    except (OSError, ValueError, KeyError):
        pass
    debs_dir = cache / "debs"
    kernel = debs.resolve_kernel(debs_dir)
    versions = {"kernel": str(kernel), "kernel_release": debs.kernel_release(kernel),
                "busybox": str(debs.resolve("busybox-static", debs_dir)),
                "syslinux": debs.host_version("syslinux")}
    memo.write_text(json.dumps({"stamp": stamp, "versions": versions}, indent=2) + "\n")
    return versions


def _inputs(cache: Path) -> dict[str, Any]:
    script_hash = hashlib.sha256(json.dumps(scripts.FILES, sort_keys=True).encode()).hexdigest()
    return {"format": FORMAT, **_versions(cache), "modules": list(MODULES), "cmdline": CMDLINE,
            "disk_mib": DISK_MIB, "scripts": script_hash[:16]}


def build_guest(cache: Path, *, force: bool = False, step: Step = _quiet_step) -> GuestArtifacts:
    """Build (or find in CACHE) the guest artifacts; STEP(name) wraps each stage."""
    cache.mkdir(parents=True, exist_ok=True)
    debs_dir = cache / "debs"
    with step("resolve package versions"):
        inputs = _inputs(cache)
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:12]
    target = cache / f"{inputs['kernel_release']}-{key}"
    if not force and (target / MANIFEST).exists():
        found = GuestArtifacts.load(target)
        if found.complete():
            return found

    work = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
    try:
        with step(f"fetch {inputs['kernel']} and {inputs['busybox']}"):
            kernel_deb = debs.fetch(_package(inputs["kernel"]), debs_dir)
            busybox_deb = debs.fetch(_package(inputs["busybox"]), debs_dir)
        out = work / "out"
        out.mkdir()
        release = inputs["kernel_release"]
        with step("unpack the kernel package"):
            kroot = debs.unpack(kernel_deb, work / "kernel")
            run("depmod", "-b", kroot, release)
            shutil.copyfile(kroot / "boot" / f"vmlinuz-{release}", out / "vmlinuz")
        with step("initramfs: busybox, modules, init scripts"):
            bbroot = debs.unpack(busybox_deb, work / "busybox")
            modules = _module_paths(kroot, release)
            (out / "initrd.gz").write_bytes(_initramfs(bbroot / "bin" / "busybox", modules))
        with step("uncompressed kernel for direct boot"):
            vmlinux = extract_vmlinux(out / "vmlinuz")
            if vmlinux is not None:
                (out / "vmlinux").write_bytes(vmlinux)
        with step(f"bootable disk: MBR + FAT32 + syslinux, qcow2 {DISK_MIB} MiB"):
            build_disk(out / "disk.qcow2", {"vmlinuz": out / "vmlinuz",
                                            "initrd.gz": out / "initrd.gz"},
                       append=CMDLINE, size_mib=DISK_MIB, workdir=work)
        manifest = {**inputs, "key": key, "built_at": time.time(),
                    "files": {p.name: {"size": p.stat().st_size, "sha256": _sha256(p)}
                              for p in sorted(out.iterdir())}}
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(out, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _prune(cache, keep=target, keep_debs=(kernel_deb, busybox_deb))
    return GuestArtifacts.load(target, cached=False)


def _prune(cache: Path, *, keep: Path, keep_debs: tuple[Path, ...]) -> None:
    """Drop older builds and .debs: a new build supersedes them."""
    for manifest in cache.glob(f"*/{MANIFEST}"):
        if manifest.parent != keep:
            shutil.rmtree(manifest.parent, ignore_errors=True)
    for deb in (cache / "debs").glob("*.deb"):
        if deb not in keep_debs:
            deb.unlink(missing_ok=True)


def _package(spec: str) -> Package:
    name, version = spec.split("=", 1)
    return Package(name, version)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _module_paths(kroot: Path, release: str) -> list[Path]:
    """MODULES and their dependencies, in load order, without duplicates."""
    ordered: list[Path] = []
    for name in MODULES:
        out = run("modprobe", "-d", kroot, "-S", release, "--show-depends", name)
        for line in out.splitlines():
            parts = line.split()
            if parts[:1] == ["insmod"]:
                path = Path(parts[1])
                if path not in ordered:
                    ordered.append(path)
    if not ordered:
        raise GuestBuildError(f"no kernel modules found for {', '.join(MODULES)}")
    return ordered


def _initramfs(busybox: Path, modules: list[Path]) -> bytes:
    cpio = CpioWriter()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "run", "tmp",
              "root", "mnt", "var", "lib/modules"):
        cpio.mkdir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.add_file("bin/busybox", busybox, 0o755)
    for applet in run(busybox, "--list-full").split():
        if applet != "bin/busybox":
            cpio.symlink(applet, "/bin/busybox")
    for module in modules:
        cpio.add_file(f"lib/modules/{module.name}", module, 0o644)
    cpio.add_bytes("etc/stratus/modules", "".join(f"{m.name}\n" for m in modules).encode())
    for path, (content, mode) in scripts.FILES.items():
        cpio.add_bytes(path, content.encode(), mode)
    return cpio.gzipped()


def extract_vmlinux(bzimage: Path) -> bytes | None:
    """The ELF kernel inside a bzImage (xz or gzip payload), for PVH direct boot."""
    data = bzimage.read_bytes()
    if data[0x202:0x206] != b"HdrS":
        return None
    setup_sects = data[0x1F1] or 4
    offset, length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + offset
    payload = data[start:start + length]
    if payload.startswith(b"\xfd7zXZ\x00"):
        elf = lzma.LZMADecompressor().decompress(payload)
    elif payload.startswith(b"\x1f\x8b"):
        elf = gzip.decompress(payload)
    else:
        return None  # zstd/lz4 payloads: boot the bzImage instead
    return elf if elf.startswith(b"\x7fELF") else None
