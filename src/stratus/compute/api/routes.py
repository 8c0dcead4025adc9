"""The compute API's URL map and app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from stratus.api.app import build_app
from stratus.api.auth import auth_middleware
from stratus.api.faults import FaultStyle
from stratus.compute.api import (
    actions,
    admin,
    aggregates,
    children,
    consoles,
    flavors,
    floatingips,
    images,
    interfaces,
    legacy,
    quotas_groups,
    secgroups,
    servers,
)
from stratus.compute.api.common import Deps
from stratus.compute.api.microversion import MAX_VERSION, MIN_VERSION, MicroversionMiddleware
from stratus.runtime import Runtime

Endpoint = Callable[[Deps, Request], Awaitable[Response]]

# (path under /v2.1, methods, handler)
TABLE: list[tuple[str, list[str], Endpoint]] = [
    ("/servers", ["GET"], servers.index),
    ("/servers", ["POST"], servers.create),
    ("/servers/detail", ["GET"], servers.detail),
    ("/servers/{server_id}", ["GET"], servers.show),
    ("/servers/{server_id}", ["PUT"], servers.update),
    ("/servers/{server_id}", ["DELETE"], servers.delete),
    ("/servers/{server_id}/action", ["POST"], actions.dispatch),
    ("/servers/{server_id}/remote-consoles", ["POST"], consoles.create),
    ("/os-console-auth-tokens/{console_token}", ["GET"], consoles.show_token),
    ("/servers/{server_id}/metadata", ["GET", "PUT", "POST"], children.metadata),
    ("/servers/{server_id}/metadata/{key}", ["GET", "PUT", "DELETE"], children.metadata),
    ("/servers/{server_id}/tags", ["GET", "PUT", "DELETE"], children.tags),
    ("/servers/{server_id}/ips", ["GET"], children.ips),
    ("/servers/{server_id}/ips/{network_label}", ["GET"], children.ips),
    ("/servers/{server_id}/tags/{tag}", ["GET", "PUT", "DELETE"], children.tags),
    ("/servers/{server_id}/os-instance-actions", ["GET"], children.actions_index),
    ("/servers/{server_id}/os-instance-actions/{request_id}", ["GET"], children.actions_show),
    ("/servers/{server_id}/migrations", ["GET"], children.server_migrations),
    ("/servers/{server_id}/migrations/{migration_id}", ["GET", "DELETE"],
     children.server_migrations),
    ("/servers/{server_id}/migrations/{migration_id}/action", ["POST"],
     children.migration_action),
    ("/servers/{server_id}/os-interface", ["GET"], interfaces.index),
    ("/servers/{server_id}/os-interface", ["POST"], interfaces.attach),
    ("/servers/{server_id}/os-interface/{port_id}", ["GET"], interfaces.show),
    ("/servers/{server_id}/os-interface/{port_id}", ["DELETE"], interfaces.detach),
    ("/flavors", ["GET"], flavors.index),
    ("/flavors", ["POST"], flavors.create),
    ("/flavors/detail", ["GET"], flavors.detail),
    ("/flavors/{flavor_id}", ["GET"], flavors.show),
    ("/flavors/{flavor_id}", ["PUT"], flavors.update),
    ("/flavors/{flavor_id}", ["DELETE"], flavors.remove),
    ("/flavors/{flavor_id}/os-extra_specs", ["GET", "POST"], flavors.extra_specs),
    ("/flavors/{flavor_id}/os-extra_specs/{key}", ["GET", "PUT", "DELETE"],
     flavors.extra_specs),
    ("/flavors/{flavor_id}/os-flavor-access", ["GET"], flavors.access),
    ("/flavors/{flavor_id}/action", ["POST"], flavors.access),
    ("/os-keypairs", ["GET"], flavors.keypair_index),
    ("/os-keypairs", ["POST"], flavors.keypair_create),
    ("/os-keypairs/{name}", ["GET"], flavors.keypair_show),
    ("/os-keypairs/{name}", ["DELETE"], flavors.keypair_delete),
    ("/os-quota-sets/{tenant_id}", ["GET"], quotas_groups.quota_show),
    ("/os-quota-sets/{tenant_id}", ["PUT"], quotas_groups.quota_update),
    ("/os-quota-sets/{tenant_id}", ["DELETE"], quotas_groups.quota_delete),
    ("/os-quota-sets/{tenant_id}/detail", ["GET"], quotas_groups.quota_show),
    ("/os-quota-sets/{tenant_id}/defaults", ["GET"], quotas_groups.quota_show),
    ("/os-quota-class-sets/{class_name}", ["GET"], quotas_groups.quota_class_show),
    ("/os-quota-class-sets/{class_name}", ["PUT"], quotas_groups.quota_class_update),
    ("/limits", ["GET"], quotas_groups.limits),
    ("/os-server-groups", ["GET"], quotas_groups.groups_index),
    ("/os-server-groups", ["POST"], quotas_groups.groups_create),
    ("/os-server-groups/{group_id}", ["GET"], quotas_groups.groups_show),
    ("/os-server-groups/{group_id}", ["DELETE"], quotas_groups.groups_delete),
    ("/os-services", ["GET"], admin.services_index),
    ("/os-services/{service_id}", ["PUT"], admin.services_update),
    ("/os-services/{service_id}", ["DELETE"], admin.services_delete),
    ("/os-hypervisors", ["GET"], admin.hypervisors_index),
    ("/os-hypervisors/detail", ["GET"], admin.hypervisors_detail),
    ("/os-hypervisors/statistics", ["GET"], admin.hypervisor_statistics),
    ("/os-hypervisors/{pattern}/servers", ["GET"], admin.hypervisor_servers),
    ("/os-hypervisors/{pattern}/search", ["GET"], admin.hypervisor_search),
    ("/os-hypervisors/{hv_id}/uptime", ["GET"], admin.hypervisor_uptime),
    ("/os-hypervisors/{hv_id}", ["GET"], admin.hypervisor_show),
    ("/os-availability-zone", ["GET"], admin.availability_zones),
    ("/os-availability-zone/detail", ["GET"], admin.availability_zones),
    ("/os-migrations", ["GET"], admin.migrations_index),
    ("/os-server-external-events", ["POST"], admin.external_events),
    ("/os-simple-tenant-usage", ["GET"], admin.tenant_usage),
    ("/os-aggregates", ["GET"], aggregates.index),
    ("/os-aggregates", ["POST"], aggregates.create),
    ("/os-aggregates/{aggregate_id}", ["GET"], aggregates.show),
    ("/os-aggregates/{aggregate_id}", ["PUT"], aggregates.update),
    ("/os-aggregates/{aggregate_id}", ["DELETE"], aggregates.remove),
    ("/os-aggregates/{aggregate_id}/action", ["POST"], aggregates.action),
    ("/os-simple-tenant-usage/", ["GET"], legacy.blank_id),
    ("/os-simple-tenant-usage/{tenant_id}", ["GET"], admin.tenant_usage),
    ("/images", ["GET"], images.index),
    ("/images/detail", ["GET"], images.detail),
    ("/images/", ["DELETE"], legacy.blank_id),
    ("/images/{image_id}", ["GET"], images.show),
    ("/images/{image_id}", ["DELETE"], images.remove),
    ("/images/{image_id}/metadata", ["GET", "PUT", "POST"], images.metadata),
    ("/images/{image_id}/metadata/{key}", ["GET", "PUT", "DELETE"], images.metadata_item),
    ("/os-floating-ips", ["GET"], floatingips.index),
    ("/os-floating-ips", ["POST"], floatingips.create),
    ("/os-floating-ips/{floating_ip_id}", ["GET"], floatingips.show),
    ("/os-floating-ips/{floating_ip_id}", ["DELETE"], floatingips.delete),
    ("/os-floating-ip-pools", ["GET"], floatingips.pools),
    ("/os-tenant-networks", ["GET"], floatingips.tenant_networks_index),
    ("/os-tenant-networks/{network_id}", ["GET"], floatingips.tenant_networks_show),
    ("/os-networks", ["GET"], legacy.networks_index),
    ("/os-networks/{network_id}", ["GET"], legacy.networks_show),
    ("/extensions", ["GET"], legacy.extensions_index),
    ("/extensions/{alias}", ["GET"], legacy.extensions_show),
    ("/os-hosts", ["GET"], legacy.hosts_index),
    ("/os-hosts/{host}", ["GET"], legacy.hosts_show),
    ("/os-hosts/{host}", ["PUT"], legacy.hosts_update),
    ("/os-hosts/{host}/{power_action:str}", ["GET"], legacy.hosts_power),
    ("/os-instance_usage_audit_log", ["GET"], legacy.usage_audit_log),
    ("/os-instance_usage_audit_log/{before}", ["GET"], legacy.usage_audit_log),
    ("/servers/{server_id}/diagnostics", ["GET"], legacy.diagnostics),
    ("/servers/{server_id}/os-server-password", ["GET", "DELETE"], legacy.server_password),
    ("/os-security-groups", ["GET"], secgroups.index),
    ("/os-security-groups", ["POST"], secgroups.create),
    ("/os-security-groups/", ["PUT", "DELETE"], legacy.blank_id),
    ("/os-security-groups/{group_id}", ["GET"], secgroups.show),
    ("/os-security-groups/{group_id}", ["PUT"], secgroups.update),
    ("/os-security-groups/{group_id}", ["DELETE"], secgroups.delete),
    ("/os-security-group-rules", ["POST"], secgroups.rule_create),
    ("/os-security-group-rules/{rule_id}", ["DELETE"], secgroups.rule_delete),
    ("/servers/{server_id}/os-security-groups", ["GET"], secgroups.server_index),
]


def versions(base: str) -> list[dict[str, object]]:
    return [
        {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
         "updated": "2011-01-21T11:33:21Z", "links": [{"rel": "self", "href": f"{base}/v2/"}]},
        {"id": "v2.1", "status": "CURRENT", "version": MAX_VERSION,
         "min_version": MIN_VERSION, "updated": "2013-07-23T11:33:21Z",
         "links": [{"rel": "self", "href": f"{base}/v2.1/"}],
         "media-types": [{"base": "application/json",
                          "type": "application/vnd.openstack.compute+json;version=2.1"}]},
    ]


def build(runtime: Runtime, deps: Deps) -> ASGIApp:
    base = runtime.settings.endpoint("compute")

    async def root(request: Request) -> Response:
        return JSONResponse({"versions": versions(base)})

    async def v21(request: Request) -> Response:
        return JSONResponse({"version": versions(base)[1]})

    async def v2(request: Request) -> Response:
        return JSONResponse({"version": versions(base)[0]})

    routes: list[BaseRoute] = [
        Route("/", root, methods=["GET"]), Route("/v2.1", v21, methods=["GET"]),
        Route("/v2.1/", v21, methods=["GET"]), Route("/v2", v2, methods=["GET"]),
        Route("/v2/", v2, methods=["GET"]),
    ]
    for path, methods, handler in TABLE:
        endpoint = partial(handler, deps)
        for prefix in ("/v2.1", "/v2.1/{project_id}"):
            routes.append(Route(prefix + path, _wrap(endpoint), methods=methods))
    return build_app(
        "compute", routes, metrics=runtime.metrics, style=FaultStyle.NOVA,
        max_body=runtime.settings.max_request_body,
        middleware=[auth_middleware(lambda: runtime.token_validator,
                                    public=("/", "/v2.1", "/v2", "/healthz", "/metrics")),
                    MicroversionMiddleware],
        extra_request_id_headers=("x-compute-request-id",),
    )


def _wrap(endpoint: Callable[[Request], Awaitable[Response]]
          ) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        return await endpoint(request)
    return handler
