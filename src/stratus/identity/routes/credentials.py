"""Application credentials, credentials (EC2-style blobs) and the legacy policy API."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stratus.db.base import new_hex_id
from stratus.errors import BadRequest, Conflict, Forbidden
from stratus.identity import models as m
from stratus.identity.assignments import effective_role_ids
from stratus.identity.core import Identity, extras, find_row, get_row, text
from stratus.identity.routes.common import Api, matches, no_content, ok, route
from stratus.identity.tokens import PROJECT, parse_time


def app_cred_view(idn: Identity, row: dict[str, Any], role_rows: list[dict[str, Any]],
                  secret: str | None = None) -> dict[str, Any]:
    out = {"id": row["id"], "name": row["name"], "description": row["description"],
           "user_id": row["user_id"], "project_id": row["project_id"],
           # Keystone echoes the naive ISO form it was given (Tempest compares it).
           "expires_at": (row["expires_at"].replace(tzinfo=None).isoformat()
                          if row["expires_at"] else None),
           "unrestricted": row["unrestricted"], "access_rules": row["access_rules"] or [],
           "roles": [{"id": r["id"], "name": r["name"], "domain_id": r["domain_id"] or None}
                     for r in role_rows],
           "links": idn.link(f"users/{row['user_id']}/application_credentials/{row['id']}")}
    if secret is not None:
        out["secret"] = secret
    return out


def credential_view(idn: Identity, row: dict[str, Any]) -> dict[str, Any]:
    return {**(row.get("extra") or {}), "id": row["id"], "user_id": row["user_id"],
            "project_id": row["project_id"], "type": row["type"], "blob": row["blob"],
            "links": idn.link(f"credentials/{row['id']}")}


def routes(api: Api) -> list[Route]:
    idn = api.idn

    async def roles_of(s: Any, role_ids: list[str]) -> list[dict[str, Any]]:
        table = await api.provider.role_table(s)
        return [table.by_id[r] for r in role_ids if r in table.by_id]

    async def create_app_cred(request: Request) -> Response:
        user_id = request.path_params["user_id"]
        caller = await api.authorize(request, "identity:create_application_credential",
                                     {"user_id": user_id})
        body = await api.body(request, "application_credential")
        if caller.payload.scope_kind != PROJECT or caller.payload.project_id is None:
            raise BadRequest("Application credentials are made with a project-scoped token.")
        if caller.payload.trust_id:
            raise Forbidden("A trust-scoped token cannot create application credentials.")
        if caller.payload.app_cred_id:
            async with idn.db.session() as s:
                parent = await find_row(s, m.app_creds, id=caller.payload.app_cred_id)
            if not parent or not parent["unrestricted"]:
                raise Forbidden("A restricted application credential cannot make "
                                "application credentials.")
        name = text(body, "name", required=True)
        secret = text(body, "secret", nullable=True, max_len=4096) or base64.urlsafe_b64encode(
            secrets.token_bytes(64)).decode().rstrip("=")
        expires_at = None
        if body.get("expires_at"):
            try:
                expires_at = parse_time(str(body["expires_at"]))
            except ValueError:
                raise BadRequest("Invalid input for field 'expires_at': not a date.") from None
            if expires_at <= datetime.now(UTC):
                raise BadRequest("Invalid input for field 'expires_at': it is in the past.")
        unrestricted = body.get("unrestricted", False)
        if not isinstance(unrestricted, bool):
            raise BadRequest("Invalid input for field 'unrestricted': it must be a boolean.")
        access_rules = body.get("access_rules") or []
        if not isinstance(access_rules, list):
            raise BadRequest("Invalid input for field 'access_rules': it must be a list.")
        for rule in access_rules:
            if not isinstance(rule, dict) or not (rule.get("id") or all(
                    isinstance(rule.get(k), str) for k in ("service", "path", "method"))):
                raise BadRequest("Invalid input for field 'access_rules': each rule needs "
                                 "service, path and method (or the id of an existing rule).")
        project_id = caller.payload.project_id
        async with idn.db.session() as s:
            table = await api.provider.role_table(s)
            held = await effective_role_ids(s, table, user_id, PROJECT, project_id)
        wanted = body.get("roles")
        if not wanted:  # none named (null or []): the roles of the token making it
            role_ids = [r for r in held if table.by_id[r]["name"] in caller.role_names]
        else:
            if not isinstance(wanted, list):
                raise BadRequest("Invalid input for field 'roles': it must be a list.")
            role_ids = []
            for ref in wanted:
                if not isinstance(ref, dict):
                    raise BadRequest("Invalid input for field 'roles': a list of objects.")
                found = table.by_id.get(ref.get("id", "")) or (
                    table.by_name(ref["name"]) if isinstance(ref.get("name"), str) else None)
                if found is None or found["id"] not in held:
                    raise BadRequest(f"Role {ref.get('id') or ref.get('name')} is not assigned "
                                     "to the user on the project.")
                role_ids.append(found["id"])
        row = {"id": new_hex_id(), "name": name, "user_id": user_id, "project_id": project_id,
               "secret_hash": await idn.hasher.hash(secret),
               "description": text(body, "description", nullable=True, max_len=65535),
               "expires_at": expires_at, "unrestricted": unrestricted,
               "roles": list(dict.fromkeys(role_ids)), "access_rules": access_rules}
        async with idn.write("application credential") as s:
            if await find_row(s, m.app_creds, user_id=user_id, name=name):
                raise Conflict(f"Conflict occurred attempting to store application_credential "
                               f"- Duplicate entry found with name {name}.")
            row["access_rules"] = [await _access_rule(s, user_id, rule) for rule in access_rules]
            await s.execute(insert(m.app_creds).values(**row))
            roles = await roles_of(s, row["roles"])
        return ok({"application_credential": app_cred_view(idn, row, roles, secret)}, 201)

    async def list_app_creds(request: Request) -> Response:
        user_id = request.path_params["user_id"]
        await api.authorize(request, "identity:list_application_credentials",
                            {"user_id": user_id})
        async with idn.db.session() as s:
            await get_row(s, m.users, user_id, "user")
            rows = (await s.execute(select(m.app_creds).where(
                m.app_creds.c.user_id == user_id))).mappings().all()
            items = [app_cred_view(idn, dict(x), await roles_of(s, x["roles"] or []))
                     for x in rows if matches(x, request.query_params, ("name",))]
        return api.collection(request, "application_credentials", items)

    async def one_app_cred(request: Request) -> Response:
        user_id = request.path_params["user_id"]
        cred_id = request.path_params["cred_id"]
        rule = ("identity:delete_application_credential" if request.method == "DELETE"
                else "identity:get_application_credential")
        await api.authorize(request, rule, {"user_id": user_id})
        message = f"Could not find Application Credential: {cred_id}."
        if request.method == "DELETE":
            async with idn.write("application credential") as s:
                row = await get_row(s, m.app_creds, cred_id, "application credential",
                                    message=message)
                if row["user_id"] != user_id:
                    raise_not_found(message)
                await s.execute(delete(m.app_creds).where(m.app_creds.c.id == cred_id))
            return no_content()
        async with idn.db.session() as s:
            row = await get_row(s, m.app_creds, cred_id, "application credential",
                                message=message)
            if row["user_id"] != user_id:
                raise_not_found(message)
            roles = await roles_of(s, row["roles"] or [])
        return ok({"application_credential": app_cred_view(idn, row, roles)})

    # --- credentials --------------------------------------------------------

    async def list_credentials(request: Request) -> Response:
        caller = await api.authorize(request, "identity:list_credentials")
        async with idn.db.session() as s:
            rows = (await s.execute(select(m.credentials))).mappings().all()
        q = request.query_params
        admin = api.allowed(caller, "admin_required", {})
        items = [credential_view(idn, dict(x)) for x in rows
                 if (admin or x["user_id"] == caller.user_id)
                 and matches(x, q, ("user_id", "type"))]
        return api.collection(request, "credentials", items)

    async def create_credential(request: Request) -> Response:
        body = await api.body(request, "credential")
        user_id = text(body, "user_id", required=True)
        await api.authorize(request, "identity:create_credential",
                            {"target": {"credential": {"user_id": user_id}}})
        ctype = text(body, "type", required=True)
        blob = body.get("blob")
        if not isinstance(blob, str):
            raise BadRequest("Invalid input for field 'blob': it must be a string.")
        project_id = text(body, "project_id", nullable=True, max_len=64)
        cred_id = new_hex_id()
        if ctype == "ec2":
            try:
                access = json.loads(blob).get("access")
            except (ValueError, AttributeError):
                raise BadRequest("An ec2 credential blob is a JSON object with 'access'."
                                 ) from None
            if not project_id:
                raise BadRequest("An ec2 credential needs a project_id.")
            cred_id = hashlib.sha256(str(access).encode()).hexdigest()
        row = {"id": cred_id, "user_id": user_id, "project_id": project_id, "type": ctype,
               "blob": blob, "extra": extras(body, {"user_id", "project_id", "type", "blob"})}
        async with idn.write("credential") as s:
            await get_row(s, m.users, user_id, "user")
            if await find_row(s, m.credentials, id=cred_id):
                raise Conflict("Conflict occurred attempting to store credential - Duplicate "
                               "entry.")
            await s.execute(insert(m.credentials).values(**row))
        return ok({"credential": credential_view(idn, row)}, 201)

    async def one_credential(request: Request) -> Response:
        cred_id = request.path_params["credential_id"]
        caller = await api.caller(request)
        async with idn.db.session() as s:
            row = await get_row(s, m.credentials, cred_id, "credential")
        rule = {"GET": "identity:get_credential", "PATCH": "identity:update_credential",
                "DELETE": "identity:delete_credential"}[request.method]
        api.policy.enforce(rule, caller.context, {"target": {"credential": row}})
        if request.method == "GET":
            return ok({"credential": credential_view(idn, row)})
        if request.method == "DELETE":
            async with idn.write("credential") as s:
                await s.execute(delete(m.credentials).where(m.credentials.c.id == cred_id))
            return no_content()
        body = await api.body(request, "credential")
        values: dict[str, Any] = {}
        for key in ("type", "blob", "project_id", "user_id"):
            if key in body:
                values[key] = text(body, key, nullable=key == "project_id", max_len=65535)
        extra = extras(body, {"user_id", "project_id", "type", "blob"})
        if extra:
            values["extra"] = {**(row["extra"] or {}), **extra}
        async with idn.write("credential") as s:
            if values:
                await s.execute(update(m.credentials).where(m.credentials.c.id == cred_id)
                                .values(**values))
        return ok({"credential": credential_view(idn, {**row, **values})})

    # --- the legacy policy API ----------------------------------------------

    def policy_view(row: dict[str, Any]) -> dict[str, Any]:
        return {**(row.get("extra") or {}), "id": row["id"], "type": row["type"],
                "blob": row["blob"], "links": idn.link(f"policies/{row['id']}")}

    async def policies(request: Request) -> Response:
        await api.authorize(request, "identity:policies")
        if request.method == "GET":
            async with idn.db.session() as s:
                rows = (await s.execute(select(m.policies))).mappings().all()
            items = [policy_view(dict(x)) for x in rows
                     if matches(x, request.query_params, ("type",))]
            return api.collection(request, "policies", items)
        body = await api.body(request, "policy")
        row = {"id": new_hex_id(), "type": text(body, "type", required=True),
               "blob": text(body, "blob", required=True, max_len=1 << 20),
               "extra": extras(body, {"type", "blob"})}
        async with idn.write("policy") as s:
            await s.execute(insert(m.policies).values(**row))
        return ok({"policy": policy_view(row)}, 201)

    async def one_policy(request: Request) -> Response:
        await api.authorize(request, "identity:policies")
        policy_id = request.path_params["policy_id"]
        async with idn.write("policy") as s:
            row = await get_row(s, m.policies, policy_id, "policy")
            if request.method == "DELETE":
                await s.execute(delete(m.policies).where(m.policies.c.id == policy_id))
                return no_content()
            if request.method == "PATCH":
                body = await api.body(request, "policy")
                values: dict[str, Any] = {}
                for key in ("type", "blob"):
                    if key in body:
                        values[key] = text(body, key, required=True, max_len=1 << 20)
                extra = extras(body, {"type", "blob"})
                if extra:
                    values["extra"] = {**(row["extra"] or {}), **extra}
                if values:
                    await s.execute(update(m.policies).where(m.policies.c.id == policy_id)
                                    .values(**values))
                row = {**row, **values}
        return ok({"policy": policy_view(row)})

    creds = "/v3/users/{user_id}/application_credentials"
    return [
        route(creds, list_app_creds, ["GET"]),
        route(creds, create_app_cred, ["POST"]),
        route(creds + "/{cred_id}", one_app_cred, ["GET", "DELETE"]),
        route("/v3/credentials", list_credentials, ["GET"]),
        route("/v3/credentials", create_credential, ["POST"]),
        route("/v3/credentials/{credential_id}", one_credential, ["GET", "PATCH", "DELETE"]),
        route("/v3/policies", policies, ["GET", "POST"]),
        route("/v3/policies/{policy_id}", one_policy, ["GET", "PATCH", "DELETE"]),
    ]


async def _access_rule(s: Any, user_id: str, rule: dict[str, Any]) -> dict[str, Any]:
    """The user's stored access rule (found by id or by content), created if new."""
    if rule.get("id"):
        found = await find_row(s, m.access_rules, id=rule["id"], user_id=user_id)
        if found is None:
            raise_not_found(f"Could not find access rule: {rule['id']}.")
    else:
        key = {"user_id": user_id, "service": rule["service"], "path": rule["path"],
               "method": rule["method"]}
        found = await find_row(s, m.access_rules, **key)
        if found is None:
            found = {"id": new_hex_id(), **key}
            await s.execute(insert(m.access_rules).values(**found))
    assert found is not None
    return {k: found[k] for k in ("id", "service", "path", "method")}


def raise_not_found(message: str) -> None:
    from stratus.errors import NotFound

    raise NotFound(message)
