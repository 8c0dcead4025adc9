"""Debian packages the guest is made from: pick versions with apt-cache, fetch, unpack.

Only the ordinary apt clients are used: `apt-cache` to learn which version
this host's package lists offer, `apt-get download` to fetch a .deb (once:
the .deb stays in the cache), `dpkg -x` to unpack it. With no package lists
(offline, fresh container), the newest .deb already in the cache is used.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from stratus.errors import StratusError

KERNEL_META = "linux-image-amd64"
_KERNEL_RE = re.compile(r"^linux-image-(\d+\.\d+\.\d+-\d+-amd64)$")


class GuestBuildError(StratusError):
    """The guest image could not be built; the message says what to install or fix."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}={self.version}"


def run(*cmd: str | Path, cwd: Path | None = None, timeout: float = 600) -> str:
    try:
        done = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise GuestBuildError(f"{cmd[0]} not found: {_hint(str(cmd[0]))}") from exc
    if done.returncode != 0:
        raise GuestBuildError(f"{' '.join(str(c) for c in cmd[:3])} failed: "
                              f"{(done.stderr or done.stdout).strip()[-500:]}")
    return done.stdout


def _hint(tool: str) -> str:
    package = {"mkfs.vfat": "dosfstools", "mcopy": "mtools", "mmd": "mtools",
               "syslinux": "syslinux", "qemu-img": "qemu-utils", "depmod": "kmod",
               "modprobe": "kmod", "apt-get": "apt", "apt-cache": "apt",
               "dpkg": "dpkg"}.get(tool, tool)
    return f"install it with: apt-get install {package} (scripts/install.sh does)"


def _candidate(name: str) -> str | None:
    try:
        out = run("apt-cache", "policy", name, timeout=60)
    except GuestBuildError:
        return None
    match = re.search(r"Candidate:\s*(\S+)", out)
    return match.group(1) if match and match.group(1) != "(none)" else None


def _cached(debs: Path, name: str) -> Package | None:
    found = []
    for deb in debs.glob(f"{name}_*.deb"):
        version = run("dpkg-deb", "-f", deb, "Version").strip()
        found.append(Package(name, version))
    if not found:
        return None
    newest = found[0]
    for pkg in found[1:]:
        if subprocess.run(["dpkg", "--compare-versions", pkg.version, "gt", newest.version],
                          check=False).returncode == 0:
            newest = pkg
    return newest


def resolve(name: str, debs: Path) -> Package:
    """The version apt offers for NAME, else the newest one already downloaded."""
    version = _candidate(name)
    if version:
        return Package(name, version)
    cached = _cached(debs, name)
    if cached:
        return cached
    raise GuestBuildError(f"no version of {name} is known: run apt-get update (needs the "
                          "Debian package mirror once; the .deb is cached afterwards)")


def resolve_kernel(debs: Path) -> Package:
    """The kernel image package the `linux-image-amd64` meta-package points at."""
    try:
        out = run("apt-cache", "depends", KERNEL_META, timeout=60)
        names = [m.group(0) for line in out.splitlines()
                 if (m := _KERNEL_RE.match(line.split(":", 1)[-1].strip()))]
    except GuestBuildError:
        names = []
    if names:
        return resolve(names[0], debs)
    cached = sorted(p.name.split("_")[0] for p in debs.glob("linux-image-*_*.deb")
                    if _KERNEL_RE.match(p.name.split("_")[0]))
    if cached:
        return resolve(cached[-1], debs)
    raise GuestBuildError(f"apt knows no {KERNEL_META}: run apt-get update (Debian 12 lists)")


def kernel_release(pkg: Package) -> str:
    match = _KERNEL_RE.match(pkg.name)
    if not match:
        raise GuestBuildError(f"{pkg.name} is not a Debian kernel image package")
    return match.group(1)


def host_version(name: str) -> str:
    """Version of an installed build tool (part of the cache key)."""
    try:
        return run("dpkg-query", "-W", "-f=${Version}", name).strip()
    except GuestBuildError as exc:
        raise GuestBuildError(f"{name} is not installed: {_hint(name)}") from exc


def fetch(pkg: Package, debs: Path) -> Path:
    """The .deb of PKG from the cache, downloaded with apt-get on first use."""
    debs.mkdir(parents=True, exist_ok=True)
    for deb in debs.glob(f"{pkg.name}_*.deb"):
        if run("dpkg-deb", "-f", deb, "Version").strip() == pkg.version:
            return deb
    with tempfile.TemporaryDirectory(dir=debs, prefix=".download-") as tmp:
        run("apt-get", "download", "-q", str(pkg), cwd=Path(tmp))
        got = list(Path(tmp).glob(f"{pkg.name}_*.deb"))
        if not got:
            raise GuestBuildError(f"apt-get download {pkg} produced no .deb")
        target = debs / got[0].name
        shutil.move(got[0], target)
    return target


def unpack(deb: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    run("dpkg", "-x", deb, dest)
    return dest
