"""The policy rule engine every service shares (oslo.policy syntax, no oslo).

A service builds one :class:`Policy` from its defaults and the operator's
overrides file, then asks it in handlers::

    policy = Policy.for_service(settings, "image", {
        "get_image": "rule:admin_required or rule:project_reader or "
                     "'public':%(visibility)s",
        "add_image": "rule:project_member",
    })
    policy.enforce("get_image", context_of(request), {"project_id": image.owner,
                                                      "visibility": image.visibility})

Syntax (as in oslo.policy):

* ``role:admin`` — the caller holds the role (roles are expanded by
  implication first: admin ⊇ manager ⊇ member ⊇ reader);
* ``project_id:%(project_id)s`` — a credential equals a target value (the
  left side names a credential: ``user_id``, ``project_id``, ``domain_id``,
  ``user_domain_id``, ``project_domain_id``, ``system_scope``, ``is_admin``,
  ``service``; dotted names read nested values);
* ``'literal':%(key)s`` or ``True:%(enabled)s`` — a literal equals a target value;
* ``system_scope:all`` — a credential equals a literal;
* ``rule:name`` — another rule; ``@`` always, ``!`` never, an empty rule always;
* ``not``, ``and``, ``or`` (in that order of precedence) and parentheses.

A missing target key, or a ``None`` on either side, never matches.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from stratus.api.context import RequestContext
from stratus.errors import Forbidden

# Each role implies the roles listed (transitively).
DEFAULT_IMPLIED_ROLES: dict[str, tuple[str, ...]] = {
    "admin": ("manager",),
    "manager": ("member",),
    "member": ("reader",),
}

# Persona rules every service can refer to with ``rule:<name>``.
BASE_RULES: dict[str, str] = {
    "admin_required": "role:admin",
    "context_is_admin": "role:admin",
    "service_role": "role:service",
    "service_or_admin": "rule:admin_required or rule:service_role",
    "system_admin": "role:admin and system_scope:all",
    "system_reader": "role:reader and system_scope:all",
    "project_manager": "role:manager and project_id:%(project_id)s",
    "project_member": "role:member and project_id:%(project_id)s",
    "project_reader": "role:reader and project_id:%(project_id)s",
    "owner": "user_id:%(user_id)s",
    "admin_or_owner": "rule:admin_required or project_id:%(project_id)s",
    "admin_or_member": "rule:admin_required or rule:project_member",
    "admin_or_reader": "rule:admin_required or rule:project_reader",
}


class PolicyError(ValueError):
    """A rule cannot be parsed, or a policy file cannot be read."""


class PolicyNotRegistered(LookupError):
    """``check``/``enforce`` was asked about a rule with no default: a programming error."""


def expand_roles(roles: Iterable[str],
                 implied: Mapping[str, Iterable[str]] = DEFAULT_IMPLIED_ROLES) -> tuple[str, ...]:
    """``roles`` plus every role they imply, transitively, lower-cased, order kept."""
    out: list[str] = []
    seen: set[str] = set()
    stack = [r.lower() for r in roles][::-1]
    while stack:
        role = stack.pop()
        if role in seen:
            continue
        seen.add(role)
        out.append(role)
        stack.extend(reversed([r.lower() for r in implied.get(role, ())]))
    return tuple(out)


# --- checks -----------------------------------------------------------------

class _Eval(Protocol):
    def __call__(self, creds: _Creds, target: Mapping[str, Any], policy: Policy,
                 depth: int) -> bool: ...


@dataclass(frozen=True)
class _Creds:
    values: dict[str, Any]
    roles: frozenset[str]


class _Missing(Exception):
    pass


class _TargetView(dict[str, str]):
    """``%(a.b)s`` formatting over a target: dotted keys, nested dicts, no Nones."""

    def __init__(self, target: Mapping[str, Any]) -> None:
        super().__init__()
        self.target = target

    def __missing__(self, key: str) -> str:
        value = _lookup(self.target, key)
        if value is None:
            raise _Missing(key)
        return str(value)


def _lookup(data: Any, key: str) -> Any:
    if isinstance(data, Mapping) and key in data:
        return data[key]
    node = data
    for part in key.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return None
    return node


def _render(template: str, target: Mapping[str, Any]) -> str | None:
    if "%(" not in template:
        return template
    try:
        return template % _TargetView(target)
    except (_Missing, KeyError, ValueError, TypeError):
        return None


def _make_check(token: str) -> _Eval:
    if token == "@":
        return lambda c, t, p, d: True
    if token == "!":
        return lambda c, t, p, d: False
    kind, sep, match = token.partition(":")
    if not sep:
        raise PolicyError(f"{token!r} is not a check (expected kind:match, @ or !)")
    if kind == "rule":
        return lambda c, t, p, d: p._eval_rule(match, c, t, d + 1)
    if kind == "role":
        def role_check(c: _Creds, t: Mapping[str, Any], p: Policy, d: int) -> bool:
            want = _render(match, t)
            return want is not None and want.lower() in c.roles
        return role_check
    literal: Any
    try:
        literal = ast.literal_eval(kind)
    except (ValueError, SyntaxError):
        literal = _Missing
    if literal is not _Missing:
        def literal_check(c: _Creds, t: Mapping[str, Any], p: Policy, d: int) -> bool:
            got = _render(match, t)
            return got is not None and got == str(literal)
        return literal_check

    def generic_check(c: _Creds, t: Mapping[str, Any], p: Policy, d: int) -> bool:
        want = _render(match, t)
        have = _lookup(c.values, kind)
        if want is None or have is None:
            return False
        if isinstance(have, (list, tuple, set, frozenset)):
            return want in {str(v) for v in have}
        return str(have) == want
    return generic_check


# --- parser -----------------------------------------------------------------

def _tokens(rule: str) -> list[str]:
    out: list[str] = []
    for raw in rule.split():
        stripped = raw.lstrip("(")
        out.extend("(" * (len(raw) - len(stripped)))
        core = stripped.rstrip(")")
        closing = len(stripped) - len(core)
        if core:
            out.append(core)
        out.extend(")" * closing)
    return out


class _Parser:
    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.toks = _tokens(rule)
        self.pos = 0

    def parse(self) -> _Eval:
        if not self.toks:
            return lambda c, t, p, d: True
        node = self._or()
        if self.pos != len(self.toks):
            raise PolicyError(f"unexpected {self.toks[self.pos]!r} in rule {self.rule!r}")
        return node

    def _peek(self) -> str | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def _or(self) -> _Eval:
        parts = [self._and()]
        while self._peek() == "or":
            self.pos += 1
            parts.append(self._and())
        if len(parts) == 1:
            return parts[0]
        return lambda c, t, p, d: any(x(c, t, p, d) for x in parts)

    def _and(self) -> _Eval:
        parts = [self._not()]
        while self._peek() == "and":
            self.pos += 1
            parts.append(self._not())
        if len(parts) == 1:
            return parts[0]
        return lambda c, t, p, d: all(x(c, t, p, d) for x in parts)

    def _not(self) -> _Eval:
        if self._peek() == "not":
            self.pos += 1
            inner = self._not()
            return lambda c, t, p, d: not inner(c, t, p, d)
        return self._atom()

    def _atom(self) -> _Eval:
        tok = self._peek()
        if tok is None:
            raise PolicyError(f"rule {self.rule!r} ends too early")
        self.pos += 1
        if tok == "(":
            node = self._or()
            if self._peek() != ")":
                raise PolicyError(f"missing ')' in rule {self.rule!r}")
            self.pos += 1
            return node
        if tok in (")", "and", "or"):
            raise PolicyError(f"unexpected {tok!r} in rule {self.rule!r}")
        return _make_check(tok)


def parse_rule(rule: str) -> _Eval:
    """Compile one rule string; raises :class:`PolicyError` if it is not valid."""
    return _Parser(rule).parse()


# --- the policy -------------------------------------------------------------

def _credentials(context: RequestContext, implied: Mapping[str, Iterable[str]]) -> _Creds:
    roles = expand_roles(context.roles, implied)
    values: dict[str, Any] = {
        "user_id": context.user_id or None,
        "user_name": context.user_name or None,
        "user_domain_id": context.user_domain_id or None,
        "project_id": context.project_id,
        "project_name": context.project_name or None,
        "project_domain_id": context.project_domain_id,
        "domain_id": context.domain_id,
        "system_scope": context.system_scope,
        "roles": list(roles),
        "is_admin": "admin" in roles,
        "service": context.is_service,
    }
    return _Creds(values=values, roles=frozenset(roles))


def load_overrides(path: Path) -> dict[str, str]:
    """Read a policy file: a JSON (or, if PyYAML is present, YAML) object of rule strings."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc}") from exc
    data: Any
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise PolicyError(f"{path}: YAML policy files need PyYAML; use JSON") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise PolicyError(f"{path} is not valid YAML: {exc}") from exc
    else:
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise PolicyError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise PolicyError(f"{path} must be an object mapping rule names to rule strings")
    return data


class Policy:
    """Named rules, compiled once; defaults overlaid by an optional policy file."""

    MAX_DEPTH = 32

    def __init__(self, defaults: Mapping[str, str], overrides_path: Path | None = None, *,
                 implied_roles: Mapping[str, Iterable[str]] = DEFAULT_IMPLIED_ROLES,
                 include_base: bool = True) -> None:
        rules: dict[str, str] = dict(BASE_RULES) if include_base else {}
        rules.update(defaults)
        self.registered = frozenset(defaults) | (frozenset(BASE_RULES) if include_base
                                                  else frozenset())
        if overrides_path is not None and overrides_path.exists():
            rules.update(load_overrides(overrides_path))
        self.rules = rules
        self.implied_roles = {k: tuple(v) for k, v in implied_roles.items()}
        self._compiled: dict[str, _Eval] = {}
        for name, text in rules.items():
            try:
                self._compiled[name] = parse_rule(text)
            except PolicyError as exc:
                where = f" (from {overrides_path})" if overrides_path else ""
                raise PolicyError(f"policy rule {name!r}{where}: {exc}") from None

    @classmethod
    def for_service(cls, settings: Any, service: str, defaults: Mapping[str, str],
                    **kwargs: Any) -> Policy:
        """Defaults plus ``<data_dir>/policy/<service>.json`` (or ``.yaml``) if present."""
        base = Path(settings.data_dir) / "policy"
        path = base / f"{service}.json"
        for candidate in (path, base / f"{service}.yaml", base / f"{service}.yml"):
            if candidate.exists():
                path = candidate
                break
        return cls(defaults, path, **kwargs)

    def _eval_rule(self, name: str, creds: _Creds, target: Mapping[str, Any],
                   depth: int) -> bool:
        if depth > self.MAX_DEPTH:
            return False  # a rule that refers to itself never grants anything
        check = self._compiled.get(name)
        return check(creds, target, self, depth) if check is not None else False

    def check(self, rule_name: str, context: RequestContext,
              target: Mapping[str, Any] | None = None) -> bool:
        """Whether ``context`` may do ``rule_name`` to ``target``."""
        if rule_name not in self._compiled:
            raise PolicyNotRegistered(f"policy rule {rule_name!r} has no default")
        creds = _credentials(context, self.implied_roles)
        return self._compiled[rule_name](creds, target or {}, self, 0)

    def check_str(self, rule: str, context: RequestContext,
                  target: Mapping[str, Any] | None = None) -> bool:
        """Evaluate an ad-hoc rule string (may refer to named rules)."""
        creds = _credentials(context, self.implied_roles)
        return parse_rule(rule)(creds, target or {}, self, 0)

    def enforce(self, rule_name: str, context: RequestContext,
                target: Mapping[str, Any] | None = None) -> None:
        """Raise :class:`stratus.errors.Forbidden` unless :meth:`check` allows it."""
        if not self.check(rule_name, context, target):
            raise Forbidden(
                f"You are not authorized to perform the requested action: {rule_name}."
            )

    def enforcer(self, rule_name: str) -> Callable[[RequestContext, Mapping[str, Any]], None]:
        """A bound ``enforce`` for one rule, handy to keep in a handler table."""
        return lambda ctx, target: self.enforce(rule_name, ctx, target)


__all__ = [
    "BASE_RULES", "DEFAULT_IMPLIED_ROLES", "Policy", "PolicyError", "PolicyNotRegistered",
    "expand_roles", "load_overrides", "parse_rule",
]
