"""What both transports share: running a handler and encoding its outcome."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from stratus.api.metrics import Metrics
from stratus.errors import RemoteError, StratusError

log = logging.getLogger("stratus.bus")


def encode(payload: Any) -> bytes:
    """JSON-encode a message; non-JSON payloads fail at the sender."""
    try:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"bus payloads must be plain JSON: {exc}") from None


def decode(body: bytes) -> Any:
    return json.loads(body)


def encode_reply(answer: dict[str, Any]) -> bytes:
    """Encode :func:`invoke`'s outcome; a result that is not JSON becomes an error reply."""
    try:
        return encode(answer)
    except TypeError as exc:
        return encode({"error": {"type": "TypeError", "status": 500, "message": str(exc)}})


async def invoke(endpoint: object, topic: str, method: str, kwargs: dict[str, Any],
                 metrics: Metrics) -> dict[str, Any]:
    """Run ``endpoint.method(**kwargs)``; the reply as ``{"result"}`` or ``{"error"}``."""
    start = time.perf_counter()
    outcome = "ok"
    try:
        fn = getattr(endpoint, method, None) if not method.startswith("_") else None
        if fn is None or not callable(fn):
            outcome = "error"
            return {"error": {"type": "NoSuchMethod", "status": 500,
                              "message": f"{type(endpoint).__name__} has no method {method!r}"}}
        try:
            result = await fn(**kwargs)
        except StratusError as exc:
            outcome = "error"
            return {"error": {"type": exc.kind, "status": exc.status, "message": exc.message}}
        except Exception as exc:  # noqa: BLE001 - the caller gets it as RemoteError
            outcome = "error"
            log.exception("bus handler %s.%s failed", topic, method)
            return {"error": {"type": type(exc).__name__, "status": 500, "message": str(exc)}}
        return {"result": result}
    finally:
        labels = {"topic": topic, "method": method}
        metrics.inc("stratus_rpc_handled_total", {**labels, "outcome": outcome})
        metrics.observe("stratus_rpc_handle_seconds", labels, time.perf_counter() - start)


def unwrap(reply: dict[str, Any]) -> Any:
    """The result of a reply, or the RemoteError it carries."""
    if "error" in reply:
        err = reply["error"]
        raise RemoteError(str(err.get("type", "Error")), str(err.get("message", "")),
                          int(err.get("status", 500)))
    return reply.get("result")
