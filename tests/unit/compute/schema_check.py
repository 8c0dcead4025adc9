"""Tempest's compute response schemas, applied to our responses.

``tempest_schemas.json.gz`` is a JSON dump of
``tempest/lib/api_schema/response/compute/`` from tempest 47.0 (Apache-2.0),
keyed ``"v2_<minor>.<module>.<name>"``. :func:`check` picks the schema Tempest
would use at a microversion (the newest module at or below it) and validates a
body with a small JSON-schema subset validator (the keywords those schemas
use), so no test needs jsonschema or tempest installed.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import re
import uuid
from functools import cache
from pathlib import Path
from typing import Any

_PATH = Path(__file__).with_name("tempest_schemas.json.gz")


@cache
def _all() -> dict[str, Any]:
    with gzip.open(_PATH) as fh:
        return json.load(fh)  # type: ignore[no-any-return]


def schema_for(name: str, microversion: str = "2.1") -> dict[str, Any]:
    """``name`` is ``module.schema`` (``servers.get_server``)."""
    want = int(microversion.split(".")[1])
    best: tuple[int, dict[str, Any]] | None = None
    for key, value in _all().items():
        ver, rest = key.split(".", 1)
        minor = int(ver.split("_")[1])
        if rest == name and minor <= want and (best is None or minor > best[0]):
            best = (minor, value)
    if best is None:
        raise KeyError(f"no tempest schema {name} at or below {microversion}")
    return best[1]


def check(name: str, microversion: str, status: int, body: Any) -> None:
    schema = schema_for(name, microversion)
    codes = schema["status_code"]
    assert status in codes, f"{name}@{microversion}: status {status} not in {codes}"
    if "response_body" in schema:
        errors = list(_errors(body, schema["response_body"], "$"))
        assert not errors, f"{name}@{microversion}:\n  " + "\n  ".join(errors[:20])


_TYPES: dict[str, Any] = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def _format_ok(value: Any, fmt: str) -> bool:
    if not isinstance(value, str):
        return True
    try:
        if fmt == "uuid":
            uuid.UUID(value)
        elif fmt == "ipv4":
            ipaddress.IPv4Address(value)
        elif fmt == "ipv6":
            ipaddress.IPv6Address(value)
        elif fmt in ("iso8601-date-time", "date-time"):
            return bool(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", value))
    except ValueError:
        return False
    return True


def _errors(value: Any, schema: dict[str, Any], path: str):  # type: ignore[no-untyped-def]
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, t) for t in types):
            yield f"{path}: {value!r} is not of type {types}"
            return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{path}: {value!r} not in {schema['enum']}"
    if "format" in schema and not _format_ok(value, schema["format"]):
        yield f"{path}: {value!r} is not a {schema['format']}"
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        yield f"{path}: {value!r} does not match {schema['pattern']}"
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            yield f"{path}: too long"
        if "minLength" in schema and len(value) < schema["minLength"]:
            yield f"{path}: too short"
    if isinstance(value, (int, float)) and "minimum" in schema and value < schema["minimum"]:
        yield f"{path}: below minimum"
    for key in ("oneOf", "anyOf"):
        if key in schema:
            passing = sum(1 for sub in schema[key] if not list(_errors(value, sub, path)))
            if passing == 0 or (key == "oneOf" and passing > 1):
                yield f"{path}: {value!r} matches {passing} of {key} {schema[key]}"
    if isinstance(value, list):
        if "items" in schema:
            for i, item in enumerate(value):
                yield from _errors(item, schema["items"], f"{path}[{i}]")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            yield f"{path}: too many items"
        if "minItems" in schema and len(value) < schema["minItems"]:
            yield f"{path}: too few items"
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for req in schema.get("required", []):
            if req not in value:
                yield f"{path}: missing required {req!r}"
        patterns = schema.get("patternProperties", {})
        for key, item in value.items():
            if key in props:
                yield from _errors(item, props[key], f"{path}.{key}")
                continue
            matched = [p for p in patterns if re.search(p, key)]
            for p in matched:
                yield from _errors(item, patterns[p], f"{path}.{key}")
            if not matched:
                extra = schema.get("additionalProperties", True)
                if extra is False:
                    yield f"{path}: unexpected property {key!r}"
                elif isinstance(extra, dict):
                    yield from _errors(item, extra, f"{path}.{key}")
