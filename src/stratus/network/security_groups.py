"""Security groups and rules, with a ``default`` group per project made on first use."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import delete, insert, select

from stratus.db.base import new_id
from stratus.errors import BadRequest, Conflict
from stratus.network import models as m
from stratus.network.access import Caller, not_found
from stratus.network.store import Tx, bump, drop_tags, iso, reserve, stamps, standard, tags_of

PROTOCOLS = {"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "icmpv6": 58,
             "igmp": 2, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58,
             "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113,
             "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112}
PORT_PROTOCOLS = {6, 17, 33, 132, 136}
ICMP_PROTOCOLS = {1, 58}
RULE_KEYS = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max",
             "remote_ip_prefix", "remote_group_id")


def rule_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "project_id": row.project_id, "tenant_id": row.project_id,
        "security_group_id": row.security_group_id, "direction": row.direction,
        "ethertype": row.ethertype, "protocol": row.protocol,
        "port_range_min": row.port_range_min, "port_range_max": row.port_range_max,
        "remote_ip_prefix": row.remote_ip_prefix, "remote_group_id": row.remote_group_id,
        "remote_address_group_id": None, "normalized_cidr": row.remote_ip_prefix,
        "description": row.description, "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at), "revision_number": row.revision_number,
        "belongs_to_default_sg": None,
    }


def _target(row: Any) -> dict[str, Any]:
    return {"id": row.id, "project_id": row.project_id}


async def _rules(tx: Tx, sg_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    r = m.security_group_rules.c
    for i in range(0, len(sg_ids), 500):
        for row in await tx.s.execute(select(m.security_group_rules).where(
                r.security_group_id.in_(sg_ids[i:i + 500]))):
            out.setdefault(row.security_group_id, []).append(rule_view(row))
    return out


async def views(tx: Tx, rows: list[Any]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    rules, tags = await _rules(tx, ids), await tags_of(tx, ids)
    out = []
    for row in rows:
        item = standard(row, tags)
        item.update({"stateful": row.stateful, "shared": False,
                     "security_group_rules": rules.get(row.id, [])})
        out.append(item)
    return out


async def ensure_default(tx: Tx, project_id: str) -> str:
    """The project's ``default`` group id, creating it (once, under concurrency) if needed."""
    d = m.default_security_groups.c
    found = (await tx.s.execute(select(d.security_group_id).where(
        d.project_id == project_id))).first()
    if found is not None:
        return str(found[0])
    sg_id = new_id()
    await tx.s.execute(insert(m.security_groups).values(
        id=sg_id, project_id=project_id, name="default",
        description="Default security group", stateful=True, **stamps()))
    # The primary key on project_id lets one concurrent creator win; the other retries.
    await tx.s.execute(insert(m.default_security_groups).values(
        project_id=project_id, security_group_id=sg_id))
    for ethertype in ("IPv4", "IPv6"):
        await _insert_rule(tx, project_id, sg_id, direction="egress", ethertype=ethertype)
        await _insert_rule(tx, project_id, sg_id, direction="ingress", ethertype=ethertype,
                           remote_group_id=sg_id)
    return sg_id


async def _insert_rule(tx: Tx, project_id: str, sg_id: str, **values: Any) -> str:
    rule_id = new_id()
    await tx.s.execute(insert(m.security_group_rules).values(
        id=rule_id, project_id=project_id, security_group_id=sg_id,
        description=values.pop("description", ""), **values, **stamps()))
    return rule_id


async def visible_row(tx: Tx, caller: Caller, sg_id: str) -> Any:
    row = (await tx.s.execute(select(m.security_groups).where(
        m.security_groups.c.id == sg_id))).first()
    if row is None:
        raise not_found("security_group", sg_id)
    caller.visible_or_404("security_group", _target(row))
    return row


async def show(tx: Tx, caller: Caller, sg_id: str) -> dict[str, Any]:
    return (await views(tx, [await visible_row(tx, caller, sg_id)]))[0]


async def listing(tx: Tx, caller: Caller) -> list[dict[str, Any]]:
    stmt = select(m.security_groups)
    if not caller.is_admin:
        stmt = stmt.where(m.security_groups.c.project_id == caller.project_id)
    rows = caller.visible("security_group", await tx.s.execute(stmt), _target)
    return await views(tx, rows)


async def create(tx: Tx, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    project = body.get("project_id") or caller.project_id
    caller.enforce("create", "security_group", {"project_id": project})
    await ensure_default(tx, project)
    if body.get("name") == "default":
        raise Conflict("Default security group already exists.",
                       kind="SecurityGroupDefaultAlreadyExists")
    await reserve(tx, project, "security_group")
    sg_id = new_id()
    await tx.s.execute(insert(m.security_groups).values(
        id=sg_id, project_id=project, name=body.get("name", ""),
        description=body.get("description", ""), stateful=body.get("stateful", True),
        **stamps()))
    for ethertype in ("IPv4", "IPv6"):
        await _insert_rule(tx, project, sg_id, direction="egress", ethertype=ethertype)
    return await show(tx, caller, sg_id)


async def update(tx: Tx, caller: Caller, sg_id: str, body: dict[str, Any]) -> dict[str, Any]:
    row = await visible_row(tx, caller, sg_id)
    caller.enforce("update", "security_group", _target(row))
    if row.name == "default" and body.get("name", "default") != "default":
        raise Conflict("Updating default security group not allowed.",
                       kind="SecurityGroupCannotUpdateDefault")
    if row.name != "default" and body.get("name") == "default":
        raise Conflict("Default security group already exists.",
                       kind="SecurityGroupDefaultAlreadyExists")
    values = {k: body[k] for k in ("name", "description", "stateful") if k in body}
    await bump(tx, m.security_groups, sg_id, values)
    item = await show(tx, caller, sg_id)
    tx.emit("security_group_update", security_group_id=sg_id)
    return item


async def delete_(tx: Tx, caller: Caller, sg_id: str) -> None:
    row = await visible_row(tx, caller, sg_id)
    caller.enforce("delete", "security_group", _target(row))
    is_default = (await tx.s.execute(select(m.default_security_groups.c.project_id).where(
        m.default_security_groups.c.security_group_id == sg_id))).first() is not None
    if is_default and not caller.is_admin:
        raise Conflict("Insufficient rights for removing default security group.",
                       kind="SecurityGroupCannotRemoveDefault")
    used = (await tx.s.execute(select(m.port_security_groups.c.port_id).where(
        m.port_security_groups.c.security_group_id == sg_id).limit(1))).first()
    if used is not None:
        raise Conflict(f"Security Group {sg_id} in use.", kind="SecurityGroupInUse")
    r = m.security_group_rules.c
    await tx.s.execute(delete(m.security_group_rules).where(
        (r.security_group_id == sg_id) | (r.remote_group_id == sg_id)))
    await tx.s.execute(delete(m.default_security_groups).where(
        m.default_security_groups.c.security_group_id == sg_id))
    await drop_tags(tx, sg_id)
    await tx.s.execute(delete(m.security_groups).where(m.security_groups.c.id == sg_id))
    tx.emit("security_group_update", security_group_id=sg_id)


# --- rules ------------------------------------------------------------------

def _protocol(value: Any) -> tuple[str | None, int | None]:
    if value is None or value in ("any", "ANY", ""):
        return None, None
    text = str(value).lower()
    if text in PROTOCOLS:
        return text, PROTOCOLS[text]
    if text.isdigit() and 0 <= int(text) <= 255:
        return text, int(text)
    raise BadRequest(f"Security group rule protocol {value} not supported. Only protocol "
                     f"values {sorted(PROTOCOLS)} and integer representations [0 to 255] are "
                     "supported.", kind="SecurityGroupRuleInvalidProtocol")


def _check_ports(number: int | None, lo: int | None, hi: int | None) -> None:
    """Neutron's port range rules, with its messages (clients and Tempest match on them)."""
    if lo is None and hi is None:
        return
    if number in PORT_PROTOCOLS:
        for port in (lo, hi):
            if port is not None and not 1 <= port <= 65535:
                raise BadRequest(f"Invalid value for port {port}.",
                                 kind="SecurityGroupInvalidPortValue")
        if lo is None or (hi is not None and lo > hi):
            raise BadRequest("For TCP/UDP protocols, port_range_min must be <= port_range_max",
                             kind="SecurityGroupInvalidPortRange")
    elif number in ICMP_PROTOCOLS:
        for field, name, v in (("type", "min", lo), ("code", "max", hi)):
            if v is not None and not 0 <= v <= 255:
                raise BadRequest(f"Invalid value for ICMP {field} (port-range-{name}): {v}. It "
                                 "must be 0 to 255.", kind="SecurityGroupInvalidIcmpValue")
        if lo is None and hi is not None:
            raise BadRequest(f"ICMP code (port-range-max) {hi} is provided but ICMP type "
                             "(port-range-min) is missing.", kind="SecurityGroupMissingIcmpType")
    else:
        raise BadRequest("Port range is only valid with a protocol that has ports (tcp, udp, "
                         "sctp, dccp, udplite) or with ICMP type/code.",
                         kind="SecurityGroupInvalidPortRange")


async def create_rule(tx: Tx, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    for key in ("security_group_id", "direction"):
        if key not in body:
            raise BadRequest(f"Failed to parse request. Required attribute '{key}' not "
                             "specified", kind="HTTPBadRequest")
    sg = await visible_row(tx, caller, body["security_group_id"])
    project = body.get("project_id") or sg.project_id
    caller.enforce("create", "security_group_rule", {"project_id": project})
    if not caller.is_admin and sg.project_id != caller.project_id:
        raise not_found("security_group", sg.id)
    ethertype = body.get("ethertype") or "IPv4"
    protocol, number = _protocol(body.get("protocol"))
    lo, hi = body.get("port_range_min"), body.get("port_range_max")
    _check_ports(number, lo, hi)
    if number in PORT_PROTOCOLS and lo is not None and hi is None:
        hi = lo
    prefix = body.get("remote_ip_prefix")
    remote_group = body.get("remote_group_id")
    if prefix is not None and remote_group is not None:
        raise BadRequest("Only remote_ip_prefix or remote_group_id may be provided.",
                         kind="SecurityGroupRemoteGroupAndRemoteIpPrefix")
    if prefix is not None:
        try:
            net = ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            raise BadRequest(f"Invalid input for remote_ip_prefix. Reason: '{prefix}' is not "
                             "a valid IP subnet.", kind="InvalidInput") from None
        if f"IPv{net.version}" != ethertype:
            raise BadRequest(f"Conflicting value ethertype {ethertype} for CIDR {prefix}",
                             kind="SecurityGroupRuleParameterConflict")
        prefix = str(net)
    if remote_group is not None:
        await visible_row(tx, caller, remote_group)
    if number == 58 and ethertype == "IPv4":
        raise BadRequest(f"Protocol {protocol} is not supported for ethertype {ethertype}.",
                         kind="SecurityGroupEthertypeConflictWithProtocol")
    await reserve(tx, project, "security_group_rule")
    wanted = {"direction": body["direction"], "ethertype": ethertype, "protocol": protocol,
              "port_range_min": lo, "port_range_max": hi, "remote_ip_prefix": prefix,
              "remote_group_id": remote_group}
    for existing in (await _rules(tx, [sg.id])).get(sg.id, []):
        if all(existing[k] == wanted[k] for k in RULE_KEYS):
            raise Conflict(f"Security group rule already exists. Rule id is {existing['id']}.",
                           kind="SecurityGroupRuleExists")
    rule_id = await _insert_rule(tx, project, sg.id, description=body.get("description", ""),
                                 **wanted)
    await bump(tx, m.security_groups, sg.id)
    tx.emit("security_group_update", security_group_id=sg.id)
    return await show_rule(tx, caller, rule_id)


async def _rule_row(tx: Tx, caller: Caller, rule_id: str) -> Any:
    r = m.security_group_rules
    row = (await tx.s.execute(select(r, m.security_groups.c.project_id.label("sg_project"))
                              .join(m.security_groups,
                                    m.security_groups.c.id == r.c.security_group_id)
                              .where(r.c.id == rule_id))).first()
    if row is None:
        raise not_found("security_group_rule", rule_id)
    caller.visible_or_404("security_group_rule", {"id": row.id, "project_id": row.project_id,
                                                  "sg_project_id": row.sg_project})
    return row


async def show_rule(tx: Tx, caller: Caller, rule_id: str) -> dict[str, Any]:
    return rule_view(await _rule_row(tx, caller, rule_id))


async def list_rules(tx: Tx, caller: Caller) -> list[dict[str, Any]]:
    r = m.security_group_rules
    stmt = select(r, m.security_groups.c.project_id.label("sg_project")).join(
        m.security_groups, m.security_groups.c.id == r.c.security_group_id)
    if not caller.is_admin:
        stmt = stmt.where((r.c.project_id == caller.project_id)
                          | (m.security_groups.c.project_id == caller.project_id))
    return [rule_view(row) for row in await tx.s.execute(stmt)]


async def delete_rule(tx: Tx, caller: Caller, rule_id: str) -> None:
    row = await _rule_row(tx, caller, rule_id)
    caller.enforce("delete", "security_group_rule", {"id": row.id, "project_id": row.project_id,
                                                     "sg_project_id": row.sg_project})
    await tx.s.execute(delete(m.security_group_rules).where(
        m.security_group_rules.c.id == rule_id))
    await bump(tx, m.security_groups, row.security_group_id)
    tx.emit("security_group_update", security_group_id=row.security_group_id)
