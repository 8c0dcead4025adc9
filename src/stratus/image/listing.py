"""``GET /v2/images`` query parameters, parsed and validated.

Glance's list API: filters on base fields (``name=in:a,b``, ``status``,
``size_min``...), tags, custom properties, time comparisons
(``created_at=gt:2024-01-01T00:00:00Z``), sorting by ``sort=k:dir,...`` or
``sort_key``/``sort_dir``, and marker/limit pagination.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stratus.errors import BadRequest
from stratus.image.domain import MemberStatus, Visibility

SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at",
             "updated_at", "visibility", "owner", "virtual_size", "min_disk", "min_ram")
EQ_FILTERS = ("name", "id", "status", "disk_format", "container_format", "owner", "size",
              "virtual_size", "min_disk", "min_ram")
INT_FILTERS = ("size", "virtual_size", "min_disk", "min_ram")
TIME_OPS = {"gt", "gte", "lt", "lte", "eq", "neq"}
# Query parameters that are not property filters.
RESERVED_PARAMS = {"limit", "marker", "sort", "sort_key", "sort_dir", "visibility",
                   "member_status", "os_hidden", "tag", "size_min", "size_max", "protected",
                   "created_at", "updated_at"} | set(EQ_FILTERS)


@dataclass
class ListQuery:
    visibility: Visibility | None = None
    member_status: str = MemberStatus.ACCEPTED
    os_hidden: bool | None = None
    protected: bool | None = None
    equals: dict[str, list[Any]] = field(default_factory=dict)
    size_min: int | None = None
    size_max: int | None = None
    tags: list[str] = field(default_factory=list)
    properties: dict[str, list[str]] = field(default_factory=dict)
    times: list[tuple[str, str, datetime]] = field(default_factory=list)
    sort: list[tuple[str, str]] = field(default_factory=list)
    marker: str | None = None
    limit: int = 25


def _int(name: str, value: str, *, minimum: int = 0) -> int:
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"Invalid value for {name!r}: {value!r} is not an integer.") from None
    if number < minimum:
        raise BadRequest(f"Invalid value for {name!r}: must be >= {minimum}.")
    return number


def _bool(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise BadRequest(f"Invalid value for {name!r}: {value!r} is not a boolean.")


def split_in(value: str) -> list[str]:
    """``in:a,"b,c"`` → ``["a", "b,c"]``; a plain value is a one-item list."""
    if not value.startswith("in:"):
        return [value]
    try:
        row = next(csv.reader([value[3:]], skipinitialspace=True))
    except (csv.Error, StopIteration):
        raise BadRequest(f"Invalid 'in:' filter {value!r}.") from None
    return row


def parse_time(value: str) -> datetime:
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"Invalid time {value!r}; use ISO 8601.") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _sort(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    sort_values = [v for k, v in params if k == "sort"]
    keys = [v for k, v in params if k == "sort_key"]
    dirs = [v for k, v in params if k == "sort_dir"]
    out: list[tuple[str, str]] = []
    if sort_values:
        if keys or dirs:
            raise BadRequest("The 'sort' parameter cannot be combined with 'sort_key' or "
                             "'sort_dir'.")
        for item in ",".join(sort_values).split(","):
            key, _, direction = item.strip().partition(":")
            out.append((key, direction or "desc"))
    else:
        for key in keys:
            for part in key.split(","):
                out.append((part.strip(), ""))
        if len(dirs) > 1 and len(dirs) != len(out):
            raise BadRequest("The number of sort_dir values must match sort_key values.")
        for i, (key, _) in enumerate(out):
            direction = dirs[i] if len(dirs) > 1 else (dirs[0] if dirs else "desc")
            out[i] = (key, direction)
        if not out and dirs:
            out = [("created_at", dirs[0])]
    for key, direction in out:
        if key not in SORT_KEYS:
            raise BadRequest(f"Invalid sort key {key!r}; use one of {', '.join(SORT_KEYS)}.")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction {direction!r}; use asc or desc.")
    if not out:
        out = [("created_at", "desc")]
    keys_seen = [k for k, _ in out]
    if "id" not in keys_seen:
        out.append(("id", out[-1][1]))
    return out


def parse_list_query(params: list[tuple[str, str]], *, default_limit: int,
                     max_limit: int) -> ListQuery:
    """Read ``params`` (query string items, repeats kept) into a :class:`ListQuery`."""
    query = ListQuery(limit=default_limit)
    query.sort = _sort(params)
    for key, value in params:
        if key in ("sort", "sort_key", "sort_dir"):
            continue
        if key == "limit":
            query.limit = min(_int("limit", value), max_limit)
        elif key == "marker":
            query.marker = value
        elif key == "visibility":
            if value == "all":
                query.visibility = None
                continue
            if value not in set(Visibility):
                raise BadRequest(f"Invalid visibility value: {value}")
            query.visibility = Visibility(value)
        elif key == "member_status":
            if value not in set(MemberStatus) | {"all"}:
                raise BadRequest(f"Invalid member_status value: {value}")
            query.member_status = value
        elif key == "os_hidden":
            query.os_hidden = _bool(key, value)
        elif key == "protected":
            query.protected = _bool(key, value)
        elif key == "tag":
            query.tags.append(value)
        elif key in ("size_min", "size_max"):
            setattr(query, key, _int(key, value))
        elif key in ("created_at", "updated_at"):
            op, sep, rest = value.partition(":")
            if not sep or op not in TIME_OPS:
                op, rest = "eq", value
            query.times.append((key, op, parse_time(rest)))
        elif key in EQ_FILTERS:
            values: list[Any] = split_in(value)
            if key in INT_FILTERS:
                values = [_int(key, v) for v in values]
            query.equals.setdefault(key, []).extend(values)
        else:
            query.properties.setdefault(key, []).extend(split_in(value))
    return query
