"""List queries as Neutron reads them: filters, ``fields=``, sorting, pagination.

Works on the API representation (dicts), so every attribute a user can see
can be filtered and sorted on, with the same conversions as the body.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from stratus.errors import BadRequest

CONTROL_PARAMS = frozenset({"fields", "sort_key", "sort_dir", "limit", "marker",
                            "page_reverse", "tags", "tags-any", "not-tags", "not-tags-any"})
TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")


@dataclass
class ListQuery:
    filters: dict[str, list[str]] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)
    sorts: list[tuple[str, bool]] = field(default_factory=list)  # (key, ascending)
    limit: int | None = None
    marker: str | None = None
    page_reverse: bool = False
    tags: list[str] = field(default_factory=list)
    tags_any: list[str] = field(default_factory=list)
    not_tags: list[str] = field(default_factory=list)
    not_tags_any: list[str] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)


def _bool(value: str, name: str) -> bool:
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise BadRequest(f"Invalid input for {name}. Reason: '{value}' cannot be converted to "
                     "boolean.", kind="InvalidInput")


def parse(items: Sequence[tuple[str, str]], *, max_limit: int) -> ListQuery:
    q = ListQuery(params=list(items))
    sort_keys: list[str] = []
    sort_dirs: list[str] = []
    for key, value in items:
        if key == "fields":
            q.fields.extend(v for v in value.split(",") if v)
        elif key == "sort_key":
            sort_keys.append(value)
        elif key == "sort_dir":
            if value not in ("asc", "desc"):
                raise BadRequest(f"{value} is an invalid value for sort_dir, valid values "
                                 "are 'asc' and 'desc'", kind="HTTPBadRequest")
            sort_dirs.append(value)
        elif key == "limit":
            try:
                limit = int(value)
            except ValueError:
                raise BadRequest(f"Limit must be an integer 0 or greater and not '{value}'",
                                 kind="BadRequest") from None
            if limit < 0:
                raise BadRequest(f"Limit must be an integer 0 or greater and not '{value}'",
                                 kind="BadRequest")
            q.limit = min(limit, max_limit) if limit else None
        elif key == "marker":
            q.marker = value
        elif key == "page_reverse":
            q.page_reverse = _bool(value, "page_reverse")
        elif key in ("tags", "tags-any", "not-tags", "not-tags-any"):
            target = {"tags": q.tags, "tags-any": q.tags_any, "not-tags": q.not_tags,
                      "not-tags-any": q.not_tags_any}[key]
            target.extend(t for t in value.split(",") if t)
        else:
            q.filters.setdefault(key, []).append(value)
    if sort_dirs and len(sort_dirs) != len(sort_keys):
        raise BadRequest("The number of sort_keys and sort_dirs must be same",
                         kind="HTTPBadRequest")
    q.sorts = [(k, (sort_dirs[i] if sort_dirs else "asc") == "asc")
               for i, k in enumerate(sort_keys)]
    return q


def _matches(value: Any, wanted: list[str], name: str) -> bool:
    if isinstance(value, bool):
        return any(_bool(w, name) == value for w in wanted)
    if value is None:
        return any(w in ("", "None", "null") for w in wanted)
    if isinstance(value, list):
        if name == "fixed_ips":
            return all(_fixed_ip_match(value, w) for w in wanted)
        return any(w in [str(v) for v in value] for w in wanted)
    if isinstance(value, dict):
        return False
    return str(value) in wanted


def _fixed_ip_match(fixed_ips: list[dict[str, Any]], wanted: str) -> bool:
    key, _, val = wanted.partition("=")
    if key == "ip_address_substr":
        return any(val in ip["ip_address"] for ip in fixed_ips)
    return any(str(ip.get(key)) == val for ip in fixed_ips)


def apply(items: list[dict[str, Any]], q: ListQuery, *, known: Mapping[str, Any] | None = None,
          ) -> tuple[list[dict[str, Any]], bool, bool]:
    """Filter, sort and page ``items``; returns (page, has_next, has_previous)."""
    out = items
    for name, wanted in q.filters.items():
        if name == "fixed_ips":
            out = [i for i in out if _matches(i.get("fixed_ips", []), wanted, name)]
        elif name in ("tenant_id", "project_id"):
            out = [i for i in out if i.get("project_id") in wanted]
        elif out and name not in out[0]:
            continue  # Neutron ignores filters on attributes a resource does not have
        else:
            out = [i for i in out if _matches(i.get(name), wanted, name)]
    if q.tags:
        out = [i for i in out if set(q.tags) <= set(i.get("tags", []))]
    if q.tags_any:
        out = [i for i in out if set(q.tags_any) & set(i.get("tags", []))]
    if q.not_tags:
        out = [i for i in out if not set(q.not_tags) <= set(i.get("tags", []))]
    if q.not_tags_any:
        out = [i for i in out if not set(q.not_tags_any) & set(i.get("tags", []))]
    sorts = list(q.sorts)
    for key, _ in sorts:
        if out and key not in out[0]:
            raise BadRequest(f"{key} is an invalid attribute for sort_key",
                             kind="HTTPBadRequest")
    if not any(k == "id" for k, _ in sorts):
        sorts.append(("id", sorts[0][1] if sorts else True))
    for key, ascending in reversed(sorts):
        out = sorted(out, key=lambda i, k=key: _sort_value(i.get(k)), reverse=not ascending)
    if q.limit is None and q.marker is None:
        return out, False, False
    if q.page_reverse:
        out = out[::-1]
    start = 0
    if q.marker is not None:
        ids = [i["id"] for i in out]
        if q.marker not in ids:
            raise BadRequest(f"Marker {q.marker} could not be found.", kind="BadRequest")
        start = ids.index(q.marker) + 1
    end = len(out) if q.limit is None else start + q.limit
    page = out[start:end]
    has_more = end < len(out)
    if q.page_reverse:
        page = page[::-1]
    return page, has_more, q.marker is not None


@dataclass(frozen=True)
class SqlPage:
    """A page the database can cut: ordered by id, ``limit`` + 1 rows after ``marker``."""

    limit: int
    marker: str | None
    descending: bool  # the direction rows are read in from the marker
    page_reverse: bool


def sql_page(q: ListQuery, pushed: Collection[str]) -> SqlPage | None:
    """The SQL form of ``q`` when it is a plain page by id over pushed filters, else None."""
    if q.limit is None or q.tags or q.tags_any or q.not_tags or q.not_tags_any:
        return None
    if any(name not in pushed for name in q.filters):
        return None
    if q.sorts and (len(q.sorts) > 1 or q.sorts[0][0] != "id"):
        return None
    ascending = q.sorts[0][1] if q.sorts else True
    return SqlPage(q.limit, q.marker, ascending == q.page_reverse, q.page_reverse)


def cut(items: list[dict[str, Any]], page: SqlPage) -> tuple[list[dict[str, Any]], bool, bool]:
    """What :func:`apply` returns, for rows read per ``page`` (up to limit + 1 of them)."""
    out = items[:page.limit]
    if page.page_reverse:
        out = out[::-1]
    return out, len(items) > page.limit, page.marker is not None


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, (bool, int, float)):
        return (1, value)
    return (2, str(value))


def select_fields(item: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    if not fields:
        return item
    return {k: item[k] for k in fields if k in item}


def links(collection: str, base_url: str, q: ListQuery, page: list[dict[str, Any]],
          has_next: bool, has_previous: bool) -> list[dict[str, str]]:
    """Neutron's ``<collection>_links``: next/previous pages keyed by marker."""
    if not page:
        return []
    out = []
    keep = [(k, v) for k, v in q.params if k not in ("marker", "page_reverse")]
    forward_more = has_previous if q.page_reverse else has_next
    backward_more = has_next if q.page_reverse else has_previous
    if forward_more:
        params = keep + [("marker", page[-1]["id"])]
        out.append({"rel": "next", "href": f"{base_url}/{collection}?{urlencode(params)}"})
    if backward_more:
        params = keep + [("marker", page[0]["id"]), ("page_reverse", "True")]
        out.append({"rel": "previous",
                    "href": f"{base_url}/{collection}?{urlencode(params)}"})
    return out
