"""``stratus identity``: bootstrap (multi-node) and fernet key rotation."""

from __future__ import annotations

import asyncio
import sys

import click


@click.group()
def identity() -> None:
    """Identity service administration."""


@identity.command()
@click.pass_context
def bootstrap(ctx: click.Context) -> None:
    """Create the default domain, admin, roles, service users and catalog (idempotent)."""
    from stratus.cli.main import _settings
    from stratus.db import Database, migrate
    from stratus.identity.bootstrap import banner_lines
    from stratus.identity.bootstrap import bootstrap as run_bootstrap
    from stratus.identity.core import Identity

    settings = _settings(ctx.find_root())

    async def run() -> list[str]:
        db = Database(settings.db_url)
        try:
            await migrate.upgrade(db, ["identity"])
            result = await run_bootstrap(Identity(settings, db))
            return [f"created: {', '.join(result.created) or 'nothing (already bootstrapped)'}",
                    *banner_lines(result, settings)]
        finally:
            await db.dispose()

    try:
        lines = asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - one clear line for the operator
        click.echo(f"stratus: bootstrap failed: {exc}", err=True)
        sys.exit(1)
    for line in lines:
        click.echo(line)


@identity.command("rotate-keys")
@click.pass_context
def rotate_keys(ctx: click.Context) -> None:
    """Rotate the fernet keys: staged -> primary, new staged, drop the oldest.

    Tokens made with the previous primary keep validating until it is dropped
    (after ``identity.max_active_keys - 2`` more rotations). Running processes
    pick the new keys up within a second. With several identity hosts, rotate
    on one and copy the key directory to the others.
    """
    from stratus.cli.main import _settings
    from stratus.identity.tokens import KeyRepository

    settings = _settings(ctx.find_root())
    repo = KeyRepository(settings.data_dir / "identity" / "fernet-keys",
                         settings.identity.max_active_keys)
    if repo.ensure():
        click.echo(f"created the key repository at {repo.path}")
    primary = repo.rotate()
    info = repo.describe()
    click.echo(f"rotated: primary key {primary}, staged 0, secondary {info['secondary']}")
