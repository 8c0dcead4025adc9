"""Image service wiring: settings in, the Glance v2 app and its store out."""

from __future__ import annotations

import logging
from pathlib import Path

from stratus.api.app import build_app
from stratus.api.auth import auth_middleware
from stratus.api.faults import FaultStyle
from stratus.api.policy import Policy
from stratus.image.api import routes
from stratus.image.core import ImageCore
from stratus.image.metadefs import routes as metadef_routes
from stratus.image.metadefs.core import MetadefCore
from stratus.image.metadefs.repo import MetadefRepo
from stratus.image.policy import DEFAULTS, ImagePolicy
from stratus.image.repo import ImageRepo
from stratus.image.store import FileStore
from stratus.runtime import Runtime, Service
from stratus.settings import Settings

log = logging.getLogger("stratus.image")


def store_root(settings: Settings) -> Path:
    path = Path(settings.image.store_dir)
    return path if path.is_absolute() else settings.data_dir / path


def build_store(settings: Settings) -> FileStore:
    return FileStore(store_root(settings), write_chunk=settings.image.write_chunk,
                     read_chunk=settings.image.read_chunk, direct_io=settings.image.direct_io)


class ImageService(Service):
    name = "image"

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.store = build_store(settings)
        policy = ImagePolicy(Policy.for_service(settings, "image", DEFAULTS))
        self.core = ImageCore(ImageRepo(runtime.db), self.store, policy, runtime.bus,
                              settings.image)
        self.metadefs = MetadefCore(MetadefRepo(runtime.db), policy)
        self.app = build_app(
            "image", routes(self.core, settings.image)
            + metadef_routes.routes(self.metadefs), metrics=runtime.metrics,
            style=FaultStyle.GLANCE, max_body=settings.max_request_body,
            middleware=[auth_middleware(lambda: runtime.token_validator,
                                        public=("/", "/versions", "/healthz", "/metrics"))],
        )

    async def start(self) -> None:
        fixed = await self.core.recover()
        if fixed:
            log.warning("undid %d interrupted image upload(s)", fixed)

    async def stop(self) -> None:
        await self.core.wait_background()
        self.store.close()


async def build(runtime: Runtime) -> Service:
    return ImageService(runtime)
