"""The shared policy engine: oslo.policy syntax, personas, overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stratus.api.context import RequestContext
from stratus.api.policy import Policy, PolicyError, PolicyNotRegistered, expand_roles, parse_rule
from stratus.errors import Forbidden


def ctx(roles: tuple[str, ...] = ("member",), project: str | None = "p1", user: str = "u1",
        **kw: object) -> RequestContext:
    return RequestContext(user_id=user, project_id=project, roles=roles,
                          **kw)  # type: ignore[arg-type]


RULES = {
    "get": "rule:admin_required or rule:project_reader",
    "write": "rule:admin_required or rule:project_member",
    "own": "user_id:%(user_id)s or rule:admin_required",
    "public": "'public':%(visibility)s or rule:project_reader",
    "sys": "rule:system_reader",
    "nested": "(role:member or role:foo) and not project_id:%(project_id)s",
    "always": "@",
    "never": "!",
    "empty": "",
    "enabled": "True:%(enabled)s",
    "dotted": "domain_id:%(target.user.domain_id)s",
}


def test_roles_expand_by_implication() -> None:
    assert expand_roles(["admin"]) == ("admin", "manager", "member", "reader")
    assert expand_roles(["Member"]) == ("member", "reader")
    assert expand_roles(["service"]) == ("service",)


def test_project_member_can_write_own_project_only() -> None:
    policy = Policy(RULES)
    assert policy.check("write", ctx(), {"project_id": "p1"})
    assert not policy.check("write", ctx(), {"project_id": "p2"})


def test_reader_reads_but_cannot_write() -> None:
    policy = Policy(RULES)
    reader = ctx(("reader",))
    assert policy.check("get", reader, {"project_id": "p1"})
    assert not policy.check("write", reader, {"project_id": "p1"})


def test_admin_implies_member_and_reader() -> None:
    policy = Policy(RULES)
    admin = ctx(("admin",), project="other")
    assert policy.check("write", admin, {"project_id": "p1"})
    assert policy.check("get", ctx(("manager",)), {"project_id": "p1"})


def test_missing_target_key_or_none_never_matches() -> None:
    policy = Policy(RULES)
    assert not policy.check("get", ctx(), {})
    assert not policy.check("get", ctx(project=None), {"project_id": None})


def test_literal_and_true_comparisons() -> None:
    policy = Policy(RULES)
    assert policy.check("public", ctx(project="x"), {"visibility": "public", "project_id": "p"})
    assert not policy.check("public", ctx(project="x"), {"visibility": "private",
                                                         "project_id": "p"})
    assert policy.check("enabled", ctx(), {"enabled": True})
    assert not policy.check("enabled", ctx(), {"enabled": False})


def test_system_scope_and_dotted_targets() -> None:
    policy = Policy(RULES)
    assert policy.check("sys", ctx(("reader",), project=None, system_scope="all"))
    assert not policy.check("sys", ctx(("admin",)))
    d = ctx(domain_id="d1", project=None)
    assert policy.check("dotted", d, {"target": {"user": {"domain_id": "d1"}}})
    assert policy.check("dotted", d, {"target.user.domain_id": "d1"})
    assert not policy.check("dotted", d, {"target.user.domain_id": "d2"})


def test_not_and_parentheses_and_constants() -> None:
    policy = Policy(RULES)
    assert policy.check("nested", ctx(), {"project_id": "p2"})
    assert not policy.check("nested", ctx(), {"project_id": "p1"})
    assert policy.check("always", ctx()) and policy.check("empty", ctx())
    assert not policy.check("never", ctx(("admin",)))


def test_enforce_raises_forbidden_naming_the_rule() -> None:
    with pytest.raises(Forbidden, match="write"):
        Policy(RULES).enforce("write", ctx(("reader",)), {"project_id": "p1"})


def test_unregistered_rule_is_a_programming_error() -> None:
    with pytest.raises(PolicyNotRegistered):
        Policy(RULES).check("nope", ctx(), {})


def test_self_referencing_rule_denies() -> None:
    assert not Policy({"loop": "rule:loop"}).check("loop", ctx(("admin",)))


@pytest.mark.parametrize("bad", ["role:admin or", "(role:admin", "role:a )", "and role:x",
                                 "nocolon"])
def test_bad_rules_are_rejected(bad: str) -> None:
    with pytest.raises(PolicyError):
        parse_rule(bad)


def test_overrides_file_replaces_defaults(tmp_path: Path) -> None:
    path = tmp_path / "svc.json"
    path.write_text(json.dumps({"write": "rule:admin_required"}))
    policy = Policy(RULES, path)
    assert not policy.check("write", ctx(), {"project_id": "p1"})
    assert policy.check("get", ctx(), {"project_id": "p1"})


def test_for_service_reads_data_dir_policy(tmp_path: Path) -> None:
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "image.json").write_text('{"get": "!"}')

    class S:
        data_dir = tmp_path

    assert not Policy.for_service(S(), "image", RULES).check("get", ctx(("admin",)))


def test_bad_overrides_file_says_where(tmp_path: Path) -> None:
    path = tmp_path / "svc.json"
    path.write_text('{"write": "role:admin or"}')
    with pytest.raises(PolicyError, match="svc.json"):
        Policy(RULES, path)
