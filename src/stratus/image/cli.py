"""``stratus image ...``: operator commands of the image service."""

from __future__ import annotations

import asyncio
import json
import sys

import click


@click.group()
def image() -> None:
    """Image service maintenance."""


@image.command("verify")
@click.argument("image_ids", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image.")
@click.pass_context
def verify(ctx: click.Context, image_ids: tuple[str, ...], as_json: bool) -> None:
    """Re-hash stored image data and report files that no longer match (exit 1)."""
    from stratus.db import Database
    from stratus.image.repo import ImageRepo
    from stratus.image.service import build_store
    from stratus.image.verify import verify_images
    from stratus.settings import ConfigError, load_settings

    obj = ctx.find_root().ensure_object(dict)
    try:
        settings = load_settings(obj.get("config"), data_dir=obj.get("data_dir"))
    except ConfigError as exc:
        click.echo(f"stratus: {exc}", err=True)
        sys.exit(2)

    async def run() -> tuple[int, int]:
        db = Database(settings.db_url)
        store = build_store(settings)
        checked = bad = 0
        try:
            async for finding in verify_images(ImageRepo(db), store, image_ids):
                checked += 1
                bad += not finding.ok
                if as_json:
                    click.echo(json.dumps(finding.__dict__))
                else:
                    mark = "ok     " if finding.ok else "CORRUPT"
                    click.echo(f"{mark} {finding.image_id} {finding.name or ''}: "
                               f"{finding.detail}")
        finally:
            store.close()
            await db.dispose()
        return checked, bad

    checked, bad = asyncio.run(run())
    if not as_json:
        click.echo(f"{checked} image(s) checked, {bad} corrupt")
    sys.exit(1 if bad else 0)
