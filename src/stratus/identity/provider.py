"""Issue and validate tokens; the validation cache; revocation events.

Validation decrypts the Fernet token, checks it against the revocation
events, then looks up what the token means *now* (the user and scope still
exist and are enabled, the roles held today, implications expanded) and
caches the result. Any identity write drops the cache (:meth:`Identity.changed`),
so a validation after a role removal or a user deletion sees it at once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.api.context import RequestContext
from stratus.db.base import utcnow
from stratus.errors import Unauthorized
from stratus.identity import models as m
from stratus.identity.assignments import RoleTable, effective_role_ids, load_role_table
from stratus.identity.catalog import build_catalog
from stratus.identity.core import Identity, Row, find_row
from stratus.identity.security import password_expires_at
from stratus.identity.tokens import (
    DOMAIN,
    PROJECT,
    SYSTEM,
    TokenPayload,
    format_time,
    new_audit_id,
)
from stratus.identity.trusts import TrustUnusable, delegated_roles


class InvalidToken(Exception):
    """The token is not one we made, or is expired, revoked, or no longer means anything."""


@dataclass
class ValidToken:
    token_id: str
    payload: TokenPayload
    body: dict[str, Any]  # the "token" object, without the catalog
    context: RequestContext
    role_names: tuple[str, ...]
    _rendered: dict[bool, bytes] = field(default_factory=dict, repr=False)
    catalog: list[dict[str, Any]] | None = None

    @property
    def user_id(self) -> str:
        return self.payload.user_id

    def render(self, with_catalog: bool) -> bytes:
        """The JSON body of validate/issue responses, rendered once per token."""
        cached = self._rendered.get(with_catalog)
        if cached is None:
            body = dict(self.body)
            if with_catalog and self.catalog is not None:
                body["catalog"] = self.catalog
            cached = json.dumps({"token": body}, separators=(",", ":")).encode()
            self._rendered[with_catalog] = cached
        return cached


@dataclass(frozen=True)
class RevocationEvent:
    issued_before: datetime
    user_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    audit_id: str | None = None
    audit_chain_id: str | None = None

    def matches(self, payload: TokenPayload, domains: tuple[str | None, ...]) -> bool:
        if payload.issued_at > self.issued_before:
            return False
        if self.user_id is not None and self.user_id != payload.user_id:
            return False
        if self.project_id is not None and self.project_id != payload.project_id:
            return False
        if self.domain_id is not None and self.domain_id not in domains:
            return False
        if self.audit_id is not None and (not payload.audit_ids
                                          or self.audit_id != payload.audit_ids[0]):
            return False
        if self.audit_chain_id is not None and (not payload.audit_ids
                                                or self.audit_chain_id != payload.audit_ids[-1]):
            return False
        return True


class TokenProvider:
    MAX_CACHE = 50_000

    def __init__(self, idn: Identity) -> None:
        self.idn = idn
        self.ttl = idn.config.token_cache_ttl
        self._cache: dict[str, tuple[ValidToken, float]] = {}
        self._roles: RoleTable | None = None
        self._catalog: dict[str | None, list[dict[str, Any]]] = {}
        self._events: list[RevocationEvent] = []
        self._events_loaded = -1e9
        idn.on_change(self.clear)

    def clear(self) -> None:
        self._cache.clear()
        self._roles = None
        self._catalog.clear()

    # --- revocation -------------------------------------------------------

    async def _load_events(self, s: AsyncSession) -> None:
        horizon = utcnow() - timedelta(seconds=self.idn.config.token_expiration
                                       + self.idn.config.allow_expired_window)
        rows = (await s.execute(select(m.revocation_events).where(
            m.revocation_events.c.issued_before >= horizon))).mappings().all()
        self._events = [RevocationEvent(
            issued_before=r["issued_before"], user_id=r["user_id"], project_id=r["project_id"],
            domain_id=r["domain_id"], audit_id=r["audit_id"],
            audit_chain_id=r["audit_chain_id"]) for r in rows]
        self._events_loaded = time.monotonic()

    async def revoke(self, s: AsyncSession, **criteria: str | None) -> None:
        """Record a revocation event: tokens issued until now that match ``criteria`` die."""
        now = datetime.now(UTC)
        event = RevocationEvent(issued_before=now, **criteria)
        await s.execute(insert(m.revocation_events).values(
            issued_before=now, revoked_at=now, **criteria))
        horizon = now - timedelta(seconds=self.idn.config.token_expiration
                                  + self.idn.config.allow_expired_window)
        await s.execute(delete(m.revocation_events).where(
            m.revocation_events.c.issued_before < horizon))
        self._events.append(event)
        self.clear()

    def list_events(self) -> list[RevocationEvent]:
        return list(self._events)

    # --- issue ------------------------------------------------------------

    def new_payload(self, user_id: str, methods: list[str], scope_kind: str | None,
                    scope_id: str | None, *, parent: TokenPayload | None = None,
                    app_cred_id: str | None = None, trust_id: str | None = None,
                    expires_at: datetime | None = None) -> TokenPayload:
        now = datetime.now(UTC)
        expiry = now + timedelta(seconds=self.idn.config.token_expiration)
        if parent is not None:
            expiry = min(expiry, parent.expires_at)
        if expires_at is not None:
            expiry = min(expiry, expires_at)
        audit_ids = (new_audit_id(),) + ((parent.audit_ids[-1],) if parent else ())
        return TokenPayload(user_id=user_id, methods=tuple(dict.fromkeys(methods)),
                            expires_at=expiry, issued_at=now, audit_ids=audit_ids,
                            scope_kind=scope_kind, scope_id=scope_id, app_cred_id=app_cred_id,
                            trust_id=trust_id)

    async def issue(self, payload: TokenPayload) -> ValidToken:
        token_id = self.idn.codec.issue(payload)
        async with self.idn.db.session() as s:
            valid = await self._describe(s, token_id, payload, allow_expired=False)
        self._remember(valid)
        return valid

    # --- validate ---------------------------------------------------------

    async def validate(self, token_id: str, *, allow_expired: bool = False) -> ValidToken:
        """The meaning of a token now, or :class:`InvalidToken`."""
        now = time.monotonic()
        hit = self._cache.get(token_id)
        if hit is not None and hit[1] > now:
            valid = hit[0]
            if allow_expired or valid.payload.expires_at > datetime.now(UTC):
                return valid
        try:
            payload = self.idn.codec.read(token_id)
        except ValueError as exc:
            raise InvalidToken(str(exc)) from None
        async with self.idn.db.session() as s:
            valid = await self._describe(s, token_id, payload, allow_expired=allow_expired)
        if valid.payload.expires_at > datetime.now(UTC):
            self._remember(valid)
        return valid

    def _remember(self, valid: ValidToken) -> None:
        if len(self._cache) >= self.MAX_CACHE:
            self._cache.clear()
        remaining = (valid.payload.expires_at - datetime.now(UTC)).total_seconds()
        self._cache[valid.token_id] = (valid, time.monotonic() + max(0.0, min(self.ttl,
                                                                              remaining)))

    async def role_table(self, s: AsyncSession) -> RoleTable:
        if self._roles is None:
            self._roles = await load_role_table(s)
        return self._roles

    async def catalog(self, s: AsyncSession, project_id: str | None) -> list[dict[str, Any]]:
        if project_id not in self._catalog:
            self._catalog[project_id] = await build_catalog(s, project_id)
        return self._catalog[project_id]

    async def _describe(self, s: AsyncSession, token_id: str, payload: TokenPayload, *,
                        allow_expired: bool) -> ValidToken:
        now = datetime.now(UTC)
        if payload.expires_at <= now:
            window = timedelta(seconds=self.idn.config.allow_expired_window)
            if not allow_expired or payload.expires_at + window <= now:
                raise InvalidToken("the token has expired")
        if time.monotonic() - self._events_loaded > max(self.ttl, 1.0):
            await self._load_events(s)
        user = await find_row(s, m.users, id=payload.user_id)
        if user is None or not user["enabled"]:
            raise InvalidToken("the user is gone or disabled")
        user_domain = await find_row(s, m.domains, id=user["domain_id"])
        if user_domain is None or not user_domain["enabled"]:
            raise InvalidToken("the user's domain is disabled")
        project: Row | None = None
        scope_domain: Row | None = None
        if payload.scope_kind == PROJECT:
            project = await find_row(s, m.projects, id=payload.scope_id)
            if project is None or not project["enabled"]:
                raise InvalidToken("the project is gone or disabled")
            scope_domain = await find_row(s, m.domains, id=project["domain_id"])
        elif payload.scope_kind == DOMAIN:
            scope_domain = await find_row(s, m.domains, id=payload.scope_id)
        if payload.scope_kind in (PROJECT, DOMAIN) and (
                scope_domain is None or not scope_domain["enabled"]):
            raise InvalidToken("the scope's domain is gone or disabled")
        table = await self.role_table(s)
        trust: Row | None = None
        subjects = [payload]
        if payload.trust_id:
            trust = await find_row(s, m.trusts, id=payload.trust_id)
            if trust is None or trust["trustee_user_id"] != payload.user_id:
                raise InvalidToken("the trust is gone")
            try:
                role_ids = await delegated_roles(s, table, trust)
            except TrustUnusable as exc:
                raise InvalidToken(str(exc)) from None
            # Whatever revokes the trustor's tokens revokes those acting for it.
            subjects.append(replace(payload, user_id=trust["trustor_user_id"]))
            if trust["impersonation"]:
                user = await find_row(s, m.users, id=trust["trustor_user_id"])
                assert user is not None  # delegated_roles checked it
                user_domain = await find_row(s, m.domains, id=user["domain_id"])
                if user_domain is None or not user_domain["enabled"]:
                    raise InvalidToken("the trustor's domain is disabled")
        else:
            role_ids = await effective_role_ids(s, table, payload.user_id,
                                                payload.scope_kind, payload.scope_id)
        domains = (user["domain_id"], scope_domain["id"] if scope_domain else None)
        for event in self._events:
            if any(event.matches(subject, domains) for subject in subjects):
                raise InvalidToken("the token has been revoked")
        app_cred: Row | None = None
        if payload.app_cred_id:
            app_cred = await find_row(s, m.app_creds, id=payload.app_cred_id)
            if app_cred is None or (app_cred["expires_at"] is not None
                                    and app_cred["expires_at"] <= now):
                raise InvalidToken("the application credential is gone or expired")
            allowed = set(table.expand(app_cred["roles"] or []))
            role_ids = [r for r in role_ids if r in allowed]
        if payload.scope_kind is not None and not role_ids:
            raise InvalidToken("the user has no role on the token's scope any more")

        roles = [{"id": rid, "name": table.by_id[rid]["name"]} for rid in role_ids]
        for entry, rid in zip(roles, role_ids):
            if table.by_id[rid]["domain_id"]:
                entry["domain_id"] = table.by_id[rid]["domain_id"]
        body: dict[str, Any] = {
            "methods": list(payload.methods),
            "user": {"id": user["id"], "name": user["name"],
                     "domain": {"id": user_domain["id"], "name": user_domain["name"]},
                     "password_expires_at": password_expires_at(self.idn, user)},
            "audit_ids": list(payload.audit_ids),
            "expires_at": format_time(payload.expires_at),
            "issued_at": format_time(payload.issued_at),
        }
        catalog = None
        if payload.scope_kind == PROJECT:
            assert project is not None and scope_domain is not None
            body["project"] = {"id": project["id"], "name": project["name"],
                               "domain": {"id": scope_domain["id"],
                                          "name": scope_domain["name"]}}
            body["is_domain"] = False
        elif payload.scope_kind == DOMAIN:
            assert scope_domain is not None
            body["domain"] = {"id": scope_domain["id"], "name": scope_domain["name"]}
        elif payload.scope_kind == SYSTEM:
            body["system"] = {"all": True}
        if payload.scope_kind is not None:
            body["roles"] = roles
            catalog = await self.catalog(s, payload.project_id)
        if trust is not None:
            body["OS-TRUST:trust"] = {
                "id": trust["id"], "impersonation": trust["impersonation"],
                "trustee_user": {"id": trust["trustee_user_id"]},
                "trustor_user": {"id": trust["trustor_user_id"]}}
        if app_cred is not None:
            body["application_credential"] = {
                "id": app_cred["id"], "name": app_cred["name"],
                "restricted": not app_cred["unrestricted"]}
            if app_cred["access_rules"]:
                body["application_credential"]["access_rules"] = app_cred["access_rules"]
        names = tuple(r["name"] for r in roles)
        context = RequestContext(
            user_id=user["id"], user_name=user["name"], user_domain_id=user["domain_id"],
            project_id=payload.project_id, project_name=project["name"] if project else "",
            project_domain_id=project["domain_id"] if project else None,
            domain_id=payload.domain_id, system_scope=payload.system,
            roles=names, audit_ids=payload.audit_ids, expires_at=body["expires_at"],
            token=token_id)
        return ValidToken(token_id=token_id, payload=payload, body=body, context=context,
                          role_names=names, catalog=catalog)


class LocalValidator:
    """The in-process :class:`~stratus.api.context.TokenValidator` for every service."""

    def __init__(self, provider: TokenProvider) -> None:
        self.provider = provider

    async def validate(self, token: str) -> RequestContext:
        try:
            valid = await self.provider.validate(token)
        except InvalidToken:
            raise Unauthorized("The request you have made requires authentication.") from None
        return valid.context

    async def validate_allow_expired(self, token: str) -> RequestContext:
        """For service-accompanied requests: expired within allow_expired_window is fine."""
        try:
            valid = await self.provider.validate(token, allow_expired=True)
        except InvalidToken:
            raise Unauthorized("The request you have made requires authentication.") from None
        return valid.context


def with_request_id(context: RequestContext, request_id: str) -> RequestContext:
    return replace(context, request_id=request_id)
