"""What every compute API handler shares: dependencies, caller, policy, helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from stratus.api.app import json_body, json_object
from stratus.api.auth import context_of
from stratus.api.context import RequestContext
from stratus.api.policy import Policy
from stratus.bus import Bus
from stratus.compute.api.microversion import Version, version_of
from stratus.compute.images import ImageAPI
from stratus.compute.instances import InstanceStore
from stratus.compute.lifecycle import Action
from stratus.compute.models import Instance
from stratus.compute.network import RestNetworkAPI
from stratus.compute.rpc import AgentAPI, ConductorAPI
from stratus.db import Database
from stratus.errors import BadRequest, Conflict, NotFound
from stratus.settings import Settings

P_READER = "rule:admin_required or rule:project_reader"
P_MEMBER = "rule:admin_required or rule:project_member"
P_ADMIN = "rule:admin_required"
P_ANY = "@"

# One rule per API operation, as Nova names them; operators override them in
# <data_dir>/policy/compute.json.
POLICY_DEFAULTS: dict[str, str] = {
    "os_compute_api:servers:index": P_READER,
    "os_compute_api:servers:index:get_all_tenants": P_ADMIN,
    "os_compute_api:servers:show": P_READER,
    "os_compute_api:servers:create": P_MEMBER,
    "os_compute_api:servers:create:forced_host": P_ADMIN,
    "os_compute_api:servers:update": P_MEMBER,
    "os_compute_api:servers:delete": P_MEMBER,
    "os_compute_api:servers:action": P_MEMBER,
    "os_compute_api:servers:admin_action": P_ADMIN,
    "os_compute_api:os-lock-server:unlock:unlock_override": P_ADMIN,
    "os_compute_api:server-metadata": P_MEMBER,
    "os_compute_api:server-metadata:read": P_READER,
    "os_compute_api:ips:index": P_READER,
    "os_compute_api:os-server-password:show": P_READER,
    "os_compute_api:os-server-password:clear": P_MEMBER,
    "os_compute_api:os-admin-actions:inject_network_info": P_ADMIN,
    "os_compute_api:os-floating-ips:list": P_READER,
    "os_compute_api:os-floating-ips:show": P_READER,
    "os_compute_api:os-floating-ips:create": P_MEMBER,
    "os_compute_api:os-floating-ips:delete": P_MEMBER,
    "os_compute_api:os-floating-ip-pools:list": P_ANY,
    "os_compute_api:os-tenant-networks:list": P_READER,
    "os_compute_api:os-tenant-networks:show": P_READER,
    "os_compute_api:ips:show": P_READER,
    "os_compute_api:os-instance-actions": P_READER,
    "os_compute_api:os-instance-actions:events": P_ADMIN,
    "os_compute_api:os-console-output": P_MEMBER,
    "os_compute_api:os-remote-consoles": P_MEMBER,
    "os_compute_api:os-console-auth-tokens": P_ADMIN,
    "os_compute_api:os-flavor-manage": P_ADMIN,
    "os_compute_api:os-keypairs": P_ANY,
    "os_compute_api:os-keypairs:other_user": P_ADMIN,
    "os_compute_api:os-quota-sets:show": P_READER,
    "os_compute_api:os-quota-sets:update": P_ADMIN,
    "os_compute_api:os-server-groups": P_MEMBER,
    "os_compute_api:os-server-groups:read": P_READER,
    "os_compute_api:os-admin": P_ADMIN,
    "os_compute_api:os-availability-zone:list": P_ANY,
}


@dataclass
class Deps:
    settings: Settings
    db: Database
    bus: Bus
    policy: Policy
    images: ImageAPI
    network: RestNetworkAPI | None = None

    def __post_init__(self) -> None:
        self.store = InstanceStore(self.db)
        self.conductor = ConductorAPI(self.bus)
        self.agents = AgentAPI(self.bus)


class Call:
    """One request's view: who, which microversion, and the common checks."""

    def __init__(self, deps: Deps, request: Request) -> None:
        self.deps = deps
        self.request = request
        self.ctx: RequestContext = context_of(request)
        self.version: Version = version_of(request)
        self.base = str(request.base_url).rstrip("/") + "/v2.1"

    @property
    def is_admin(self) -> bool:
        return self.deps.policy.check("context_is_admin", self.ctx, {})

    @property
    def project_id(self) -> str:
        return self.ctx.project_id or ""

    @property
    def request_id(self) -> str:
        return self.ctx.request_id or str(self.request.scope.get("state", {}).get(
            "request_id", ""))

    def enforce(self, rule: str, target: dict[str, Any] | None = None) -> None:
        target = target if target is not None else {"project_id": self.project_id}
        self.deps.policy.enforce(rule, self.ctx, target)

    def allowed(self, rule: str, target: dict[str, Any] | None = None) -> bool:
        return self.deps.policy.check(rule, self.ctx, target or {"project_id": self.project_id})

    async def body(self, key: str | None = None) -> dict[str, Any]:
        return json_object(await json_body(self.request), key)

    async def instance(self, uuid: str, rule: str = "os_compute_api:servers:show") -> Instance:
        """The instance, if it exists and the caller may see it (404 otherwise, as Nova)."""
        async with self.deps.db.session() as session:
            inst = await session.scalar(select(Instance).where(
                Instance.uuid == uuid, Instance.deleted.is_(False)))
        if inst is None or not self.allowed(rule, {"project_id": inst.project_id,
                                                   "user_id": inst.user_id}):
            if inst is not None and self.allowed("os_compute_api:servers:show",
                                                 {"project_id": inst.project_id}):
                self.enforce(rule, {"project_id": inst.project_id})
            raise NotFound(f"Instance {uuid} could not be found.")
        return inst

    def check_lock(self, inst: Instance, action: str) -> None:
        if inst.locked and not self.is_admin:
            raise Conflict(f"Instance {inst.uuid} is locked; cannot '{action}' it.")

    def query(self, name: str) -> str | None:
        return self.request.query_params.get(name)

    def query_int(self, name: str, default: int | None = None, minimum: int = 0) -> int | None:
        raw = self.query(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise BadRequest(f"Invalid {name} {raw!r}: must be an integer.") from None
        if value < minimum:
            raise BadRequest(f"Invalid {name} {value}: must be >= {minimum}.")
        return value


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if status == 204:
        return Response(status_code=204, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


def accepted() -> Response:
    return Response(status_code=202)


def require_str(body: dict[str, Any], key: str, *, max_len: int = 255, required: bool = True,
                allow_empty: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise BadRequest(f"'{key}' is a required property")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field/attribute {key}: {value!r} is not a string")
    if not allow_empty and not value.strip():
        raise BadRequest(f"Invalid input for field/attribute {key}: must not be blank")
    if len(value) > max_len:
        raise BadRequest(f"Invalid input for field/attribute {key}: longer than {max_len}")
    return value


def require_int(value: Any, name: str, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
    if isinstance(value, bool):
        raise BadRequest(f"Invalid input for field/attribute {name}: must be an integer")
    try:
        number = int(value)
        if isinstance(value, float) and value != number:
            raise ValueError
        if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
            raise ValueError
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for field/attribute {name}: {value!r} is not an "
                         "integer") from None
    if not minimum <= number <= maximum:
        raise BadRequest(f"Invalid input for field/attribute {name}: {number} is not between "
                         f"{minimum} and {maximum}")
    return number


def require_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    # Nova's parameter_types.boolean: these strings, any case.
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no",
                                                    "on", "off", "y", "n", "t", "f"):
        return value.lower() in ("true", "1", "yes", "on", "y", "t")
    raise BadRequest(f"Invalid input for field/attribute {name}: {value!r} is not a boolean")


def check_metadata(value: Any, name: str = "metadata") -> dict[str, str]:
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field/attribute {name}: must be an object")
    for k, v in value.items():
        if not isinstance(k, str) or not 1 <= len(k) <= 255:
            raise BadRequest(f"Invalid {name} key {k!r}: 1 to 255 characters")
        if not isinstance(v, str) or len(v) > 255:
            raise BadRequest(f"Invalid {name} value for {k!r}: a string of at most 255 "
                             "characters")
    return dict(value)


DISK_CONFIG = "OS-DCF:diskConfig"


def disk_config(body: dict[str, Any], image: dict[str, Any] | None = None) -> bool | None:
    """``OS-DCF:diskConfig`` of a request: True for AUTO, False for MANUAL, None if absent.
    AUTO is refused for an image whose ``auto_disk_config`` property disables it (Nova)."""
    if DISK_CONFIG not in body:
        return None
    value = body[DISK_CONFIG]
    if value not in ("AUTO", "MANUAL"):
        raise BadRequest(f"{DISK_CONFIG} must be either 'MANUAL' or 'AUTO'.")
    if value == "AUTO" and image is not None and str(
            image.get("auto_disk_config", "")).lower() in ("false", "0", "no", "disabled"):
        raise BadRequest(f"Requested image {image.get('id')} has automatic disk resize "
                         "disabled.")
    return value == "AUTO"


async def begin_action(call: Call, inst: Instance, action: Action, label: str | None = None,
                       **extra: Any) -> Instance:
    """Claim ``action`` (``extra`` = columns set in the same guarded write) and record it."""
    call.check_lock(inst, label or action.value)
    claimed = await call.deps.store.begin(inst.uuid, action, extra=extra)
    await call.deps.store.record_action(inst.uuid, label or action.value, call.request_id,
                                        call.project_id, call.ctx.user_id)
    return claimed
