"""The image service as other services see it: a small client of its REST API.

Compute uses it to read an image's data as a stream (to build a disk) and
to create a snapshot image and stream its data in. Every call is a plain
Glance v2 request; in the all-in-one it goes through an in-process ASGI
transport that streams both ways, so not even the shortcut ever holds a
whole image in memory.

Example::

    images = ImageClient.from_runtime(runtime, headers=runtime.service_headers)
    async with images:
        with open(path, "wb") as out:
            async for chunk in images.read(image_id):
                out.write(chunk)
        snap = await images.create_snapshot("snap-1", chunks, disk_format="qcow2")
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Self

import httpx
from starlette.types import ASGIApp, Message

Headers = Mapping[str, str] | Callable[[], Awaitable[Mapping[str, str]]] | Callable[
    [], Mapping[str, str]]

PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


class ImageServiceError(Exception):
    """The image service refused a request; carries its status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"image service answered {status}: {message}")
        self.status = status
        self.message = message


class ImageIntegrityError(ImageServiceError):
    """Downloaded data does not match the image's checksum, or ended early."""


class ImageClient:
    def __init__(self, http: httpx.AsyncClient, headers: Headers) -> None:
        self.http = http
        self._headers = headers

    @classmethod
    def from_runtime(cls, runtime: Any, *, headers: Headers, base_url: str | None = None,
                     timeout: float = 300.0) -> ImageClient:
        """A client for this process's image service (in-process) or a remote one."""
        base = base_url or runtime.settings.endpoint("image")
        local = runtime.services.get("image") if base_url is None else None
        transport: httpx.AsyncBaseTransport | None = None
        if local is not None and local.app is not None:
            transport = StreamingASGITransport(local.app)
        http = httpx.AsyncClient(base_url=base, transport=transport,
                                 timeout=httpx.Timeout(timeout, connect=10.0))
        return cls(http, headers)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def _auth(self) -> dict[str, str]:
        value = self._headers
        if callable(value):
            value = value()
            if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
                value = await value  # type: ignore[misc]
        return dict(value)  # type: ignore[arg-type]

    async def _call(self, method: str, url: str, *, ok: tuple[int, ...] = (200,),
                    **kwargs: Any) -> httpx.Response:
        headers = {**await self._auth(), **kwargs.pop("headers", {})}
        resp = await self.http.request(method, url, headers=headers, **kwargs)
        if resp.status_code not in ok:
            raise _error(resp)
        return resp

    # -- records --------------------------------------------------------------
    async def get(self, image_id: str) -> dict[str, Any]:
        return dict((await self._call("GET", f"/v2/images/{image_id}")).json())

    async def create(self, **fields: Any) -> dict[str, Any]:
        return dict((await self._call("POST", "/v2/images", json=fields, ok=(201,))).json())

    async def list(self, **filters: str) -> list[dict[str, Any]]:
        """Every image matching ``filters`` (Glance's query filters), following pages."""
        out: list[dict[str, Any]] = []
        url: str | None = "/v2/images"
        params: dict[str, str] | None = filters
        while url:
            page = (await self._call("GET", url, params=params)).json()
            out.extend(page.get("images", []))
            url, params = page.get("next"), None
        return out

    async def update(self, image_id: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        resp = await self._call("PATCH", f"/v2/images/{image_id}", content=_json(ops),
                                headers={"Content-Type": PATCH_TYPE})
        return dict(resp.json())

    async def delete(self, image_id: str) -> None:
        await self._call("DELETE", f"/v2/images/{image_id}", ok=(204, 404))

    # -- data -----------------------------------------------------------------
    async def read(self, image_id: str, *, verify: bool = True) -> AsyncIterator[bytes]:
        """Stream the image's data; raise :class:`ImageIntegrityError` if it is wrong."""
        headers = await self._auth()
        async with self.http.stream("GET", f"/v2/images/{image_id}/file",
                                    headers=headers) as resp:
            if resp.status_code == 204:
                raise ImageServiceError(204, f"image {image_id} has no data")
            if resp.status_code != 200:
                await resp.aread()
                raise _error(resp)
            expected = resp.headers.get("content-md5")
            length = resp.headers.get("content-length")
            md5 = hashlib.md5(usedforsecurity=False) if verify and expected else None
            received = 0
            try:
                async for chunk in resp.aiter_raw():
                    received += len(chunk)
                    if md5 is not None:
                        md5.update(chunk)
                    yield chunk
            except httpx.HTTPError as exc:
                raise ImageIntegrityError(502, f"transfer of image {image_id} broke off after "
                                               f"{received} bytes: {exc}") from exc
            if length is not None and received != int(length):
                raise ImageIntegrityError(502, f"image {image_id}: got {received} of {length} "
                                               "bytes")
            if md5 is not None and md5.hexdigest() != expected:
                raise ImageIntegrityError(502, f"image {image_id}: md5 {md5.hexdigest()} does "
                                               f"not match {expected}")

    async def download_to(self, image_id: str, path: Path) -> Path:
        """Write the image's data to ``path`` (atomically: a partial file never stays)."""
        tmp = path.with_name(f".{path.name}.part")
        with tmp.open("wb") as out:
            try:
                async for chunk in self.read(image_id):
                    await asyncio.to_thread(out.write, chunk)
                out.flush()
                os.fsync(out.fileno())
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        os.replace(tmp, path)
        return path

    async def upload(self, image_id: str, chunks: AsyncIterable[bytes],
                     size: int | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None:
            headers["Content-Length"] = str(size)
        await self._call("PUT", f"/v2/images/{image_id}/file", content=chunks, headers=headers,
                         ok=(204,))
        return await self.get(image_id)

    async def create_snapshot(self, name: str, chunks: AsyncIterable[bytes], *,
                              disk_format: str = "qcow2", container_format: str = "bare",
                              size: int | None = None, **fields: Any) -> dict[str, Any]:
        """Create an image and stream ``chunks`` into it; on failure no image remains."""
        image = await self.create(name=name, disk_format=disk_format,
                                  container_format=container_format, **fields)
        try:
            return await self.upload(image["id"], chunks, size)
        except BaseException:
            await asyncio.shield(self.delete(image["id"]))
            raise


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()


def _error(resp: httpx.Response) -> ImageServiceError:
    try:
        message = resp.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = resp.text[:500]
    return ImageServiceError(resp.status_code, message)


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """httpx over an in-process ASGI app, streaming request and response bodies.

    ``httpx.ASGITransport`` collects the whole response before returning it;
    this one hands the response over as soon as its headers are sent and
    passes body chunks through a small queue, so memory stays bounded
    whatever the size of the transfer.
    """

    def __init__(self, app: ASGIApp, *, queue_size: int = 4) -> None:
        self.app = app
        self.queue_size = queue_size

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.stream
        assert isinstance(body, httpx.AsyncByteStream)
        chunks = body.__aiter__()
        done = asyncio.Event()
        request_done = False
        queue: asyncio.Queue[Message | BaseException] = asyncio.Queue(self.queue_size)

        async def receive() -> Message:
            nonlocal request_done
            if request_done:
                await done.wait()
                return {"type": "http.disconnect"}
            try:
                chunk = await chunks.__anext__()
                return {"type": "http.request", "body": bytes(chunk), "more_body": True}
            except StopAsyncIteration:
                request_done = True
                return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            await queue.put(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme, "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query, "server": (request.url.host, request.url.port),
            "client": ("127.0.0.1", 0), "root_path": "",
        }

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except BaseException as exc:  # noqa: BLE001 - handed to the reader
                if not done.is_set():
                    await queue.put(exc)
            finally:
                if not done.is_set():  # else the reader is gone and nobody drains
                    await queue.put({"type": "http.response.body", "body": b"",
                                     "more_body": False, "_end": True})

        task = asyncio.create_task(run())
        first = await queue.get()
        if isinstance(first, BaseException):
            raise httpx.TransportError(str(first)) from first
        assert first["type"] == "http.response.start"

        async def body_chunks() -> AsyncIterator[bytes]:
            try:
                while True:
                    message = await queue.get()
                    if isinstance(message, BaseException):
                        raise httpx.ReadError(str(message)) from message
                    if message.get("body"):
                        yield message["body"]
                    if not message.get("more_body", False):
                        if message.get("_end"):
                            break
                        # The app finished its response; drain the sentinel.
                        continue
            finally:
                done.set()
                if not task.done():
                    task.cancel()

        return httpx.Response(first["status"], headers=first.get("headers", []),
                              stream=_Stream(body_chunks()), request=request)


class _Stream(httpx.AsyncByteStream):
    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.chunks:
            yield chunk

    async def aclose(self) -> None:
        await self.chunks.aclose()  # type: ignore[attr-defined]
