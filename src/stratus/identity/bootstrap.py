"""Bootstrap: what a new cloud needs before anyone can log in. Safe to run at every start.

Creates (if missing) the fernet keys, the Default domain, the roles admin ⊇
manager ⊇ member ⊇ reader plus ``service``, the admin project and user, the
service project and one service user per service, the region and a catalog
entry per API service with public/internal/admin endpoints; then writes
``clouds.yaml``. A restart does only cheap lookups: passwords are hashed only
when a user is created or its configured password changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.db.base import new_hex_id, utcnow
from stratus.identity import models as m
from stratus.identity.core import DEFAULT_DOMAIN_ID, Identity, find_row
from stratus.identity.models import GLOBAL
from stratus.settings import Settings

ROLES = ("admin", "manager", "member", "reader", "service")
IMPLIES = (("admin", "manager"), ("manager", "member"), ("member", "reader"))
SERVICE_USERS = ("compute", "image", "network", "volume")
SERVICE_PROJECT = "service"
CLOUD_NAME = "stratus"

# (catalog type, OpenStack service name, path after the port) per Stratus service.
CATALOG: dict[str, tuple[tuple[str, str, str], ...]] = {
    "identity": (("identity", "keystone", "/v3"),),
    "compute": (("compute", "nova", "/v2.1"),),
    "image": (("image", "glance", ""),),
    "network": (("network", "neutron", ""),),
    "volume": (("block-storage", "cinder", "/v3/%(project_id)s"),
               ("volumev3", "cinderv3", "/v3/%(project_id)s")),
}
INTERFACES = ("public", "internal", "admin")


@dataclass
class BootstrapResult:
    admin_password: str
    admin_password_generated: bool
    clouds_yaml: Path
    created: list[str] = field(default_factory=list)


def identity_dir(settings: Settings) -> Path:
    return settings.data_dir / "identity"


def _secret_file(path: Path, value: str | None = None) -> str:
    """Read a 0600 secret file, creating it (with ``value`` or a random one) if absent."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = value or secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def service_password(settings: Settings) -> str:
    """The service users' password: the setting, or the one generated at first bootstrap."""
    if settings.identity.service_password:
        return settings.identity.service_password
    return _secret_file(identity_dir(settings) / "service-password")


class _Applied:
    """Remembers (keyed HMAC, not the password) which configured password was last set."""

    def __init__(self, directory: Path) -> None:
        self.key = _secret_file(directory / "bootstrap.key").encode()
        self.path = directory / "applied-passwords"

    def _mark(self, user: str, password: str) -> str:
        return user + ":" + hmac.new(self.key, password.encode(), hashlib.sha256).hexdigest()

    def seen(self, user: str, password: str) -> bool:
        return self.path.exists() and self._mark(user, password) in self.path.read_text().split()

    def record(self, user: str, password: str) -> None:
        marks = [x for x in (self.path.read_text().split() if self.path.exists() else [])
                 if not x.startswith(user + ":")]
        marks.append(self._mark(user, password))
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(marks) + "\n")


async def _ensure(s: AsyncSession, table: Any, where: dict[str, Any], values: dict[str, Any],
                  created: list[str], what: str) -> dict[str, Any]:
    row = await find_row(s, table, **where)
    if row is None:
        row = {**where, **values}
        await s.execute(insert(table).values(**row))
        created.append(what)
    return row


async def _grant(s: AsyncSession, kind: str, actor: str, target: str, role: str) -> None:
    key = {"type": kind, "actor_id": actor, "target_id": target, "role_id": role,
           "inherited": False}
    if await find_row(s, m.assignments, **key) is None:
        await s.execute(insert(m.assignments).values(**key))


async def bootstrap(idn: Identity, services: tuple[str, ...] | None = None) -> BootstrapResult:
    settings = idn.settings
    cfg = settings.identity
    created: list[str] = []
    if idn.keys.ensure():
        created.append("fernet keys")
    directory = identity_dir(settings)
    applied = _Applied(directory)
    generated = not cfg.admin_password and not (directory / "admin-password").exists()
    admin_password = cfg.admin_password or _secret_file(directory / "admin-password")
    svc_password = service_password(settings)
    wanted = [s for s in (services or settings.services) if s in CATALOG]

    async with idn.db.session() as s:
        await _ensure(s, m.domains, {"id": DEFAULT_DOMAIN_ID},
                      {"name": "Default", "description": "The default domain", "enabled": True,
                       "extra": {}}, created, "domain Default")
        role_ids: dict[str, str] = {}
        for name in ROLES:
            row = await _ensure(s, m.roles, {"name": name, "domain_id": GLOBAL},
                                {"id": new_hex_id(), "description": None,
                                 "options": {}, "extra": {}}, created, f"role {name}")
            role_ids[name] = row["id"]
        for prior, implied in IMPLIES:
            await _ensure(s, m.implied_roles, {"prior_role_id": role_ids[prior],
                                               "implied_role_id": role_ids[implied]},
                          {}, created, f"{prior} implies {implied}")
        projects = {}
        for name, description in ((cfg.admin_project, "Bootstrap project for the admin"),
                                  (SERVICE_PROJECT, "Project of the service users")):
            projects[name] = await _ensure(
                s, m.projects, {"domain_id": DEFAULT_DOMAIN_ID, "name": name},
                {"id": new_hex_id(), "parent_id": None, "description": description,
                 "enabled": True, "extra": {}}, created, f"project {name}")

        # Hash what must be hashed, all at once (bcrypt runs in threads, in parallel).
        users = {name: await find_row(s, m.users, domain_id=DEFAULT_DOMAIN_ID, name=name)
                 for name in (cfg.admin_user, *SERVICE_USERS)}
        need_admin = users[cfg.admin_user] is None or not applied.seen(cfg.admin_user,
                                                                       admin_password)
        need_svc = any(users[n] is None for n in SERVICE_USERS) or not applied.seen(
            "service-users", svc_password)
        jobs = [idn.hasher.hash(admin_password) if need_admin else _none(),
                idn.hasher.hash(svc_password) if need_svc else _none()]
        admin_hash, svc_hash = await asyncio.gather(*jobs)
        for name in (cfg.admin_user, *SERVICE_USERS):
            password_hash = admin_hash if name == cfg.admin_user else svc_hash
            project = projects[cfg.admin_project if name == cfg.admin_user else SERVICE_PROJECT]
            row = users[name]
            if row is None:
                row = {"id": new_hex_id(), "name": name, "domain_id": DEFAULT_DOMAIN_ID,
                       "enabled": True, "password_hash": password_hash,
                       "password_created_at": utcnow(), "default_project_id": project["id"],
                       "description": None, "options": {}, "extra": {},
                       "created_at": utcnow()}
                await s.execute(insert(m.users).values(**row))
                created.append(f"user {name}")
            elif password_hash is not None:
                await s.execute(update(m.users).where(m.users.c.id == row["id"]).values(
                    password_hash=password_hash, password_created_at=utcnow(), enabled=True))
            users[name] = row
        admin = users[cfg.admin_user]
        assert admin is not None
        await _grant(s, "UserProject", admin["id"], projects[cfg.admin_project]["id"],
                     role_ids["admin"])
        await _grant(s, "UserSystem", admin["id"], "system", role_ids["admin"])
        for name in SERVICE_USERS:
            row = users[name]
            assert row is not None
            for role in ("service", "admin"):
                await _grant(s, "UserProject", row["id"], projects[SERVICE_PROJECT]["id"],
                             role_ids[role])
        await ensure_catalog(s, settings, wanted, created)
    if need_admin:
        applied.record(cfg.admin_user, admin_password)
    if need_svc:
        applied.record("service-users", svc_password)
    if created:
        idn.changed()
    clouds = write_clouds_yaml(settings, admin_password)
    return BootstrapResult(admin_password, generated, clouds, created)


async def _none() -> None:
    return None


async def ensure_catalog(s: AsyncSession, settings: Settings, services: list[str],
                         created: list[str]) -> None:
    region = settings.identity.region
    await _ensure(s, m.regions, {"id": region}, {"description": "", "parent_region_id": None,
                                                 "extra": {}}, created, f"region {region}")
    for service in services:
        for stype, name, path in CATALOG[service]:
            row = await _ensure(s, m.services, {"type": stype},
                                {"id": new_hex_id(), "enabled": True,
                                 "extra": {"name": name,
                                           "description": f"Stratus {service} ({stype})"}},
                                created, f"service {stype}")
            url = settings.endpoint(service) + path
            for interface in INTERFACES:
                ep = await find_row(s, m.endpoints, service_id=row["id"], interface=interface,
                                    region_id=region)
                if ep is None:
                    await s.execute(insert(m.endpoints).values(
                        id=new_hex_id(), service_id=row["id"], interface=interface, url=url,
                        region_id=region, enabled=True, extra={}))
                    created.append(f"endpoint {stype} {interface}")
                elif ep["url"] != url:
                    await s.execute(update(m.endpoints).where(m.endpoints.c.id == ep["id"])
                                    .values(url=url))
                    created.append(f"endpoint {stype} {interface} moved")


def clouds_yaml_text(settings: Settings, admin_password: str) -> str:
    cfg = settings.identity

    def q(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    auth_url = settings.endpoint("identity") + "/v3"
    return (
        "# Written by `stratus up`; use: export OS_CLIENT_CONFIG_FILE=<this file>;\n"
        f"# openstack --os-cloud {CLOUD_NAME} server list\n"
        "clouds:\n"
        f"  {CLOUD_NAME}:\n"
        "    auth:\n"
        f"      auth_url: {q(auth_url)}\n"
        f"      username: {q(cfg.admin_user)}\n"
        f"      password: {q(admin_password)}\n"
        f"      project_name: {q(cfg.admin_project)}\n"
        "      user_domain_name: Default\n"
        "      project_domain_name: Default\n"
        f"    region_name: {q(cfg.region)}\n"
        "    interface: public\n"
        "    identity_api_version: 3\n"
        f"  {CLOUD_NAME}-system:\n"
        "    auth:\n"
        f"      auth_url: {q(auth_url)}\n"
        f"      username: {q(cfg.admin_user)}\n"
        f"      password: {q(admin_password)}\n"
        "      user_domain_name: Default\n"
        "      system_scope: all\n"
        f"    region_name: {q(cfg.region)}\n"
        "    interface: public\n"
        "    identity_api_version: 3\n"
    )


def write_clouds_yaml(settings: Settings, admin_password: str) -> Path:
    path = settings.data_dir / "clouds.yaml"
    content = clouds_yaml_text(settings, admin_password)
    if not path.exists() or path.read_text() != content:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(content)
        os.replace(tmp, path)
    return path


def banner_lines(result: BootstrapResult, settings: Settings) -> list[str]:
    how = "generated, stored in " + str(identity_dir(settings) / "admin-password") if (
        not settings.identity.admin_password) else "from settings"
    return [
        f"admin: user {settings.identity.admin_user!r}, password {result.admin_password!r} "
        f"({how})",
        f"export OS_CLIENT_CONFIG_FILE={result.clouds_yaml}; "
        f"openstack --os-cloud {CLOUD_NAME} server list",
    ]
