"""Render a :class:`StratusError` in each OpenStack service's fault format."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from stratus.errors import StratusError

# Nova (and Cinder) name the fault after the status code.
NOVA_FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}


class FaultStyle(StrEnum):
    KEYSTONE = "keystone"  # {"error": {"code", "title", "message"}}
    NOVA = "nova"  # {"itemNotFound": {"code", "message"}}
    NEUTRON = "neutron"  # {"NeutronError": {"type", "message", "detail"}}
    GLANCE = "glance"  # {"code", "title", "message"} wrapped like keystone


def fault_body(style: FaultStyle, error: StratusError) -> dict[str, Any]:
    if style is FaultStyle.NOVA:
        name = NOVA_FAULT_NAMES.get(error.status, "computeFault")
        return {name: {"code": error.status, "message": error.message}}
    if style is FaultStyle.NEUTRON:
        return {"NeutronError": {"type": error.kind, "message": error.message, "detail": ""}}
    return {"error": {"code": error.status, "title": error.title, "message": error.message}}
