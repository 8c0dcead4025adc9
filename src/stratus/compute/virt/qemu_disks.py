"""Disks of the QEMU driver: the per-host base image cache, overlays, config drives.

Base images are fetched once per host through the agent's image source,
checked while they stream against the image record (size, md5 ``checksum``,
``os_hash_value``), written to a `.part` file and renamed, so a crash never
leaves a half or wrong image behind. They live in `<instances>/_base/<image
id>` with a small JSON sidecar (size, sha256, format, boot properties). Images
that `qcow2stream` could not read in place (compressed qcow2, vmdk, ...) are
converted to plain qcow2 once, when cached. Kernels and ramdisks (AKI/ARI
images named by a disk image's ``kernel_id``/``ramdisk_id``) share the cache,
kept byte for byte; each guest gets its own hard link of them (`kernel`,
`ramdisk` in its directory), as Nova's libvirt driver keeps them per instance,
so they move with the guest.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from stratus.compute.virt.driver import DriverError, GuestSpec, ImageSource

GIB = 1 << 30


def qemu_img(*args: str | Path) -> str:
    out = subprocess.run(["qemu-img", *map(str, args)], capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise DriverError(f"qemu-img {args[0]} failed: {out.stderr.strip()}")
    return out.stdout


def image_info(path: Path) -> dict[str, Any]:
    return dict(json.loads(qemu_img("info", "-U", "--output=json", path)))


class BaseImages:
    """`<instances>/_base`: one verified copy of each image this host booted."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._locks: dict[str, asyncio.Lock] = {}

    def path(self, image_id: str) -> Path:
        return self.directory / image_id

    def meta(self, image_id: str) -> dict[str, Any]:
        try:
            return dict(json.loads((self.directory / f"{image_id}.json").read_text()))
        except (OSError, ValueError):
            return {}

    async def ensure(self, image_id: str, source: ImageSource | None,
                     record: dict[str, Any] | None = None, *, disk: bool = True) -> Path:
        """The cached copy of IMAGE_ID, fetched through SOURCE the first time.

        The data is checked against the image RECORD while it streams: its size,
        its md5 ``checksum`` and its ``os_hash_value`` (``os_hash_algo``, sha512 by
        default). A DISK is normalised for overlays (see :meth:`_normalise`); a
        kernel or ramdisk (``disk=False``) is kept byte for byte. The sidecar keeps
        the record's boot properties, so a guest whose image was deleted since
        still boots the way the image said."""
        path = self.path(image_id)
        lock = self._locks.setdefault(image_id, asyncio.Lock())
        async with lock:
            if path.exists():
                return path
            if source is None:
                raise DriverError(f"image {image_id} is not cached on this host and no "
                                  "image source was given")
            self.directory.mkdir(parents=True, exist_ok=True)
            part = self.directory / f".{image_id}.part"
            check = _Checks(record or {})
            try:
                with part.open("wb") as out:
                    async for chunk in source(image_id):
                        check.update(chunk)
                        await asyncio.to_thread(out.write, chunk)
                    out.flush()
                    os.fsync(out.fileno())
                check.verify(image_id)
                fmt = await asyncio.to_thread(self._normalise, part) if disk else "raw"
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            meta = {"size": check.size, "sha256": check.sha256.hexdigest(), "format": fmt,
                    **{k: record[k] for k in BOOT_PROPERTIES if record and record.get(k)}}
            (self.directory / f"{image_id}.json").write_text(json.dumps(meta) + "\n")
            os.replace(part, path)
            return path

    @staticmethod
    def _normalise(part: Path) -> str:
        """Keep raw and plain qcow2 as they are; convert anything else to plain qcow2."""
        fmt = image_info(part)["format"]
        if fmt == "raw":
            return fmt
        if fmt == "qcow2":
            extents = json.loads(qemu_img("map", "-U", "--output=json", part))
            if all("offset" in e for e in extents if e.get("data") and not e.get("zero")):
                if not image_info(part).get("backing-filename"):
                    return fmt
        tmp = part.with_suffix(".conv")
        qemu_img("convert", "-O", "qcow2", part, tmp)
        os.replace(tmp, part)
        return "qcow2"

    def remove(self, image_id: str) -> None:
        self.path(image_id).unlink(missing_ok=True)
        (self.directory / f"{image_id}.json").unlink(missing_ok=True)


class _Checks:
    """Size and digests of data as it streams, against what the image record says."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False) if record.get("checksum") else None
        algo = record.get("os_hash_algo") or "sha512"
        self.multihash = None
        if record.get("os_hash_value") and algo in hashlib.algorithms_available:
            self.multihash = hashlib.new(algo)

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        for digest in (self.sha256, self.md5, self.multihash):
            if digest is not None:
                digest.update(chunk)

    def verify(self, image_id: str) -> None:
        if self.size == 0:
            raise DriverError(f"image {image_id} has no data")
        want = self.record.get("size")
        if isinstance(want, int) and want != self.size:
            raise DriverError(f"image {image_id}: got {self.size} bytes, its record says "
                              f"{want}")
        for digest, key in ((self.md5, "checksum"), (self.multihash, "os_hash_value")):
            if digest is not None and digest.hexdigest() != self.record[key]:
                raise DriverError(f"image {image_id}: its data does not match its {key} "
                                  f"({digest.name}); not using it")


# Image properties that make a guest boot its kernel directly (Nova's libvirt driver).
BOOT_PROPERTIES = ("kernel_id", "ramdisk_id", "os_command_line")
# Nova's default when the image has no os_command_line: the root disk and a console.
DEFAULT_CMDLINE = "root=/dev/vda console=tty0 console=ttyS0"


def boot_properties(record: dict[str, Any] | None) -> dict[str, str]:
    """kernel_id/ramdisk_id/os_command_line of an image record (top level or nested)."""
    if not record:
        return {}
    nested = record.get("properties") or {}
    out = {}
    for key in BOOT_PROPERTIES:
        value = record.get(key) or nested.get(key)
        if isinstance(value, str) and value:
            out[key] = value
    return out


async def image_record(source: ImageSource | None, image_id: str) -> dict[str, Any] | None:
    """The image's record through SOURCE; None when the source cannot say (a bare
    data stream: the image is then cached unchecked and boots from its disk)."""
    show = getattr(source, "show", None)
    return await show(image_id) if show is not None else None


async def fetch_boot(bases: BaseImages, image_id: str, record: dict[str, Any] | None,
                     source: ImageSource | None) -> dict[str, Any] | None:
    """The kernel (and ramdisk) that image IMAGE_ID (its RECORD) names, in the cache.

    None when the image names no kernel: the guest boots from its disk (BIOS).
    Otherwise ``{"kernel_id", "ramdisk_id", "append", "kernel", "initrd"}`` with
    the cached files' paths. A kernel or ramdisk image that does not exist (or
    the caller cannot see) or is not active fails with a message naming it."""
    return await fetch_kernel(bases, boot_properties(record)
                              or boot_properties(bases.meta(image_id)), image_id, source)


async def fetch_kernel(bases: BaseImages, props: dict[str, Any], image_id: str,
                       source: ImageSource | None) -> dict[str, Any] | None:
    """The kernel and ramdisk boot properties PROPS (of image IMAGE_ID) name, in the
    cache: what :func:`fetch_boot` returns. A guest's own ``boot`` entry (guest.json)
    is such PROPS too (``append`` stands for ``os_command_line``), so a migration's
    destination boots the guest as its source did, whatever its image became."""
    props = {**({"os_command_line": props["append"]} if props.get("append") else {}),
             **{k: v for k, v in props.items() if k in BOOT_PROPERTIES and v}}
    if not props.get("kernel_id"):
        return None
    paths: dict[str, Path | None] = {"kernel_id": None, "ramdisk_id": None}
    for key, what in (("kernel_id", "kernel"), ("ramdisk_id", "ramdisk")):
        wanted = props.get(key)
        if not wanted:
            continue
        if bases.path(wanted).exists():
            paths[key] = bases.path(wanted)
            continue
        found = await source.show(wanted) if source is not None else None
        if found is None:
            raise DriverError(f"the {what} image {wanted} (the {key} of image {image_id}) "
                              "does not exist or is not visible")
        if found.get("status") != "active":
            raise DriverError(f"the {what} image {wanted} (the {key} of image {image_id}) "
                              f"is not active (status {found.get('status')})")
        try:
            paths[key] = await bases.ensure(wanted, source, found, disk=False)
        except Exception as exc:  # noqa: BLE001 - one message naming the image, whatever broke
            raise DriverError(f"the {what} image {wanted} (the {key} of image {image_id}) "
                              f"could not be fetched: {exc}") from exc
    return {"kernel_id": props["kernel_id"], "ramdisk_id": props.get("ramdisk_id"),
            "append": props.get("os_command_line") or DEFAULT_CMDLINE,
            "kernel": paths["kernel_id"], "initrd": paths["ramdisk_id"]}


def place_boot(fetched: dict[str, Any] | None, directory: Path,
               prefix: str = "") -> dict[str, Any] | None:
    """Link the fetched kernel/ramdisk into the guest's DIRECTORY (as PREFIX+``kernel``,
    PREFIX+``ramdisk``); returns the guest.json entry saying how the guest boots."""
    for name in ("kernel", "ramdisk"):
        (directory / f"{prefix}{name}").unlink(missing_ok=True)
    if fetched is None:
        return None
    place_file(fetched["kernel"], directory / f"{prefix}kernel")
    if fetched["initrd"] is not None:
        place_file(fetched["initrd"], directory / f"{prefix}ramdisk")
    return {"kernel_id": fetched["kernel_id"], "ramdisk_id": fetched["ramdisk_id"],
            "kernel": f"{prefix}kernel",
            "initrd": f"{prefix}ramdisk" if fetched["initrd"] is not None else None,
            "append": fetched["append"]}


def place_file(cached: Path, target: Path) -> None:
    """TARGET becomes a copy of the cached file: a hard link when it can be (the cache
    and the guest's directory share a file system), else a copy."""
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(cached, tmp)
    except OSError:
        shutil.copyfile(cached, tmp)
    os.replace(tmp, target)


def hand_over_boot(source: Path, dest: Path) -> None:
    """A guest directory moved to another host's (not shared): its kernel, ramdisk and
    the boot entries of guest.json go with it, so the destination boots it the same way."""
    try:
        rec = json.loads((source / "guest.json").read_text())
        theirs = json.loads((dest / "guest.json").read_text())
    except (OSError, ValueError):
        return
    if theirs.get("boot"):
        return  # the destination fetched them itself (prepare_incoming)
    for name in ("kernel", "ramdisk"):
        if (source / name).exists():
            place_file(source / name, dest / name)
    theirs["boot"] = rec.get("boot")
    tmp = dest / "guest.json.tmp"
    tmp.write_text(json.dumps(theirs, indent=1) + "\n")
    os.replace(tmp, dest / "guest.json")


def backing_image(bases: BaseImages, overlay: Path) -> str | None:
    """The id of the cached image OVERLAY sits on (None: flat, or backed elsewhere).
    Not always the server's image: after an unshelve it is the shelve snapshot."""
    backing = image_info(overlay).get("full-backing-filename")
    if not backing:
        return None
    path = Path(backing)
    return path.name if path.parent.resolve() == bases.directory.resolve() else None


def create_overlay(base: Path, overlay: Path, root_gb: int) -> None:
    fmt = image_info(base)["format"]
    tmp = overlay.with_suffix(".tmp")
    qemu_img("create", "-q", "-f", "qcow2", "-F", fmt, "-b", base.resolve(), tmp)
    grow(tmp, root_gb)
    os.replace(tmp, overlay)


def virtual_size(path: Path) -> int:
    return int(image_info(path)["virtual-size"])


def grow(path: Path, root_gb: int) -> bool:
    """Grow PATH to ROOT_GB (never shrink; 0 keeps the image's size). True if it grew."""
    wanted = root_gb * GIB
    if root_gb <= 0 or virtual_size(path) >= wanted:
        return False
    qemu_img("resize", "-q", path, str(wanted))
    return True


def user_data_bytes(value: str | None) -> bytes | None:
    """The API keeps user data base64-encoded; a guest gets the decoded bytes."""
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value.encode()


def meta_data(spec: GuestSpec, availability_zone: str = "nova") -> dict[str, Any]:
    data: dict[str, Any] = {"uuid": spec.uuid, "name": spec.hostname or spec.name,
                            "hostname": spec.hostname or spec.name, "launch_index": 0,
                            "availability_zone": availability_zone,
                            "meta": dict(spec.metadata), "project_id": ""}
    if spec.key_data:
        data["public_keys"] = {"key": spec.key_data if spec.key_data.endswith("\n")
                               else spec.key_data + "\n"}
        data["keys"] = [{"name": "key", "type": "ssh", "data": spec.key_data}]
    if spec.admin_password:
        data["admin_pass"] = spec.admin_password
    return data


def make_config_drive(path: Path, spec: GuestSpec) -> None:
    """A vfat config drive labelled config-2 with openstack/latest/{meta_data.json,user_data}."""
    with tempfile.TemporaryDirectory(dir=path.parent) as work:
        latest = Path(work) / "openstack" / "latest"
        latest.mkdir(parents=True)
        (latest / "meta_data.json").write_text(json.dumps(meta_data(spec)))
        user_data = user_data_bytes(spec.user_data)
        if user_data is not None:
            (latest / "user_data").write_bytes(user_data)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        kib = 1024 + (len(user_data or b"") // 1024) * 2
        for argv in (["mkfs.vfat", "-n", "config-2", "-C", str(tmp), str(kib)],
                     ["mcopy", "-i", str(tmp), "-s", str(Path(work) / "openstack"), "::/"]):
            out = subprocess.run(argv, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise DriverError(f"config drive: {argv[0]} failed: {out.stderr.strip()}")
        os.replace(tmp, path)
