"""Microversions: negotiated per request, echoed on every response.

Requests name a version with ``OpenStack-API-Version: compute 2.X`` or
``X-OpenStack-Nova-API-Version: 2.X`` (``latest`` = our maximum; none =
2.1). Outside ``MIN..MAX`` the answer is 406. Every response under
``/v2.1`` carries both headers with the version used and ``Vary`` naming
them, as clients and Tempest check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratus.errors import NotAcceptable

MIN_VERSION = "2.1"
MAX_VERSION = "2.96"
_PATTERN = re.compile(r"^(\d+)\.(\d+)$")


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _PATTERN.match(text.strip())
        if not match:
            raise NotAcceptable(f"Invalid API version request {text!r}; use 2.1 to "
                                f"{MAX_VERSION} or 'latest'.")
        return cls(int(match.group(1)), int(match.group(2)))

    def __lt__(self, other: object) -> bool:
        if isinstance(other, str):
            other = Version.parse(other)
        assert isinstance(other, Version)
        return (self.major, self.minor) < (other.major, other.minor)

    def __ge__(self, other: object) -> bool:  # total_ordering with str operands
        return not self < other

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            other = Version.parse(other)
        return isinstance(other, Version) and (self.major, self.minor) == (other.major,
                                                                            other.minor)

    def __hash__(self) -> int:
        return hash((self.major, self.minor))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


MIN = Version.parse(MIN_VERSION)
MAX = Version.parse(MAX_VERSION)


def negotiate(headers: dict[bytes, bytes]) -> Version:
    raw = None
    generic = headers.get(b"openstack-api-version")
    if generic is not None:
        for part in generic.decode("latin-1").split(","):
            words = part.strip().split()
            if len(words) == 2 and words[0].lower() == "compute":
                raw = words[1]
    if raw is None and b"x-openstack-nova-api-version" in headers:
        raw = headers[b"x-openstack-nova-api-version"].decode("latin-1").strip()
    if raw is None:
        return MIN
    if raw.lower() == "latest":
        return MAX
    version = Version.parse(raw)
    if not MIN <= version <= MAX:
        raise NotAcceptable(f"Version {version} is not supported by the API. Minimum is "
                            f"{MIN_VERSION} and maximum is {MAX_VERSION}.")
    return version


class MicroversionMiddleware:
    """Puts ``scope["state"]["microversion"]`` and echoes the headers (ASGI)."""

    def __init__(self, app: ASGIApp, prefix: str = "/v2.1") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        try:
            version = negotiate(headers)
            failed = None
        except NotAcceptable as exc:
            version, failed = MIN, exc
        scope.setdefault("state", {})["microversion"] = version
        text = str(version).encode()

        async def echo(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + [
                    (b"openstack-api-version", b"compute " + text),
                    (b"x-openstack-nova-api-version", text),
                    (b"vary", b"OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
                ]
            await send(message)

        if failed is not None:
            raise failed
        await self.app(scope, receive, echo)


def version_of(request: object) -> Version:
    state = getattr(request, "state", None)
    return getattr(state, "microversion", MIN)
