"""``POST /v3/auth/tokens``: read the auth request, prove who is asking, pick the scope.

Every failure to prove identity is the same 401 with the same message,
whether the user does not exist, is disabled or gave the wrong password, and
an unknown user costs a bcrypt check too, so neither the answer nor its
timing says which names exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stratus.errors import BadRequest, Forbidden, NotFound, Unauthorized
from stratus.identity import models as m
from stratus.identity import security, trusts
from stratus.identity.assignments import effective_role_ids
from stratus.identity.core import Identity, Row, find_row
from stratus.identity.provider import InvalidToken, TokenProvider, ValidToken
from stratus.identity.tokens import DOMAIN, PROJECT, SYSTEM, TokenPayload

AUTH_FAILED = "The request you have made requires authentication."
METHODS = ("password", "token", "application_credential")


def _obj(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise BadRequest(f"Invalid input for field '{what}': it must be an object.")
    return data


def _str(data: Mapping[str, Any], key: str, what: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field '{what}.{key}': it must be a string.")
    return value


async def _domain_ref(s: AsyncSession, ref: Any, what: str) -> Row | None:
    ref = _obj(ref, what)
    if _str(ref, "id", what):
        return await find_row(s, m.domains, id=ref["id"])
    if _str(ref, "name", what):
        return await find_row(s, m.domains, name=ref["name"])
    raise BadRequest(f"Invalid input for field '{what}': an id or a name is required.")


async def _find_user(s: AsyncSession, ref: Mapping[str, Any]) -> Row | None:
    if _str(ref, "id", "user"):
        return await find_row(s, m.users, id=ref["id"])
    name = _str(ref, "name", "user")
    if not name:
        raise BadRequest("Invalid input for field 'user': an id or a name is required.")
    if "domain" not in ref:
        raise BadRequest("Invalid input for field 'user': a user name needs a domain.")
    domain = await _domain_ref(s, ref["domain"], "user.domain")
    if domain is None:
        return None
    return await find_row(s, m.users, domain_id=domain["id"], name=name)


def _check_scope_shape(scope: Any) -> None:
    """Reject a malformed scope with 400 before any password is checked."""
    if scope is None or scope == "unscoped":
        return
    scope = _obj(scope, "scope")
    if "project" in scope:
        ref = _obj(scope["project"], "scope.project")
        if not _str(ref, "id", "scope.project"):
            if not _str(ref, "name", "scope.project") or "domain" not in ref:
                raise BadRequest("Invalid input for field 'scope.project': an id, or a name and "
                                 "a domain, is required.")
            domain = _obj(ref["domain"], "scope.project.domain")
            if not (_str(domain, "id", "domain") or _str(domain, "name", "domain")):
                raise BadRequest("Invalid input for field 'scope.project.domain'.")
    elif "domain" in scope:
        ref = _obj(scope["domain"], "scope.domain")
        if not (_str(ref, "id", "scope.domain") or _str(ref, "name", "scope.domain")):
            raise BadRequest("Invalid input for field 'scope.domain': an id or a name.")
    elif "system" in scope:
        _obj(scope["system"], "scope.system")
    elif "OS-TRUST:trust" not in scope:
        raise BadRequest("Invalid input for field 'scope': project, domain or system.")


class Authenticator:
    def __init__(self, idn: Identity, provider: TokenProvider) -> None:
        self.idn = idn
        self.provider = provider

    async def authenticate(self, auth: Mapping[str, Any], header_token: str | None
                           ) -> ValidToken:
        identity = _obj(auth.get("identity"), "auth.identity")
        methods = identity.get("methods")
        if not isinstance(methods, list) or not methods or not all(
                isinstance(x, str) for x in methods):
            raise BadRequest("Invalid input for field 'identity.methods': a non-empty list of "
                             "strings is required.")
        for method in methods:
            if method not in METHODS:
                raise Unauthorized("Attempted to authenticate with an unsupported method.")
            if method not in identity:
                raise BadRequest(f"Invalid input for field 'identity': {method!r} is missing.")
        scope = auth.get("scope")
        _check_scope_shape(scope)
        if "application_credential" in methods:
            return await self._app_cred(_obj(identity["application_credential"],
                                             "identity.application_credential"), scope)
        parent: TokenPayload | None = None
        user_id: str
        if "token" in methods:
            parent = await self._token(_obj(identity["token"], "identity.token"), header_token)
            user_id = parent.user_id
        if "password" in methods:
            user = await self._password(_obj(identity["password"], "identity.password"))
            if parent is not None and parent.user_id != user["id"]:
                raise Unauthorized(AUTH_FAILED)
            user_id = user["id"]
        if parent is not None and parent.trust_id:
            raise Forbidden("A trust-scoped token cannot be rescoped.")
        trust: Row | None = None
        async with self.idn.db.session() as s:
            user_row = await find_row(s, m.users, id=user_id)
            if user_row is None:
                raise Unauthorized(AUTH_FAILED)
            if isinstance(scope, dict) and "OS-TRUST:trust" in scope:
                trust = await self._trust(s, user_id, scope["OS-TRUST:trust"])
                kind, target = (PROJECT, trust["project_id"]) if trust["project_id"] else (
                    None, None)
            else:
                kind, target = await self._scope(s, user_row, scope)
                if kind is not None:
                    table = await self.provider.role_table(s)
                    if not await effective_role_ids(s, table, user_id, kind, target):
                        raise Unauthorized(
                            f"User {user_id} has no access to the requested scope.")
        all_methods = list(methods)
        if parent is not None:
            all_methods = list(dict.fromkeys([*parent.methods, *methods]))
        payload = self.provider.new_payload(
            user_id, all_methods, kind, target, parent=parent,
            trust_id=trust["id"] if trust else None,
            expires_at=trust["expires_at"] if trust else None)
        valid = await self._issue(payload)
        if trust is not None:
            async with self.idn.db.session() as s:
                await trusts.consume(s, trust["id"])
        return valid

    async def _trust(self, s: AsyncSession, user_id: str, ref: Any) -> Row:
        """The trust a trust-scoped token is asked for, once the trustee proved who it is."""
        trust_id = _str(_obj(ref, "scope.OS-TRUST:trust"), "id", "scope.OS-TRUST:trust")
        if not trust_id:
            raise BadRequest("Invalid input for field 'scope.OS-TRUST:trust': an id is "
                             "required.")
        trust = await find_row(s, m.trusts, id=trust_id)
        if trust is None or trusts.is_expired(trust):
            raise Unauthorized(f"{AUTH_FAILED} (unknown or expired trust)")
        if trust["trustee_user_id"] != user_id:
            raise Forbidden("Only the trustee of a trust can use it.")
        if trust["remaining_uses"] is not None and trust["remaining_uses"] < 1:
            raise Forbidden(f"The trust {trust_id} has no uses left.")
        try:
            await trusts.delegated_roles(s, await self.provider.role_table(s), trust)
        except trusts.TrustUnusable as exc:
            raise Forbidden(f"The trust {trust_id} cannot be used: {exc}.") from None
        return trust

    async def _issue(self, payload: TokenPayload) -> ValidToken:
        try:
            return await self.provider.issue(payload)
        except InvalidToken as exc:
            raise Unauthorized(f"{AUTH_FAILED} ({exc})") from None

    async def _password(self, data: Mapping[str, Any]) -> Row:
        ref = _obj(data.get("user"), "identity.password.user")
        password = ref.get("password")
        if not isinstance(password, str):
            raise BadRequest("Invalid input for field 'identity.password.user.password'.")
        async with self.idn.db.session() as s:
            user = await _find_user(s, ref)
            domain = await find_row(s, m.domains, id=user["domain_id"]) if user else None
            locked = user is not None and await security.is_locked(self.idn, s, user)
        ok = await self.idn.hasher.verify(password, user["password_hash"] if user else None)
        if user is not None and not locked and self.idn.config.lockout_failure_attempts:
            async with self.idn.db.session() as s:
                await security.record_login(self.idn, s, user, ok)
        if (not ok or locked or user is None or not user["enabled"] or domain is None
                or not domain["enabled"] or security.password_expired(self.idn, user)):
            raise Unauthorized(AUTH_FAILED)
        return user

    async def _token(self, data: Mapping[str, Any], header_token: str | None) -> TokenPayload:
        token_id = data.get("id") or header_token
        if not isinstance(token_id, str) or not token_id:
            raise BadRequest("Invalid input for field 'identity.token.id'.")
        try:
            valid = await self.provider.validate(token_id)
        except InvalidToken:
            # Keystone's answer to a dead token offered as proof (Tempest expects it).
            raise NotFound(f"Could not find token: {token_id}.") from None
        if valid.payload.app_cred_id:
            raise Forbidden("A token created with an application credential cannot be "
                            "rescoped or used to make new tokens.")
        return valid.payload

    async def _app_cred(self, data: Mapping[str, Any], scope: Any) -> ValidToken:
        secret = data.get("secret")
        if not isinstance(secret, str):
            raise BadRequest("Invalid input for field "
                             "'identity.application_credential.secret'.")
        async with self.idn.db.session() as s:
            cred: Row | None = None
            if _str(data, "id", "application_credential"):
                cred = await find_row(s, m.app_creds, id=data["id"])
            elif _str(data, "name", "application_credential"):
                user = await _find_user(s, _obj(data.get("user"),
                                                "application_credential.user"))
                if user is not None:
                    cred = await find_row(s, m.app_creds, user_id=user["id"], name=data["name"])
            else:
                raise BadRequest("Invalid input for field 'application_credential': an id, or "
                                 "a name and a user, is required.")
        ok = await self.idn.hasher.verify(secret, cred["secret_hash"] if cred else None)
        if not ok or cred is None:
            raise Unauthorized(AUTH_FAILED)
        if cred["expires_at"] is not None and cred["expires_at"] <= datetime.now(UTC):
            raise Unauthorized(AUTH_FAILED)
        if scope:
            wanted = _obj(scope, "scope").get("project")
            if not isinstance(wanted, dict) or wanted.get("id", cred["project_id"]) != cred[
                    "project_id"]:
                raise Unauthorized("Application credentials cannot request a scope.")
        payload = self.provider.new_payload(cred["user_id"], ["application_credential"],
                                            PROJECT, cred["project_id"],
                                            app_cred_id=cred["id"],
                                            expires_at=cred["expires_at"])
        return await self._issue(payload)

    async def _scope(self, s: AsyncSession, user: Row, scope: Any
                     ) -> tuple[str | None, str | None]:
        if scope is None or scope == "unscoped":
            default = user.get("default_project_id")
            if default:
                project = await find_row(s, m.projects, id=default)
                table = await self.provider.role_table(s)
                if project and project["enabled"] and await effective_role_ids(
                        s, table, user["id"], PROJECT, default):
                    return PROJECT, default
            return None, None
        scope = _obj(scope, "scope")
        if "project" in scope:
            ref = _obj(scope["project"], "scope.project")
            if _str(ref, "id", "scope.project"):
                project = await find_row(s, m.projects, id=ref["id"])
            elif _str(ref, "name", "scope.project"):
                if "domain" not in ref:
                    raise BadRequest("Invalid input for field 'scope.project': a project name "
                                     "needs a domain.")
                domain = await _domain_ref(s, ref["domain"], "scope.project.domain")
                project = (await find_row(s, m.projects, domain_id=domain["id"],
                                          name=ref["name"]) if domain else None)
            else:
                raise BadRequest("Invalid input for field 'scope.project': an id or a name is "
                                 "required.")
            if project is None:
                raise Unauthorized(f"{AUTH_FAILED} (unknown project)")
            domain_row = await find_row(s, m.domains, id=project["domain_id"])
            if not project["enabled"] or domain_row is None or not domain_row["enabled"]:
                raise Unauthorized(f"Project {project['id']} is disabled.")
            return PROJECT, project["id"]
        if "domain" in scope:
            domain = await _domain_ref(s, scope["domain"], "scope.domain")
            if domain is None:
                raise Unauthorized(f"{AUTH_FAILED} (unknown domain)")
            if not domain["enabled"]:
                raise Unauthorized(f"Domain {domain['id']} is disabled.")
            return DOMAIN, domain["id"]
        if "system" in scope:
            system = _obj(scope["system"], "scope.system")
            if system.get("all") is not True:
                raise BadRequest("Invalid input for field 'scope.system': only 'all' exists.")
            return SYSTEM, "all"
        raise BadRequest("Invalid input for field 'scope': project, domain or system.")
