"""Who is calling: the request context every API handler receives.

The identity service validates tokens; every other service gets a
:class:`TokenValidator` from the wiring function and never reads identity's
tables. The auth middleware puts the resulting :class:`RequestContext` on
``request.state.context``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class RequestContext:
    user_id: str
    user_name: str = ""
    user_domain_id: str = ""
    project_id: str | None = None
    project_name: str = ""
    project_domain_id: str | None = None
    domain_id: str | None = None  # domain-scoped token
    system_scope: str | None = None  # "all" for system-scoped tokens
    roles: tuple[str, ...] = ()
    audit_ids: tuple[str, ...] = ()
    expires_at: str = ""
    token: str = field(default="", repr=False)
    is_service: bool = False  # carries a valid X-Service-Token of a service user
    request_id: str = ""

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def has_role(self, role: str) -> bool:
        return role in self.roles


class TokenValidator(Protocol):
    """Turns a token into a context, or raises ``stratus.errors.Unauthorized``."""

    async def validate(self, token: str) -> RequestContext: ...
