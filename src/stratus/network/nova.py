"""Tell compute what happened to its ports, as Neutron's nova notifier does.

Compute waits for ``network-vif-plugged`` before it calls a build done, and
refreshes a server's addresses on ``network-changed``. Both arrive through
compute's public ``os-server-external-events`` API, with the network
service's own token. Only ports compute owns (``device_owner`` ``compute:*``)
produce events; a failed delivery is logged and does not fail the change
that caused it (compute's own timeout covers a lost event).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

log = logging.getLogger("stratus.network.nova")

PLUGGED = "network-vif-plugged"
UNPLUGGED = "network-vif-unplugged"
CHANGED = "network-changed"


def event_for(port: dict[str, Any], name: str, status: str = "completed"
              ) -> dict[str, Any] | None:
    """The external event about ``port`` for its server, or None if no server owns it."""
    if not port.get("device_id") or not str(port.get("device_owner", "")).startswith(
            "compute:"):
        return None
    return {"name": name, "server_uuid": port["device_id"], "tag": port["id"],
            "status": status}


class ComputeNotifier:
    """Posts events to compute's REST API (in-process in the all-in-one)."""

    def __init__(self, runtime: Any, timeout: float = 10.0) -> None:
        self.runtime = runtime
        self.timeout = timeout

    async def send(self, maybe: list[dict[str, Any] | None]) -> None:
        events = [e for e in maybe if e is not None]
        if not events:
            return
        try:
            headers = await self.runtime.service_headers()
            async with self.runtime.client("compute", headers=headers,
                                           timeout=self.timeout) as client:
                resp = await client.post("/v2.1/os-server-external-events",
                                         json={"events": events})
        except (httpx.HTTPError, OSError) as exc:
            log.warning("could not send %d event(s) to compute: %s", len(events), exc)
            return
        except Exception:
            log.exception("could not send events to compute")
            return
        if resp.status_code not in (200, 207, 404):
            log.warning("compute refused events %s: %s %s", events, resp.status_code,
                        resp.text[:300])
