"""The image service layer: every use case, called by the HTTP edge.

Each method takes the caller's :class:`RequestContext`, checks visibility and
policy, drives the repository and the store, and publishes notifications.
Status changes are compare-and-swap transitions, so two requests racing on
one image cannot both win (two uploads, upload vs delete...). The data use
cases (upload, stage, download) live in :mod:`stratus.image.data`; the
methods of the same names here delegate to it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterable
from datetime import timedelta
from typing import Any

from stratus.api.context import RequestContext
from stratus.bus import Bus
from stratus.errors import BadRequest, Conflict, Forbidden, NotFound, OverQuota
from stratus.image import data, views
from stratus.image.data import STAGED_PREFIX, UPLOAD_PREFIX, Download
from stratus.image.domain import (
    Change,
    Formats,
    Image,
    MemberStatus,
    Status,
    Visibility,
    apply_changes,
    check_tag,
    is_image_id,
    new_image_id,
    parse_create,
)
from stratus.image.listing import ListQuery
from stratus.image.policy import ImagePolicy, can_see, owns, target
from stratus.image.repo import ImageRepo, Member, Task, utcnow_aware
from stratus.image.store import FileStore
from stratus.image.usage import UsageLedger
from stratus.settings import ImageSettings

log = logging.getLogger("stratus.image")

IMPORT_METHODS = ("glance-direct",)


class ImageCore:
    def __init__(self, repo: ImageRepo, store: FileStore, policy: ImagePolicy, bus: Bus,
                 settings: ImageSettings) -> None:
        self.repo = repo
        self.store = store
        self.policy = policy
        self.bus = bus
        self.settings = settings
        self.formats = Formats(settings.disk_formats, settings.container_formats)
        self.usage = UsageLedger(repo.db)
        self._background: set[asyncio.Task[None]] = set()

    # -- helpers --------------------------------------------------------------
    async def notify(self, event: str, image: Image, **extra: Any) -> None:
        try:
            await self.bus.notify(event, {**views.notification(image), **extra},
                                  publisher="image")
        except Exception:
            log.exception("cannot publish %s", event)

    async def visible(self, ctx: RequestContext, image_id: str) -> Image:
        """The image if the caller may see it; 404 otherwise (never 403: no leaks)."""
        image = await self.repo.get(image_id) if is_image_id(image_id) else None
        if image is None:
            raise NotFound(f"No image found with ID {image_id}")
        sees_all = self.policy.sees_all(ctx)
        status = None
        if not sees_all and image.owner != ctx.project_id and \
                image.visibility is Visibility.SHARED:
            status = await self.repo.membership_status(image.id, ctx.project_id)
        if not can_see(image, ctx, status, sees_all):
            raise NotFound(f"No image found with ID {image_id}")
        return image

    async def owned(self, ctx: RequestContext, image_id: str, rule: str) -> Image:
        """The image if the caller may change it: 404 if unseen, 403 if not theirs."""
        image = await self.visible(ctx, image_id)
        self.policy.enforce(rule, ctx, target(image))
        if not owns(image, ctx, self.policy.sees_all(ctx)):
            raise Forbidden(f"You are not permitted to modify image {image_id}; it belongs to "
                            "another project.")
        return image

    # -- images ---------------------------------------------------------------
    async def create(self, ctx: RequestContext, body: dict[str, Any]) -> Image:
        new = parse_create(body, self.formats)
        owner = new.fields.get("owner", ctx.project_id)
        if owner != ctx.project_id:
            self.policy.enforce("set_image_owner", ctx, {"project_id": owner})
        self.policy.enforce("add_image", ctx, {"project_id": owner})
        now = utcnow_aware()
        image = Image(id=new.id, status=Status.QUEUED, visibility=Visibility.SHARED, owner=owner,
                      created_at=now, updated_at=now, properties=new.properties, tags=new.tags)
        for name, value in new.fields.items():
            setattr(image, name, value)
        self.policy.check_visibility_change(ctx, image, image.visibility)
        self._check_counts(image)
        quota = self.settings.image_count_quota
        if quota >= 0 and (await self.repo.usage(owner))[0] >= quota:
            raise OverQuota(f"Image count quota of {quota} reached for project {owner}.")
        await self.repo.create(image)
        await self.notify("image.create", image)
        return image

    def _check_counts(self, image: Image) -> None:
        props, tags = self.settings.image_property_quota, self.settings.image_tag_quota
        if props >= 0 and len(image.properties) > props:
            raise OverQuota(f"Maximum number of properties ({props}) exceeded.")
        if tags >= 0 and len(image.tags) > tags:
            raise OverQuota(f"Maximum number of tags ({tags}) exceeded.")

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[Image]:
        self.policy.enforce("get_images", ctx)
        return await self.repo.list_page(query, project_id=ctx.project_id,
                                         sees_all=self.policy.sees_all(ctx))

    async def show(self, ctx: RequestContext, image_id: str) -> Image:
        image = await self.visible(ctx, image_id)
        self.policy.enforce("get_image", ctx, target(image))
        return image

    async def update(self, ctx: RequestContext, image_id: str, changes: list[Change]) -> Image:
        image = await self.owned(ctx, image_id, "modify_image")
        after = apply_changes(image, changes, self.formats)
        if after.owner != image.owner:
            self.policy.enforce("set_image_owner", ctx, target(after))
        if after.visibility != image.visibility:
            self.policy.check_visibility_change(ctx, after, after.visibility)
        added_props = len(after.properties) > len(image.properties)
        if added_props or len(after.tags) > len(image.tags):
            self._check_counts(after)
        if not changes:
            return image
        saved = await self.repo.save(image, after)
        await self.notify("image.update", saved)
        return saved

    async def delete(self, ctx: RequestContext, image_id: str) -> None:
        image = await self.owned(ctx, image_id, "delete_image")
        if image.protected:
            raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
        if not await self.repo.delete(image.id):
            raise NotFound(f"No image found with ID {image_id}")
        await self._drop_data(image)
        await self.notify("image.delete", image)

    async def _drop_data(self, image: Image) -> None:
        location = image.location or ""
        if location.startswith(STAGED_PREFIX):
            await self.store.delete(location[len(STAGED_PREFIX):])
        elif location.startswith("file:"):
            await self.store.delete(location)
        # An upload in flight finds the row gone and removes its own file.

    async def set_active(self, ctx: RequestContext, image_id: str, active: bool) -> None:
        action = "reactivate" if active else "deactivate"
        image = await self.owned(ctx, image_id, action)
        wanted = Status.ACTIVE if active else Status.DEACTIVATED
        if image.status == wanted:
            return
        source = Status.DEACTIVATED if active else Status.ACTIVE
        if image.status != source or not await self.repo.transition(image.id, source,
                                                                    status=wanted):
            raise Forbidden(f"Not allowed to {action} image in status '{image.status}'.")
        image.status = wanted
        await self.notify(f"image.{action}", image)

    async def add_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        image = await self.owned(ctx, image_id, "modify_image")
        check_tag(tag)
        limit = self.settings.image_tag_quota
        if tag not in image.tags and 0 <= limit <= len(image.tags):
            raise OverQuota(f"Maximum number of tags ({limit}) exceeded.")
        await self.repo.set_tag(image.id, tag)

    async def delete_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        image = await self.owned(ctx, image_id, "modify_image")
        if not await self.repo.delete_tag(image.id, tag):
            raise NotFound(f"Tag {tag} not found on image {image_id}.")

    # -- data (see data.py) ---------------------------------------------------
    async def upload(self, ctx: RequestContext, image_id: str, chunks: AsyncIterable[bytes],
                     content_length: int | None) -> Image:
        return await data.upload(self, ctx, image_id, chunks, content_length)

    async def stage(self, ctx: RequestContext, image_id: str, chunks: AsyncIterable[bytes],
                    content_length: int | None) -> None:
        await data.stage(self, ctx, image_id, chunks, content_length)

    async def start_import(self, ctx: RequestContext, image_id: str, body: dict[str, Any],
                           request_id: str) -> None:
        image = await self.owned(ctx, image_id, "modify_image")
        method = body.get("method")
        name = method.get("name") if isinstance(method, dict) else None
        if name not in IMPORT_METHODS:
            raise BadRequest(f"Import method {name!r} is not supported; supported: "
                             f"{', '.join(IMPORT_METHODS)}.")
        stores = body.get("stores")
        if stores is not None and (not isinstance(stores, list)
                                   or any(s != self.store.id for s in stores)):
            raise BadRequest(f"Unknown store in {stores!r}; the only store is "
                             f"{self.store.id!r}.")
        location = image.location or ""
        if image.status != Status.UPLOADING or not location.startswith(STAGED_PREFIX):
            raise Conflict("Image needs to be staged before 'glance-direct' method can be "
                           "used.")
        if not await self.repo.transition(image.id, Status.UPLOADING, status=Status.IMPORTING):
            raise Conflict(f"Image {image_id} is already being imported.")
        now = utcnow_aware()
        task = Task(id=new_image_id(), image_id=image.id, type="api_image_import",
                    status="processing", owner=image.owner, user_id=ctx.user_id,
                    request_id=request_id,
                    input={"image_id": image.id, "import_req": {"method": {"name": name}},
                           "backend": [self.store.id]},
                    result=None, message="", created_at=now, updated_at=now,
                    expires_at=now + timedelta(hours=48))
        await self.repo.add_task(task)
        job = asyncio.create_task(self._import(image, location[len(STAGED_PREFIX):], task.id))
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    async def _import(self, image: Image, staged: str, task_id: str) -> None:
        try:
            final = await self.store.promote(staged, image.id)
            ok = await self.repo.transition(image.id, Status.IMPORTING, status=Status.ACTIVE,
                                            location=final)
            if not ok:
                await self.store.delete(final)
                raise Conflict("image was deleted during import")
            await self.repo.update_task(task_id, status="success",
                                        result={"image_id": image.id})
            saved = await self.repo.get(image.id)
            if saved is not None:
                await self.notify("image.upload", saved)
                await self.notify("image.activate", saved)
        except Exception as exc:  # noqa: BLE001 - recorded on the task
            log.warning("import of image %s failed: %s", image.id, exc)
            await self.repo.transition(image.id, Status.IMPORTING, status=Status.QUEUED,
                                       location=None, size=None, checksum=None,
                                       os_hash_algo=None, os_hash_value=None, virtual_size=None)
            await self.store.delete(staged)
            await self.repo.update_task(task_id, status="failure", message=str(exc))

    async def tasks(self, ctx: RequestContext, image_id: str) -> list[Task]:
        image = await self.visible(ctx, image_id)
        self.policy.enforce("get_tasks", ctx, target(image))
        return await self.repo.tasks(image.id)

    async def download(self, ctx: RequestContext, image_id: str,
                       byte_range: tuple[int | None, int | None] | None) -> Download | None:
        """What to send for ``GET .../file``; None when the image has no data (204)."""
        return await data.download(self, ctx, image_id, byte_range)

    # -- members --------------------------------------------------------------
    async def members(self, ctx: RequestContext, image_id: str) -> list[Member]:
        image = await self.visible(ctx, image_id)
        self.policy.enforce("get_members", ctx, target(image))
        if image.visibility is not Visibility.SHARED:
            raise Forbidden("Only shared images have members.")
        found = await self.repo.members(image.id)
        if owns(image, ctx, self.policy.sees_all(ctx)):
            return found
        return [m for m in found if m.member == ctx.project_id]

    async def member(self, ctx: RequestContext, image_id: str, member_id: str) -> Member:
        image = await self.visible(ctx, image_id)
        self.policy.enforce("get_member", ctx, target(image, member_id=member_id))
        found = await self.repo.member(image.id, member_id)
        if found is None or not (owns(image, ctx, self.policy.sees_all(ctx))
                                 or member_id == ctx.project_id):
            raise NotFound(f"Project {member_id} is not a member of image {image_id}.")
        return found

    async def add_member(self, ctx: RequestContext, image_id: str, body: Any) -> Member:
        image = await self.owned(ctx, image_id, "add_member")
        member_id = body.get("member") if isinstance(body, dict) else None
        if not isinstance(member_id, str) or not member_id or len(member_id) > 255:
            raise BadRequest("The request body must be {\"member\": \"<project id>\"}.")
        if image.visibility is not Visibility.SHARED:
            raise Forbidden(f"Only shared images have members; image {image_id} is "
                            f"{image.visibility}.")
        member = await self.repo.add_member(image.id, member_id,
                                            self.settings.image_member_quota)
        await self.notify("image.member.create", image, member_id=member_id,
                          status=str(member.status))
        return member

    async def update_member(self, ctx: RequestContext, image_id: str, member_id: str,
                            body: Any) -> Member:
        image = await self.visible(ctx, image_id)
        status = body.get("status") if isinstance(body, dict) else None
        if status not in set(MemberStatus):
            raise BadRequest(f"Invalid member status {status!r}; use one of "
                             f"{', '.join(s.value for s in MemberStatus)}.")
        found = await self.repo.member(image.id, member_id)
        if found is None:
            raise NotFound(f"Project {member_id} is not a member of image {image_id}.")
        if member_id != ctx.project_id:
            raise Forbidden("Only the member itself can accept or reject a shared image.")
        self.policy.enforce("modify_member", ctx, target(image, member_id=member_id))
        updated = await self.repo.set_member_status(image.id, member_id, MemberStatus(status))
        assert updated is not None
        await self.notify("image.member.update", image, member_id=member_id, status=status)
        return updated

    async def delete_member(self, ctx: RequestContext, image_id: str, member_id: str) -> None:
        image = await self.owned(ctx, image_id, "delete_member")
        if not await self.repo.delete_member(image.id, member_id):
            raise NotFound(f"Project {member_id} is not a member of image {image_id}.")
        await self.notify("image.member.delete", image, member_id=member_id)

    # -- lifecycle --------------------------------------------------------------
    async def recover(self) -> int:
        """Undo uploads that a dead process on this host left half done.

        Their images go back to ``queued`` and their temporary files are
        removed; an upload still running in a live process is left alone.
        """
        host = socket.gethostname()
        me = os.getpid()
        fixed = 0
        for image in await self.repo.with_locations(UPLOAD_PREFIX):
            tag = (image.location or "")[len(UPLOAD_PREFIX):]
            if _writer_alive(tag, host, me):
                continue
            if await self.repo.transition(image.id, (Status.SAVING, Status.UPLOADING),
                                          status=Status.QUEUED, location=None,
                                          end_upload=True):
                fixed += 1
                log.warning("image %s: interrupted upload undone, back to queued", image.id)
            await self.store.discard_partial(image.id, tag)
        for image_id, tag, path in self.store.partial_files():
            if not _writer_alive(tag, host, me):
                path.unlink(missing_ok=True)
        for image in await self.repo.with_locations(STAGED_PREFIX):
            if image.status == Status.IMPORTING:
                await self.repo.transition(image.id, Status.IMPORTING, status=Status.UPLOADING)
        return fixed

    async def wait_background(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def _writer_alive(tag: str, host: str, me: int) -> bool:
    writer_host, _, pid = tag.rpartition(".")
    if writer_host != host:
        return True  # another host's upload: not ours to judge
    if not pid.isdigit() or int(pid) == me:
        return False  # at start-up nothing of ours is in flight yet
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
