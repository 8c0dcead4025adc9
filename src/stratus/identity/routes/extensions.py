"""Keystone's smaller APIs: access rules, OS-EC2 credentials, OS-OAUTH1 consumers
(records only, no OAuth flow) and domain-specific configuration (stored only)."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from sqlalchemy import delete, insert, select, update
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stratus.api.app import json_body, json_object
from stratus.db.base import new_hex_id
from stratus.errors import BadRequest, Forbidden, NotFound
from stratus.identity import models as m
from stratus.identity.core import find_row, get_row, text
from stratus.identity.routes.common import Api, no_content, ok, route

DEFAULT_DOMAIN_CONFIG = {
    "identity": {"driver": "sql", "list_limit": None},
    "ldap": {"url": "ldap://localhost", "user": "", "suffix": "cn=example,cn=com",
             "user_tree_dn": None, "group_tree_dn": None, "query_scope": "one",
             "page_size": 0, "use_tls": False},
}


def routes(api: Api) -> list[Route]:
    idn = api.idn

    # --- access rules -------------------------------------------------------

    def rule_view(row: dict[str, Any]) -> dict[str, Any]:
        return {"id": row["id"], "service": row["service"], "path": row["path"],
                "method": row["method"],
                "links": idn.link(f"users/{row['user_id']}/access_rules/{row['id']}")}

    async def list_rules(request: Request) -> Response:
        user_id = request.path_params["user_id"]
        await api.authorize(request, "identity:list_application_credentials",
                            {"user_id": user_id})
        async with idn.db.session() as s:
            rows = (await s.execute(select(m.access_rules).where(
                m.access_rules.c.user_id == user_id))).mappings().all()
        return api.collection(request, "access_rules", [rule_view(dict(r)) for r in rows])

    async def one_rule(request: Request) -> Response:
        user_id = request.path_params["user_id"]
        rule_id = request.path_params["rule_id"]
        rule = ("identity:delete_application_credential" if request.method == "DELETE"
                else "identity:get_application_credential")
        await api.authorize(request, rule, {"user_id": user_id})
        message = f"Could not find access rule: {rule_id}."
        async with idn.write("access rule") as s:
            row = await find_row(s, m.access_rules, id=rule_id, user_id=user_id)
            if row is None:
                raise NotFound(message)
            if request.method == "GET":
                return ok({"access_rule": rule_view(row)})
            creds = (await s.execute(select(m.app_creds.c.access_rules).where(
                m.app_creds.c.user_id == user_id))).scalars().all()
            if any(r.get("id") == rule_id for rules in creds for r in (rules or [])):
                raise Forbidden(f"Access rule {rule_id} is in use by an application "
                                "credential.")
            await s.execute(delete(m.access_rules).where(m.access_rules.c.id == rule_id))
        return no_content()

    # --- OS-EC2 -------------------------------------------------------------

    def ec2_view(row: dict[str, Any]) -> dict[str, Any]:
        blob = json.loads(row["blob"])
        return {"user_id": row["user_id"], "tenant_id": row["project_id"],
                "access": blob.get("access"), "secret": blob.get("secret"),
                "trust_id": blob.get("trust_id"),
                "links": idn.link(f"users/{row['user_id']}/credentials/OS-EC2/"
                                  f"{blob.get('access')}")}

    async def ec2_list_or_create(request: Request) -> Response:
        user_id = request.path_params["user_id"]
        if request.method == "GET":
            await api.authorize(request, "identity:list_application_credentials",
                                {"user_id": user_id})
            async with idn.db.session() as s:
                rows = (await s.execute(select(m.credentials).where(
                    m.credentials.c.user_id == user_id, m.credentials.c.type == "ec2"))
                        ).mappings().all()
            return api.collection(request, "credentials", [ec2_view(dict(r)) for r in rows])
        await api.authorize(request, "identity:create_credential",
                            {"target": {"credential": {"user_id": user_id}}})
        body = json_object(await json_body(request))
        project_id = text(body, "tenant_id", required=True, max_len=64)
        access, secret = new_hex_id(), new_hex_id()
        row = {"id": hashlib.sha256(access.encode()).hexdigest(), "user_id": user_id,
               "project_id": project_id, "type": "ec2", "extra": {},
               "blob": json.dumps({"access": access, "secret": secret, "trust_id": None})}
        async with idn.write("credential") as s:
            await get_row(s, m.users, user_id, "user")
            await get_row(s, m.projects, project_id, "project")
            await s.execute(insert(m.credentials).values(**row))
        return ok({"credential": ec2_view(row)}, 201)

    async def ec2_one(request: Request) -> Response:
        user_id = request.path_params["user_id"]
        access = request.path_params["access"]
        rule = ("identity:delete_credential" if request.method == "DELETE"
                else "identity:get_credential")
        await api.authorize(request, rule, {"target": {"credential": {"user_id": user_id}}})
        cred_id = hashlib.sha256(access.encode()).hexdigest()
        async with idn.write("credential") as s:
            row = await find_row(s, m.credentials, id=cred_id, user_id=user_id)
            if row is None:
                raise NotFound(f"Could not find credential: {access}.")
            if request.method == "GET":
                return ok({"credential": ec2_view(row)})
            await s.execute(delete(m.credentials).where(m.credentials.c.id == cred_id))
        return no_content()

    # --- OS-OAUTH1 consumers ------------------------------------------------

    def consumer_view(row: dict[str, Any]) -> dict[str, Any]:
        return {**(row.get("extra") or {}), "id": row["id"], "description": row["description"],
                "links": idn.link(f"OS-OAUTH1/consumers/{row['id']}")}

    async def consumers(request: Request) -> Response:
        await api.authorize(request, "identity:policies")
        if request.method == "GET":
            async with idn.db.session() as s:
                rows = (await s.execute(select(m.oauth_consumers))).mappings().all()
            return api.collection(request, "consumers", [consumer_view(dict(r)) for r in rows])
        body = await api.body(request, "consumer")
        secret = secrets.token_urlsafe(24)
        row = {"id": new_hex_id(), "description": text(body, "description", nullable=True,
                                                       max_len=65535),
               "secret_hash": hashlib.sha256(secret.encode()).hexdigest(),
               "extra": {k: v for k, v in body.items() if k not in ("description", "id")}}
        async with idn.write("consumer") as s:
            await s.execute(insert(m.oauth_consumers).values(**row))
        return ok({"consumer": {**consumer_view(row), "secret": secret}}, 201)

    async def consumer(request: Request) -> Response:
        await api.authorize(request, "identity:policies")
        consumer_id = request.path_params["consumer_id"]
        async with idn.write("consumer") as s:
            row = await get_row(s, m.oauth_consumers, consumer_id, "consumer")
            if request.method == "DELETE":
                await s.execute(delete(m.oauth_consumers).where(
                    m.oauth_consumers.c.id == consumer_id))
                return no_content()
            if request.method == "PATCH":
                body = await api.body(request, "consumer")
                if "secret" in body:
                    raise BadRequest("A consumer's secret cannot be changed.")
                values: dict[str, Any] = {}
                if "description" in body:
                    values["description"] = text(body, "description", nullable=True,
                                                 max_len=65535)
                await s.execute(update(m.oauth_consumers).where(
                    m.oauth_consumers.c.id == consumer_id).values(**values))
                row = {**row, **values}
        return ok({"consumer": consumer_view(row)})

    # --- domain configuration -------------------------------------------------

    def check_config(config: Any) -> dict[str, dict[str, Any]]:
        if not isinstance(config, dict) or not config:
            raise BadRequest("A domain config is a non-empty object of groups.")
        for group, options in config.items():
            if group not in DEFAULT_DOMAIN_CONFIG or not isinstance(options, dict):
                raise Forbidden(f"Group {group!r} is not allowed in a domain config; "
                                "allowed: identity, ldap.")
        return config

    async def load_config(s: Any, domain_id: str) -> dict[str, Any]:
        await get_row(s, m.domains, domain_id, "domain")
        row = await find_row(s, m.domain_configs, domain_id=domain_id)
        if row is None:
            raise NotFound(f"Could not find config for domain {domain_id}.")
        return dict(row["config"])

    def pick(config: dict[str, Any], group: str | None, option: str | None) -> dict[str, Any]:
        if group is None:
            return config
        if group not in config:
            raise NotFound(f"Could not find config group {group}.")
        if option is None:
            return {group: config[group]}
        if option not in config[group]:
            raise NotFound(f"Could not find config option {group}.{option}.")
        return {option: config[group][option]}

    async def domain_config(request: Request) -> Response:
        domain_id = request.path_params["domain_id"]
        group = request.path_params.get("group")
        option = request.path_params.get("option")
        if request.method == "GET":
            await api.authorize(request, "identity:get_domain", {"target": {"domain": {
                "id": domain_id}}})
            async with idn.db.session() as s:
                return ok({"config": pick(await load_config(s, domain_id), group, option)})
        await api.authorize(request, "identity:update_domain")
        if request.method == "PUT":
            config = check_config(json_object(await json_body(request), "config"))
            async with idn.write("domain config") as s:
                await get_row(s, m.domains, domain_id, "domain")
                exists = await find_row(s, m.domain_configs, domain_id=domain_id)
                if exists:
                    await s.execute(update(m.domain_configs).where(
                        m.domain_configs.c.domain_id == domain_id).values(config=config))
                else:
                    await s.execute(insert(m.domain_configs).values(domain_id=domain_id,
                                                                    config=config))
            return ok({"config": config}, 200 if exists else 201)
        async with idn.write("domain config") as s:
            config = await load_config(s, domain_id)
            pick(config, group, option)
            if request.method == "DELETE":
                if group is None:
                    await s.execute(delete(m.domain_configs).where(
                        m.domain_configs.c.domain_id == domain_id))
                    return no_content()
                if option is None:
                    del config[group]
                else:
                    del config[group][option]
            else:
                patch = json_object(await json_body(request), "config")
                if option is not None:
                    config[group][option] = patch.get(option)
                else:
                    for g, options in check_config(patch).items():
                        if group is not None and g != group:
                            raise BadRequest(f"The body names group {g}, the URL {group}.")
                        config.setdefault(g, {}).update(options)
            await s.execute(update(m.domain_configs).where(
                m.domain_configs.c.domain_id == domain_id).values(config=config))
        if request.method == "DELETE":
            return no_content()
        return ok({"config": config})

    async def default_config(request: Request) -> Response:
        await api.caller(request)
        group = request.path_params.get("group")
        option = request.path_params.get("option")
        return ok({"config": pick(DEFAULT_DOMAIN_CONFIG, group, option)})

    # --- OS-EP-FILTER endpoint groups ---------------------------------------

    def group_view(row: dict[str, Any]) -> dict[str, Any]:
        return {"id": row["id"], "name": row["name"], "description": row["description"],
                "filters": row["filters"] or {},
                "links": idn.link(f"OS-EP-FILTER/endpoint_groups/{row['id']}")}

    def group_fields(body: dict[str, Any], partial: bool) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if "name" in body or not partial:
            values["name"] = text(body, "name", required=True)
        if "description" in body:
            values["description"] = text(body, "description", nullable=True, max_len=65535)
        if "filters" in body or not partial:
            filters = body.get("filters")
            if not isinstance(filters, dict) or not filters or any(
                    k not in ("interface", "service_id", "region_id") for k in filters):
                raise BadRequest("Invalid input for field 'filters': an object of "
                                 "interface, service_id and region_id.")
            values["filters"] = filters
        return values

    async def endpoint_groups(request: Request) -> Response:
        if request.method == "GET":
            await api.authorize(request, "identity:list_endpoints")
            async with idn.db.session() as s:
                rows = (await s.execute(select(m.endpoint_groups))).mappings().all()
            return api.collection(request, "endpoint_groups",
                                  [group_view(dict(r)) for r in rows])
        await api.authorize(request, "identity:create_endpoint")
        row = {"id": new_hex_id(), "description": None,
               **group_fields(await api.body(request, "endpoint_group"), partial=False)}
        async with idn.write("endpoint group") as s:
            await s.execute(insert(m.endpoint_groups).values(**row))
        return ok({"endpoint_group": group_view(row)}, 201)

    async def endpoint_group(request: Request) -> Response:
        group_id = request.path_params["group_id"]
        rule = ("identity:get_endpoint" if request.method in ("GET", "HEAD")
                else "identity:update_endpoint")
        await api.authorize(request, rule)
        async with idn.write("endpoint group") as s:
            row = await get_row(s, m.endpoint_groups, group_id, "endpoint group")
            if request.method == "HEAD":
                return Response(status_code=200)
            if request.method == "DELETE":
                await s.execute(delete(m.endpoint_groups).where(
                    m.endpoint_groups.c.id == group_id))
                return no_content()
            if request.method == "PATCH":
                values = group_fields(await api.body(request, "endpoint_group"), partial=True)
                if values:
                    await s.execute(update(m.endpoint_groups).where(
                        m.endpoint_groups.c.id == group_id).values(**values))
                row = {**row, **values}
        return ok({"endpoint_group": group_view(row)})

    cfg = "/v3/domains/{domain_id}/config"
    return [
        route("/v3/OS-EP-FILTER/endpoint_groups", endpoint_groups, ["GET", "POST"]),
        route("/v3/OS-EP-FILTER/endpoint_groups/{group_id}", endpoint_group,
              ["GET", "HEAD", "PATCH", "DELETE"]),
        route("/v3/users/{user_id}/access_rules", list_rules, ["GET"]),
        route("/v3/users/{user_id}/access_rules/{rule_id}", one_rule, ["GET", "DELETE"]),
        route("/v3/users/{user_id}/credentials/OS-EC2", ec2_list_or_create, ["GET", "POST"]),
        route("/v3/users/{user_id}/credentials/OS-EC2/{access}", ec2_one, ["GET", "DELETE"]),
        route("/v3/OS-OAUTH1/consumers", consumers, ["GET", "POST"]),
        route("/v3/OS-OAUTH1/consumers/{consumer_id}", consumer, ["GET", "PATCH", "DELETE"]),
        route("/v3/domains/config/default", default_config, ["GET"]),
        route("/v3/domains/config/{group}/default", default_config, ["GET"]),
        route("/v3/domains/config/{group}/{option}/default", default_config, ["GET"]),
        route(cfg, domain_config, ["GET", "PUT", "PATCH", "DELETE"]),
        route(cfg + "/{group}", domain_config, ["GET", "PATCH", "DELETE"]),
        route(cfg + "/{group}/{option}", domain_config, ["GET", "PATCH", "DELETE"]),
    ]
