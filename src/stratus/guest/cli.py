"""``stratus image build``: make the test guest image from Debian packages."""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click


@click.command("build")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Also copy the bootable qcow2 here.")
@click.option("--force", is_flag=True, help="Rebuild even when the cache has this build.")
@click.pass_context
def build(ctx: click.Context, output: Path | None, force: bool) -> None:
    """Build the Stratus guest (qcow2 + kernel/initramfs) offline from Debian packages."""
    from rich.console import Console
    from rich.table import Table

    from stratus.guest.builder import build_guest
    from stratus.guest.debs import GuestBuildError
    from stratus.settings import ConfigError, load_settings

    obj = ctx.find_root().ensure_object(dict)
    try:
        settings = load_settings(obj.get("config"), data_dir=obj.get("data_dir"))
    except ConfigError as exc:
        click.echo(f"stratus: {exc}", err=True)
        sys.exit(2)
    console = Console(highlight=False)

    @contextlib.contextmanager
    def step(name: str) -> Iterator[None]:
        t0 = time.monotonic()
        with console.status(name):
            yield
        console.print(f"[green]✔[/] {name} [dim]({time.monotonic() - t0:.1f}s)[/]")

    t0 = time.monotonic()
    try:
        artifacts = build_guest(settings.data_dir / "guest", force=force, step=step)
    except GuestBuildError as exc:
        console.print(f"[red]✘[/] {exc.message}")
        sys.exit(1)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifacts.disk, output)
    how = "from the cache" if artifacts.cached else "built"
    table = Table(title=f"Stratus guest {how} in {time.monotonic() - t0:.1f}s: "
                        f"{artifacts.directory}", title_justify="left")
    table.add_column("artifact")
    table.add_column("file")
    table.add_column("size", justify="right")
    rows = [("disk (qcow2)", artifacts.disk), ("kernel", artifacts.kernel),
            ("initramfs", artifacts.initrd)]
    if artifacts.vmlinux is not None:
        rows.append(("vmlinux (direct boot)", artifacts.vmlinux))
    if output is not None:
        rows.append(("copy", output))
    for label, path in rows:
        shown = path.name if path.parent == artifacts.directory else str(path)
        table.add_row(label, shown, f"{path.stat().st_size / 2**20:.1f} MiB")
    console.print(table)
    m = artifacts.manifest
    console.print(f"from {m['kernel']}, {m['busybox']}, syslinux {m['syslinux']}; "
                  f"{m['disk_mib']} MiB virtual disk")
