"""Remote consoles, as Nova serves them.

* ``POST /servers/{id}/remote-consoles`` (2.6+): ``{"remote_console":
  {"protocol", "type"}}`` → ``{"remote_console": {"protocol", "type", "url"}}``;
* the actions ``os-getVNCConsole``, ``os-getSPICEConsole``,
  ``os-getRDPConsole``, ``os-getSerialConsole`` (2.1–2.5; later microversions
  answer 404, as Nova's removed methods do) → ``{"console": {"type", "url"}}``;
* ``GET /os-console-auth-tokens/{token}`` (admin): where a token's console is.

This cloud serves one console: VNC through its noVNC proxy (type ``novnc``).
Every other console is "Unavailable console type <type>." (400), the answer
Nova gives when that console is disabled; ``xvpvnc`` is "Invalid console
type" (400), as since Nova removed its XVP proxy. The URL's token is new for
every request, valid ``console.token_ttl`` seconds and stored hashed
(:mod:`stratus.console.tokens`).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from stratus.compute.api.common import Call, Deps, ok
from stratus.compute.models import Instance
from stratus.compute.states import TaskState, VmState
from stratus.console import tokens
from stratus.errors import BadRequest, Conflict, NotFound, RemoteError, Unauthorized

RULE = "os_compute_api:os-remote-consoles"
TOKENS_RULE = "os_compute_api:os-console-auth-tokens"

# The schema's choices (Nova's remote_consoles.create_v26 / create_v28).
_PROTOCOLS = ("vnc", "spice", "rdp", "serial")
_TYPES = ("novnc", "xvpvnc", "rdp-html5", "spice-html5", "serial")
# Legacy action → (protocol, the types its schema allows).
LEGACY: dict[str, tuple[str, tuple[str, ...]]] = {
    "os-getVNCConsole": ("vnc", ("novnc", "xvpvnc")),
    "os-getSPICEConsole": ("spice", ("spice-html5",)),
    "os-getRDPConsole": ("rdp", ("rdp-html5",)),
    "os-getSerialConsole": ("serial", ("serial",)),
}
# A console needs a guest that runs (or is paused) where the instance says.
_READY = (VmState.ACTIVE, VmState.PAUSED, VmState.RESCUED, VmState.RESIZED)
_BUSY = (TaskState.DELETING, TaskState.MIGRATING)


def _choice(body: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    if key not in body:
        raise BadRequest(f"Invalid input for field/attribute {key}. '{key}' is a required "
                         "property")
    value = body[key]
    if value not in allowed:
        raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value}. "
                         f"{value!r} is not one of {list(allowed)}")
    return str(value)


def _only(body: dict[str, Any], keys: tuple[str, ...]) -> None:
    extra = sorted(k for k in body if k not in keys)
    if extra:
        raise BadRequest("Additional properties are not allowed "
                         f"({', '.join(repr(k) for k in extra)} was unexpected)")


async def _console_url(call: Call, inst: Instance, protocol: str, console_type: str) -> str:
    """A fresh console URL for ``inst``, or the fault Nova gives."""
    if not inst.host or inst.vm_state not in _READY or inst.task_state in _BUSY:
        raise Conflict(f"Instance {inst.uuid} is not ready (vm_state {inst.vm_state}"
                       + (f", task_state {inst.task_state}" if inst.task_state else "") + ")")
    if protocol != "vnc":
        raise BadRequest(f"Unavailable console type {console_type}.")
    if console_type != "novnc":
        raise BadRequest(f"Invalid console type {console_type}")
    try:
        where = await call.deps.agents.call(inst.host, "get_vnc_console", uuid=inst.uuid)
    except RemoteError as exc:
        if exc.exc_type == "NotSupported":
            raise BadRequest(f"Unavailable console type {console_type}.") from None
        if exc.status >= 500 and exc.exc_type not in ("DriverError", "GuestNotFound"):
            raise
        raise Conflict(f"Instance {inst.uuid} is not ready: {exc.remote_message}") from None
    settings = call.deps.settings
    base = tokens.novnc_base_url(settings)
    token = await tokens.authorize(
        call.deps.db, instance_uuid=inst.uuid, console_type=console_type,
        host=str(where["host"]), port=int(where["port"]),
        internal_access_path=where.get("internal_access_path"), access_url_base=base,
        ttl=settings.console.token_ttl)
    return tokens.access_url(base, console_type, token)


async def create(deps: Deps, request: Request) -> Response:
    """``POST /servers/{server_id}/remote-consoles`` (microversion 2.6 and later)."""
    call = Call(deps, request)
    if call.version < "2.6":
        raise NotFound()
    body = await call.body("remote_console")
    protocols, types = _PROTOCOLS, _TYPES
    if call.version >= "2.8":
        protocols, types = protocols + ("mks",), types + ("webmks",)
    protocol = _choice(body, "protocol", protocols)
    console_type = _choice(body, "type", types)
    _only(body, ("protocol", "type"))
    inst = await call.instance(request.path_params["server_id"], RULE)
    url = await _console_url(call, inst, protocol, console_type)
    return ok({"remote_console": {"protocol": protocol, "type": console_type, "url": url}})


async def legacy_action(call: Call, inst: Instance, name: str, body: Any) -> Response:
    """``os-getVNCConsole`` and friends (microversions 2.1 to 2.5)."""
    if call.version >= "2.6":
        raise NotFound()
    protocol, types = LEGACY[name]
    if not isinstance(body, dict):
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: {body}. "
                         f"{body!r} is not of type 'object'")
    console_type = _choice(body, "type", types)
    _only(body, ("type",))
    call.enforce(RULE, {"project_id": inst.project_id})
    url = await _console_url(call, inst, protocol, console_type)
    return ok({"console": {"type": console_type, "url": url}})


def action(name: str) -> Any:
    """The handler of one legacy console action, for the action table."""
    async def handler(call: Call, inst: Instance, body: Any) -> Response:
        return await legacy_action(call, inst, name, body)
    return handler


async def show_token(deps: Deps, request: Request) -> Response:
    """``GET /os-console-auth-tokens/{console_token}``: the connection a token opens."""
    call = Call(deps, request)
    call.enforce(TOKENS_RULE)
    token = request.path_params["console_token"]
    if not token:
        raise BadRequest("token not provided")
    info = await tokens.validate(deps.db, token)
    if info is None:
        raise NotFound("Token not found")
    if call.version < "2.31" and info.console_type != "rdp-html5":
        raise Unauthorized("The requested console type details are not accessible")
    return ok({"console": {"instance_uuid": info.instance_uuid, "host": info.host,
                           "port": info.port,
                           "internal_access_path": info.internal_access_path}})
