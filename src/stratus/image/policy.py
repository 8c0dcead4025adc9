"""Who may do what to an image: the policy defaults and the visibility rules.

Action rules are oslo.policy strings (operators override them in
``<data_dir>/policy/image.json``); the target of every image rule is
``{"project_id": <image owner>, "visibility": ..., "member_id": ...}``.
Which images a caller can *see* is data (owner, visibility, membership), so
it lives in :func:`can_see` and in the list query, not in a rule.
"""

from __future__ import annotations

from typing import Any

from stratus.api.context import RequestContext
from stratus.api.policy import Policy
from stratus.errors import Forbidden
from stratus.image.domain import Image, MemberStatus, Visibility

DEFAULTS: dict[str, str] = {
    "see_all_images": "rule:admin_required or rule:service_role",
    "get_image": "role:reader or rule:admin_required",
    "get_images": "role:reader or rule:admin_required",
    "add_image": "rule:admin_required or rule:project_member",
    "set_image_owner": "rule:admin_required",
    "modify_image": "rule:admin_required or rule:project_member",
    # service_role: compute deletes the images a crash left half-made (no user token then)
    "delete_image": "rule:admin_required or rule:project_member or rule:service_role",
    "upload_image": "rule:admin_required or rule:project_member or rule:service_role",
    "download_image": "role:reader or rule:admin_required or rule:service_role",
    "download_deactivated_image": "rule:admin_required",
    "publicize_image": "rule:admin_required",
    "communitize_image": "rule:admin_required or rule:project_member",
    "deactivate": "rule:admin_required or rule:project_member",
    "reactivate": "rule:admin_required or rule:project_member",
    "add_member": "rule:admin_required or rule:project_member",
    "delete_member": "rule:admin_required or rule:project_member",
    "modify_member": "rule:admin_required or (role:member and project_id:%(member_id)s)",
    "get_member": "role:reader or rule:admin_required",
    "get_members": "role:reader or rule:admin_required",
    "get_tasks": "rule:admin_required or rule:project_reader",
    "stores_info_detail": "rule:admin_required",
    # Metadata definitions: everyone reads what they can see (public
    # namespaces and their own project's), admins manage the catalog.
    "metadef_default": "role:reader or rule:admin_required",
    "metadef_admin": "rule:admin_required",
    **{f"{verb}_metadef_{what}": "rule:metadef_default"
       for verb in ("get",) for what in ("namespace", "namespaces", "object", "objects",
                                         "property", "properties", "tag", "tags")},
    **{f"{verb}_metadef_{what}": "rule:metadef_admin"
       for verb, what in (("add", "namespace"), ("modify", "namespace"),
                          ("delete", "namespace"), ("add", "object"), ("modify", "object"),
                          ("delete", "object"), ("add", "property"), ("modify", "property"),
                          ("remove", "property"), ("add", "tag"), ("add", "tags"),
                          ("modify", "tag"), ("delete", "tag"), ("delete", "tags"))},
    "list_metadef_resource_types": "rule:metadef_default",
    "get_metadef_resource_type": "rule:metadef_default",
    "add_metadef_resource_type_association": "rule:metadef_admin",
    "remove_metadef_resource_type_association": "rule:metadef_admin",
}


def target(image: Image, **extra: Any) -> dict[str, Any]:
    return {"project_id": image.owner, "owner": image.owner,
            "visibility": str(image.visibility), **extra}


class ImagePolicy:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def enforce(self, rule: str, ctx: RequestContext, tgt: dict[str, Any] | None = None) -> None:
        self.policy.enforce(rule, ctx, tgt or {"project_id": ctx.project_id})

    def check(self, rule: str, ctx: RequestContext, tgt: dict[str, Any] | None = None) -> bool:
        return self.policy.check(rule, ctx, tgt or {"project_id": ctx.project_id})

    def sees_all(self, ctx: RequestContext) -> bool:
        return self.policy.check("see_all_images", ctx, {"project_id": ctx.project_id})

    def check_visibility_change(self, ctx: RequestContext, image: Image,
                                visibility: Visibility) -> None:
        if visibility is Visibility.PUBLIC:
            if not self.check("publicize_image", ctx, target(image)):
                raise Forbidden("You are not authorized to make images public; only "
                                "administrators can.")
        elif visibility is Visibility.COMMUNITY:
            self.enforce("communitize_image", ctx, target(image))


def can_see(image: Image, ctx: RequestContext, member_status: str | None,
            sees_all: bool) -> bool:
    """Whether the caller may know that ``image`` exists.

    ``member_status`` is the caller's membership of the image, if any; a
    pending or rejected member may still look at the image (to accept it).
    """
    if sees_all or image.owner == ctx.project_id and ctx.project_id is not None:
        return True
    if image.visibility in (Visibility.PUBLIC, Visibility.COMMUNITY):
        return True
    if image.visibility is Visibility.SHARED and member_status is not None:
        return member_status in set(MemberStatus)
    return False


def owns(image: Image, ctx: RequestContext, sees_all: bool) -> bool:
    return sees_all or (ctx.project_id is not None and image.owner == ctx.project_id)
