"""The Glance v2 HTTP edge of the image service."""

from stratus.image.api.routes import routes

__all__ = ["routes"]
