"""``stratus``: up, serve, status, doctor, db upgrade."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from stratus.settings import ConfigError, Settings, load_settings


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    obj = ctx.ensure_object(dict)
    try:
        return load_settings(obj.get("config"), data_dir=obj.get("data_dir"), **overrides)
    except ConfigError as exc:
        click.echo(f"stratus: {exc}", err=True)
        sys.exit(2)


def _logging(settings: Settings, verbose: bool) -> None:
    level = logging.DEBUG if verbose else getattr(logging, settings.log_level.upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    if not verbose:
        logging.getLogger("stratus.access").setLevel(max(level, logging.WARNING))
        logging.getLogger("uvicorn.error").setLevel(max(level, logging.WARNING))
        logging.getLogger("alembic").setLevel(max(level, logging.WARNING))


@click.group()
@click.option("--config", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where state lives.")
@click.pass_context
def cli(ctx: click.Context, config: str | None, data_dir: str | None) -> None:
    """Stratus: an OpenStack-compatible cloud in one command."""
    ctx.ensure_object(dict).update(config=config, data_dir=data_dir)


async def _run(settings: Settings, *, banner: bool) -> None:
    from stratus import runtime as rt

    t0 = time.monotonic()
    runtime = await rt.build(settings)
    process = await rt.start(runtime)
    elapsed = time.monotonic() - t0
    if banner:
        _print_banner(runtime, elapsed)
    else:
        logging.getLogger("stratus").info("started %s in %.2fs", ", ".join(runtime.services),
                                          elapsed)
    await rt.run_until_signal(process)


def _print_banner(runtime: Any, elapsed: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False, highlight=False)
    table = Table(title=f"Stratus is up ({elapsed:.2f}s)", show_header=True)
    table.add_column("service")
    table.add_column("endpoint")
    for name, service in runtime.services.items():
        if service.app is not None:
            table.add_row(name, runtime.settings.endpoint(name))
    console.print(table)
    for line in runtime.extras.get("banner", []):
        console.print(line)
    console.print(f"data: {runtime.settings.data_dir}   stop with Ctrl-C or SIGTERM")
    sys.stdout.flush()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed: cheaper sockets for the HTTP servers (image data).

    uvicorn only picks uvloop for loops it creates itself; ours is made here.
    """
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _serve(settings: Settings, banner: bool) -> None:
    from stratus.runtime import StartupError

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_run(settings, banner=banner))
    except StartupError as exc:
        click.echo(f"stratus: cannot start: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


@cli.command()
@click.option("--verbose", "-v", is_flag=True, help="Debug logs, access log included.")
@click.pass_context
def up(ctx: click.Context, verbose: bool) -> None:
    """Run the all-in-one cloud: every service in this process."""
    from stratus.runtime import available_services

    settings = _settings(ctx)
    settings = settings.model_copy(
        update={"services": tuple(s for s in settings.services if s in available_services())}
    )
    _logging(settings, verbose)
    _serve(settings, banner=True)


@cli.command()
@click.argument("services", nargs=-1, required=True)
@click.option("--host", help="This host's name for compute agents (compute.host).")
@click.option("--verbose", "-v", is_flag=True)
@click.pass_context
def serve(ctx: click.Context, services: tuple[str, ...], host: str | None, verbose: bool) -> None:
    """Run SERVICES in this process (multi-process / multi-host deployments)."""
    overrides: dict[str, Any] = {"services": ",".join(services)}
    if host:
        overrides["compute"] = {"host": host}
    settings = _settings(ctx, **overrides)
    _logging(settings, verbose)
    _serve(settings, banner=False)


@cli.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show the Stratus processes running on this data dir and whether they answer."""
    import httpx

    from stratus.runtime import running_processes

    settings = _settings(ctx)
    procs = running_processes(settings)
    if not procs:
        click.echo(f"no Stratus process is running on {settings.data_dir}")
        sys.exit(3)
    for info in procs:
        click.echo(f"pid {info['pid']}: {', '.join(info['services'])} (bus {info['bus_url']})")
        for name, url in info.get("endpoints", {}).items():
            try:
                code = httpx.get(f"{url}/healthz", timeout=2).status_code
                state = "up" if code == 200 else f"answers {code}"
            except httpx.HTTPError as exc:
                state = f"not answering ({type(exc).__name__})"
            click.echo(f"  {name:10} {url:32} {state}")


@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.option("--service", "services", multiple=True, help="Only these services.")
@click.pass_context
def db_upgrade(ctx: click.Context, services: tuple[str, ...]) -> None:
    """Apply every pending migration."""
    from stratus.db import Database, migrate

    settings = _settings(ctx)
    names = services or migrate.SERVICES_WITH_TABLES

    async def run() -> list[str]:
        database = Database(settings.db_url)
        try:
            return await migrate.upgrade(database, list(names))
        finally:
            await database.dispose()

    try:
        done = asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - one clear line for the operator
        click.echo(f"stratus: migration failed: {exc}", err=True)
        sys.exit(1)
    click.echo(f"migrated: {', '.join(done) or 'nothing to do'}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """What this machine allows: root, QEMU/KVM/TCG, dnsmasq, nftables, namespaces."""
    from stratus.doctor import run_checks

    settings = _settings(ctx)
    checks = run_checks(settings)
    if as_json:
        import json

        click.echo(json.dumps([c.__dict__ for c in checks], indent=2))
        return
    for check in checks:
        mark = {"ok": "✔", "warn": "!", "missing": "✘"}[check.state]
        click.echo(f"{mark} {check.name:12} {check.detail}")
        if check.fix and check.state != "ok":
            click.echo(f"  {'':12} fix: {check.fix}")


# The service command groups, imported last (after `cli` exists).
from stratus.guest.cli import build as _guest_build  # noqa: E402
from stratus.identity.cli import identity as _identity_group  # noqa: E402
from stratus.image.cli import image as _image_group  # noqa: E402

cli.add_command(_identity_group)
cli.add_command(_image_group)
_image_group.add_command(_guest_build)


def main() -> None:
    cli(obj={})


if __name__ == "__main__":
    main()
