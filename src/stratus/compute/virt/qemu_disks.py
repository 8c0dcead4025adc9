"""Disks of the QEMU driver: the per-host base image cache, overlays, config drives.

Base images are fetched once per host through the agent's image source (the
image client checks length and md5 while streaming), written to a `.part`
file and renamed, so a crash never leaves a half image behind. They live in
`<instances>/_base/<image id>` with a small JSON sidecar (size, sha256,
format). Images that `qcow2stream` could not read in place (compressed qcow2,
vmdk, ...) are converted to plain qcow2 once, when cached.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import os
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

    async def ensure(self, image_id: str, source: ImageSource | None) -> Path:
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
            digest = hashlib.sha256()
            size = 0
            try:
                with part.open("wb") as out:
                    async for chunk in source(image_id):
                        digest.update(chunk)
                        size += len(chunk)
                        await asyncio.to_thread(out.write, chunk)
                    out.flush()
                    os.fsync(out.fileno())
                fmt = await asyncio.to_thread(self._normalise, part)
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            if size == 0:
                part.unlink(missing_ok=True)
                raise DriverError(f"image {image_id} has no data")
            (self.directory / f"{image_id}.json").write_text(json.dumps(
                {"size": size, "sha256": digest.hexdigest(), "format": fmt}) + "\n")
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
