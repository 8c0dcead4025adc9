"""Consoles of the QEMU driver: the serial log, the VNC server, an NMI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stratus.compute.virt.driver import ConsoleEndpoint, DriverError, NotSupported

if TYPE_CHECKING:
    from stratus.compute.virt.qemu import QemuDriver


async def console_output(drv: QemuDriver, uuid: str, length: int | None = None) -> str:
    drv._mine(uuid)
    log_path = drv.run_dir(uuid) / "serial.log"
    try:
        with log_path.open("rb") as f:
            f.seek(max(0, log_path.stat().st_size - (1 << 20)))
            text = f.read().decode(errors="replace").replace("\r\n", "\n")
    except FileNotFoundError:
        return ""
    lines = text.splitlines()
    if length is not None:
        lines = lines[-length:] if length > 0 else []
    return "\n".join(lines) + ("\n" if lines else "")


async def get_vnc_console(drv: QemuDriver, uuid: str) -> ConsoleEndpoint:
    """The VNC server of the running QEMU: it takes the first free display of
    127.0.0.1:5900-5999 (``-vnc 127.0.0.1:0,to=99``), so ask QMP which."""
    drv._mine(uuid)
    if not drv.vnc:
        raise NotSupported("this QEMU host runs guests without VNC")
    guest = drv._proc(uuid)
    if guest is None:
        raise DriverError("the guest is not running")
    info = await drv.qmp(guest, "query-vnc")
    if not info.get("enabled") or not info.get("service"):
        raise NotSupported(f"guest {uuid} has no VNC server")
    return ConsoleEndpoint(host=str(info["host"]), port=int(info["service"]))


async def trigger_crash_dump(drv: QemuDriver, uuid: str) -> None:
    drv._mine(uuid)
    guest = drv._proc(uuid)
    if guest is None:
        raise DriverError("the guest is not running")
    await drv.qmp(guest, "inject-nmi")
