"""Identity service wiring: Keystone v3 on the identity port.

``build`` bootstraps the cloud (cheap after the first start), installs the
in-process token validator every other service of this process uses, and a
service-token issuer for :meth:`Runtime.service_headers`.
"""

from __future__ import annotations

import logging
from datetime import datetime

from stratus.api.app import build_app
from stratus.api.faults import FaultStyle
from stratus.api.policy import Policy
from stratus.identity import bootstrap as boot
from stratus.identity import models as m
from stratus.identity.authn import Authenticator
from stratus.identity.core import DEFAULT_DOMAIN_ID, Identity, find_row
from stratus.identity.provider import LocalValidator, TokenProvider
from stratus.identity.routes import (
    auth,
    catalog,
    credentials,
    extensions,
    limits,
    resources,
    roles,
    trusts,
)
from stratus.identity.routes.common import Api
from stratus.identity.rules import RULES
from stratus.identity.tokens import PROJECT
from stratus.runtime import Runtime, Service

log = logging.getLogger("stratus.identity")


class IdentityService(Service):
    name = "identity"

    def __init__(self, runtime: Runtime, idn: Identity, provider: TokenProvider,
                 policy: Policy) -> None:
        self.runtime = runtime
        self.idn = idn
        self.provider = provider
        self.policy = policy
        api = Api(idn, provider, Authenticator(idn, provider), policy)
        routes = [*auth.routes(api), *resources.routes(api), *roles.routes(api),
                  *catalog.routes(api), *credentials.routes(api), *limits.routes(api),
                  *extensions.routes(api), *trusts.routes(api)]
        self.app = build_app("identity", routes, metrics=runtime.metrics,
                             style=FaultStyle.KEYSTONE,
                             max_body=runtime.settings.max_request_body)

    async def issue_service_token(self, user: str = "compute") -> tuple[str, datetime]:
        """A token of a service user without a password check (in-process shortcut)."""
        async with self.idn.db.session() as s:
            row = await find_row(s, m.users, domain_id=DEFAULT_DOMAIN_ID, name=user)
            project = await find_row(s, m.projects, domain_id=DEFAULT_DOMAIN_ID,
                                     name=boot.SERVICE_PROJECT)
        if row is None or project is None:
            raise RuntimeError(f"service user {user!r} is missing; run stratus identity "
                               "bootstrap")
        payload = self.provider.new_payload(row["id"], ["password"], PROJECT, project["id"])
        valid = await self.provider.issue(payload)
        return valid.token_id, payload.expires_at


async def build(runtime: Runtime) -> Service:
    settings = runtime.settings
    idn = Identity(settings, runtime.db)
    provider = TokenProvider(idn)
    policy = Policy.for_service(settings, "identity", RULES)
    result = await boot.bootstrap(idn)
    if result.created:
        log.info("bootstrap created: %s", ", ".join(result.created))
    service = IdentityService(runtime, idn, provider, policy)
    runtime.token_validator = LocalValidator(provider)
    runtime.extras["identity.service_token"] = service.issue_service_token
    runtime.extras.setdefault("banner", []).extend(boot.banner_lines(result, settings))
    return service
