"""Identity's policy defaults (secure-RBAC personas, simplified).

* ``admin`` on any scope administers the cloud (as Keystone's legacy
  ``admin_required``; Tempest's admin is project-scoped);
* a domain-scoped ``reader`` sees its domain's projects, users, groups;
* everyone sees themselves: their user, their token's project, their own
  application credentials, tokens and credentials.

Handlers pass targets as nested dicts: ``{"target": {"project": row}}``.
Override any rule in ``<data_dir>/policy/identity.json``.
"""

from __future__ import annotations

ADMIN = "rule:admin_required"
READER = "(rule:admin_required or rule:system_reader)"  # who may read everything
DOMAIN_READER = "role:reader and domain_id:%(domain_id)s"
ANY = ""

RULES: dict[str, str] = {
    # domains
    "identity:get_domain": f"{READER} or domain_id:%(target.domain.id)s or "
                           "project_domain_id:%(target.domain.id)s or "
                           "user_domain_id:%(target.domain.id)s",
    "identity:list_domains": READER,
    "identity:create_domain": ADMIN,
    "identity:update_domain": ADMIN,
    "identity:delete_domain": ADMIN,
    # projects
    "identity:get_project": f"{READER} or project_id:%(target.project.id)s or "
                            "(role:reader and domain_id:%(target.project.domain_id)s)",
    "identity:list_projects": f"{READER} or ({DOMAIN_READER})",
    "identity:list_user_projects": f"{READER} or user_id:%(user_id)s",
    "identity:create_project": ADMIN,
    "identity:update_project": ADMIN,
    "identity:delete_project": ADMIN,
    "identity:update_project_tags": ADMIN,
    # users
    "identity:get_user": f"{READER} or user_id:%(target.user.id)s or "
                         "(role:reader and domain_id:%(target.user.domain_id)s)",
    "identity:list_users": f"{READER} or ({DOMAIN_READER})",
    "identity:create_user": ADMIN,
    "identity:update_user": ADMIN,
    "identity:delete_user": ADMIN,
    "identity:change_password": f"{ADMIN} or user_id:%(user_id)s",
    # groups
    "identity:get_group": f"{READER} or (role:reader and domain_id:%(target.group.domain_id)s)",
    "identity:list_groups": f"{READER} or ({DOMAIN_READER})",
    "identity:list_groups_for_user": f"{READER} or user_id:%(user_id)s",
    "identity:create_group": ADMIN,
    "identity:update_group": ADMIN,
    "identity:delete_group": ADMIN,
    "identity:list_users_in_group": f"{READER} or "
                                    "(role:reader and domain_id:%(target.group.domain_id)s)",
    "identity:add_user_to_group": ADMIN,
    "identity:remove_user_from_group": ADMIN,
    "identity:check_user_in_group": f"{READER} or user_id:%(user_id)s",
    # roles and assignments
    "identity:get_role": f"{READER} or (role:reader and domain_id:%(domain_id)s)",
    "identity:list_roles": f"{READER} or role:reader",
    "identity:create_role": ADMIN,
    "identity:update_role": ADMIN,
    "identity:delete_role": ADMIN,
    "identity:implied_roles": ADMIN,
    "identity:list_role_inference_rules": f"{READER} or role:reader",
    "identity:list_grants": f"{READER} or user_id:%(user_id)s",
    "identity:check_grant": f"{READER} or user_id:%(user_id)s",
    "identity:create_grant": ADMIN,
    "identity:revoke_grant": ADMIN,
    "identity:list_role_assignments": f"{READER} or user_id:%(user.id)s or "
                                      "(role:reader and domain_id:%(scope.domain.id)s)",
    # catalog
    "identity:get_region": ANY,
    "identity:list_regions": ANY,
    "identity:create_region": ADMIN,
    "identity:update_region": ADMIN,
    "identity:delete_region": ADMIN,
    "identity:get_service": READER,
    "identity:list_services": f"{READER} or rule:service_role",
    "identity:create_service": ADMIN,
    "identity:update_service": ADMIN,
    "identity:delete_service": ADMIN,
    "identity:get_endpoint": READER,
    "identity:list_endpoints": f"{READER} or rule:service_role",
    "identity:create_endpoint": ADMIN,
    "identity:update_endpoint": ADMIN,
    "identity:delete_endpoint": ADMIN,
    # tokens
    "identity:validate_token": f"{ADMIN} or rule:service_role or "
                               "user_id:%(target.token.user_id)s",
    "identity:revoke_token": f"{ADMIN} or rule:service_role or "
                             "user_id:%(target.token.user_id)s",
    "identity:list_revoke_events": f"{READER} or rule:service_role",
    # application credentials and credentials
    "identity:get_application_credential": f"{READER} or user_id:%(user_id)s",
    "identity:list_application_credentials": f"{READER} or user_id:%(user_id)s",
    "identity:create_application_credential": "user_id:%(user_id)s",
    "identity:delete_application_credential": f"{ADMIN} or user_id:%(user_id)s",
    "identity:get_credential": f"{READER} or user_id:%(target.credential.user_id)s",
    "identity:list_credentials": ANY,  # filtered to the caller's own unless admin
    "identity:create_credential": f"{ADMIN} or user_id:%(target.credential.user_id)s",
    "identity:update_credential": f"{ADMIN} or user_id:%(target.credential.user_id)s",
    "identity:delete_credential": f"{ADMIN} or user_id:%(target.credential.user_id)s",
    # unified limits
    "identity:get_registered_limit": ANY,
    "identity:list_registered_limits": ANY,
    "identity:create_registered_limits": ADMIN,
    "identity:update_registered_limit": ADMIN,
    "identity:delete_registered_limit": ADMIN,
    "identity:get_limit": f"{READER} or project_id:%(target.limit.project_id)s",
    "identity:list_limits": ANY,  # filtered to the caller's project unless admin
    "identity:create_limits": ADMIN,
    "identity:update_limit": ADMIN,
    "identity:delete_limit": ADMIN,
    # trusts (OS-TRUST): the trustor makes them; both parties see them
    "identity:create_trust": "user_id:%(trust.trustor_user_id)s",
    "identity:list_trusts": READER,
    "identity:list_trusts_for_trustor": f"{READER} or "
                                        "user_id:%(target.trust.trustor_user_id)s",
    "identity:list_trusts_for_trustee": f"{READER} or "
                                        "user_id:%(target.trust.trustee_user_id)s",
    "identity:get_trust": f"{READER} or user_id:%(target.trust.trustor_user_id)s or "
                          "user_id:%(target.trust.trustee_user_id)s",
    "identity:delete_trust": f"{ADMIN} or user_id:%(target.trust.trustor_user_id)s",
    "identity:list_roles_for_trust": f"{READER} or user_id:%(target.trust.trustor_user_id)s "
                                     "or user_id:%(target.trust.trustee_user_id)s",
    "identity:get_role_for_trust": f"{READER} or user_id:%(target.trust.trustor_user_id)s "
                                   "or user_id:%(target.trust.trustee_user_id)s",
    # the legacy policy API
    "identity:policies": ADMIN,
}
