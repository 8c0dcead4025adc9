"""Who may do what: the network policy defaults and the caller handle domain code uses.

Neutron answers 404, not 403, when a caller may not even see a resource, so
existence never leaks across projects; :meth:`Caller.visible_or_404` does that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from stratus.api.context import RequestContext
from stratus.api.policy import Policy
from stratus.errors import Forbidden, NotFound

T = TypeVar("T")

OWNER = "rule:admin_required or project_id:%(project_id)s"
MEMBER = "rule:admin_required or (role:member and project_id:%(project_id)s)"

DEFAULTS: dict[str, str] = {
    "get_network": OWNER + " or True:%(shared)s or True:%(router:external)s",
    "create_network": MEMBER,
    "update_network": MEMBER,
    "delete_network": MEMBER,
    # Attach a port (or subnet) to a network that is not yours.
    "use_network": OWNER + " or True:%(shared)s",
    "get_subnet": OWNER + " or True:%(shared)s or True:%(router:external)s",
    "create_subnet": MEMBER,
    "update_subnet": MEMBER,
    "delete_subnet": MEMBER,
    "get_subnetpool": OWNER + " or True:%(shared)s",
    "create_subnetpool": MEMBER,
    "update_subnetpool": MEMBER,
    "delete_subnetpool": MEMBER,
    "get_port": OWNER + " or project_id:%(network_owner)s",
    "create_port": MEMBER,
    "update_port": MEMBER,
    "delete_port": MEMBER,
    "get_router": OWNER,
    "create_router": MEMBER,
    "update_router": MEMBER,
    "delete_router": MEMBER,
    "get_floatingip": OWNER,
    "create_floatingip": MEMBER,
    "update_floatingip": MEMBER,
    "delete_floatingip": MEMBER,
    "get_security_group": OWNER,
    "create_security_group": MEMBER,
    "update_security_group": MEMBER,
    "delete_security_group": MEMBER,
    "get_security_group_rule": OWNER + " or project_id:%(sg_project_id)s",
    "create_security_group_rule": MEMBER,
    "delete_security_group_rule": MEMBER,
    "get_quota": OWNER,
    "update_quota": "rule:admin_required",
    "delete_quota": "rule:admin_required",
    "list_quotas": "rule:admin_required",
    "get_agent": "rule:admin_required",
    "update_agent": "rule:admin_required",
    "delete_agent": "rule:admin_required",
}

LABELS = {
    "network": ("Network", "NetworkNotFound"),
    "subnet": ("Subnet", "SubnetNotFound"),
    "subnetpool": ("Subnet pool", "SubnetPoolNotFound"),
    "port": ("Port", "PortNotFound"),
    "router": ("Router", "RouterNotFound"),
    "floatingip": ("Floating IP", "FloatingIPNotFound"),
    "security_group": ("Security group", "SecurityGroupNotFound"),
    "security_group_rule": ("Security group rule", "SecurityGroupRuleNotFound"),
    "agent": ("Agent", "AgentNotFound"),
}


def not_found(resource: str, id_: str) -> NotFound:
    label, kind = LABELS[resource]
    return NotFound(f"{label} {id_} could not be found.", kind=kind)


@dataclass(frozen=True)
class Caller:
    ctx: RequestContext
    policy: Policy

    @property
    def project_id(self) -> str:
        return self.ctx.project_id or ""

    @property
    def is_admin(self) -> bool:
        return self.ctx.is_admin

    def can(self, rule: str, target: Mapping[str, Any]) -> bool:
        return self.policy.check(rule, self.ctx, target)

    def visible(self, resource: str, rows: Iterable[T], target: Callable[[T], Mapping[str, Any]]
                ) -> list[T]:
        """The rows the caller may see (admins see all: every get_* rule admits them)."""
        if self.is_admin:
            return list(rows)
        return [r for r in rows if self.can(f"get_{resource}", target(r))]

    def visible_or_404(self, resource: str, target: Mapping[str, Any]) -> None:
        if not self.can(f"get_{resource}", target):
            raise not_found(resource, str(target.get("id", "")))

    def enforce(self, action: str, resource: str, target: Mapping[str, Any]) -> None:
        """404 when the resource is invisible to the caller, 403 when only the action is denied."""
        if action != "create":
            self.visible_or_404(resource, target)
        if not self.can(f"{action}_{resource}", target):
            raise Forbidden(f"rule:{action}_{resource} is disallowed by policy",
                            kind="PolicyNotAuthorized")


def policy_for(settings: Any) -> Policy:
    return Policy.for_service(settings, "network", DEFAULTS)
