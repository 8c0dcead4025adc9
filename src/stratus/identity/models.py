"""Identity's tables (SQLAlchemy Core). Identity owns these; no other service reads them.

Tokens are not here: they are Fernet tokens, validated by decrypting them.
Only revocation events are stored.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from stratus.db.base import ID, UTCDateTime, new_metadata

metadata = new_metadata()

NAME = String(255)
GLOBAL = ""  # roles.domain_id for global roles (NULL would defeat the unique constraint)

domains = Table(
    "identity_domains", metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("extra", JSON, nullable=False, default=dict),
)

projects = Table(
    "identity_projects", metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False),
    Column("domain_id", ID, ForeignKey("identity_domains.id"), nullable=False),
    Column("parent_id", ID, ForeignKey("identity_projects.id"), nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("extra", JSON, nullable=False, default=dict),
    UniqueConstraint("domain_id", "name", name="uq_identity_projects_domain_name"),
)

project_tags = Table(
    "identity_project_tags", metadata,
    Column("project_id", ID, ForeignKey("identity_projects.id", ondelete="CASCADE"),
           primary_key=True),
    Column("tag", NAME, primary_key=True),
)

users = Table(
    "identity_users", metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False),
    Column("domain_id", ID, ForeignKey("identity_domains.id"), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("password_hash", String(128), nullable=True),
    Column("password_created_at", UTCDateTime, nullable=True),
    Column("default_project_id", ID, nullable=True),
    Column("description", Text, nullable=True),
    Column("options", JSON, nullable=False, default=dict),
    Column("extra", JSON, nullable=False, default=dict),
    Column("created_at", UTCDateTime, nullable=True),
    UniqueConstraint("domain_id", "name", name="uq_identity_users_domain_name"),
)

groups = Table(
    "identity_groups", metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False),
    Column("domain_id", ID, ForeignKey("identity_domains.id"), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("extra", JSON, nullable=False, default=dict),
    UniqueConstraint("domain_id", "name", name="uq_identity_groups_domain_name"),
)

group_members = Table(
    "identity_group_members", metadata,
    Column("group_id", ID, ForeignKey("identity_groups.id", ondelete="CASCADE"),
           primary_key=True),
    Column("user_id", ID, ForeignKey("identity_users.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_identity_group_members_user", "user_id"),
)

roles = Table(
    "identity_roles", metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False),
    Column("domain_id", ID, nullable=False, default=GLOBAL),
    Column("description", Text, nullable=True),
    Column("options", JSON, nullable=False, default=dict),
    Column("extra", JSON, nullable=False, default=dict),
    UniqueConstraint("domain_id", "name", name="uq_identity_roles_domain_name"),
)

implied_roles = Table(
    "identity_implied_roles", metadata,
    Column("prior_role_id", ID, ForeignKey("identity_roles.id", ondelete="CASCADE"),
           primary_key=True),
    Column("implied_role_id", ID, ForeignKey("identity_roles.id", ondelete="CASCADE"),
           primary_key=True),
)

# type: one of UserProject, GroupProject, UserDomain, GroupDomain, UserSystem, GroupSystem.
assignments = Table(
    "identity_assignments", metadata,
    Column("type", String(16), primary_key=True),
    Column("actor_id", ID, primary_key=True),
    Column("target_id", ID, primary_key=True),
    Column("role_id", ID, ForeignKey("identity_roles.id", ondelete="CASCADE"), primary_key=True),
    Column("inherited", Boolean, primary_key=True, default=False),
    Index("ix_identity_assignments_actor", "actor_id"),
    Index("ix_identity_assignments_target", "target_id"),
)

regions = Table(
    "identity_regions", metadata,
    Column("id", NAME, primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("parent_region_id", NAME, nullable=True),
    Column("extra", JSON, nullable=False, default=dict),
)

services = Table(
    "identity_services", metadata,
    Column("id", ID, primary_key=True),
    Column("type", NAME, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("extra", JSON, nullable=False, default=dict),  # name, description, ...
)

endpoints = Table(
    "identity_endpoints", metadata,
    Column("id", ID, primary_key=True),
    Column("service_id", ID, ForeignKey("identity_services.id"), nullable=False),
    Column("interface", String(8), nullable=False),
    Column("url", Text, nullable=False),
    Column("region_id", NAME, nullable=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("extra", JSON, nullable=False, default=dict),
)

app_creds = Table(
    "identity_application_credentials", metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False),
    Column("user_id", ID, ForeignKey("identity_users.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", ID, nullable=False),
    Column("secret_hash", String(128), nullable=False),
    Column("description", Text, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("unrestricted", Boolean, nullable=False, default=False),
    Column("roles", JSON, nullable=False, default=list),  # [role id, ...]
    Column("access_rules", JSON, nullable=False, default=list),
    UniqueConstraint("user_id", "name", name="uq_identity_application_credentials_user_name"),
)

credentials = Table(
    "identity_credentials", metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, nullable=False),
    Column("project_id", ID, nullable=True),
    Column("type", NAME, nullable=False),
    Column("blob", Text, nullable=False),
    Column("extra", JSON, nullable=False, default=dict),
    Index("ix_identity_credentials_user", "user_id"),
)

registered_limits = Table(
    "identity_registered_limits", metadata,
    Column("id", ID, primary_key=True),
    Column("service_id", ID, nullable=False),
    Column("region_id", NAME, nullable=True),
    Column("resource_name", NAME, nullable=False),
    Column("default_limit", Integer, nullable=False),
    Column("description", Text, nullable=True),
)

limits = Table(
    "identity_limits", metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, nullable=True),
    Column("domain_id", ID, nullable=True),
    Column("service_id", ID, nullable=False),
    Column("region_id", NAME, nullable=True),
    Column("resource_name", NAME, nullable=False),
    Column("resource_limit", Integer, nullable=False),
    Column("description", Text, nullable=True),
)

# A token matches an event when every field the event sets equals the token's,
# and the token was issued at or before ``issued_before``.
revocation_events = Table(
    "identity_revocation_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", ID, nullable=True),
    Column("project_id", ID, nullable=True),
    Column("domain_id", ID, nullable=True),
    Column("audit_id", String(32), nullable=True),
    Column("audit_chain_id", String(32), nullable=True),
    Column("issued_before", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=False),
)

policies = Table(
    "identity_policies", metadata,
    Column("id", ID, primary_key=True),
    Column("type", NAME, nullable=False),
    Column("blob", Text, nullable=False),
    Column("extra", JSON, nullable=False, default=dict),
)

trusts = Table(
    "identity_trusts", metadata,
    Column("id", ID, primary_key=True),
    Column("trustor_user_id", ID, nullable=False),
    Column("trustee_user_id", ID, nullable=False),
    Column("project_id", ID, nullable=True),
    Column("impersonation", Boolean, nullable=False, default=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("remaining_uses", Integer, nullable=True),
    Column("roles", JSON, nullable=False, default=list),
    Column("extra", JSON, nullable=False, default=dict),
)

access_rules = Table(
    "identity_access_rules", metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("identity_users.id", ondelete="CASCADE"), nullable=False),
    Column("service", NAME, nullable=False),
    Column("path", Text, nullable=False),
    Column("method", String(16), nullable=False),
    Index("ix_identity_access_rules_user", "user_id"),
)

oauth_consumers = Table(
    "identity_oauth_consumers", metadata,
    Column("id", ID, primary_key=True),
    Column("description", Text, nullable=True),
    Column("secret_hash", String(128), nullable=False),
    Column("extra", JSON, nullable=False, default=dict),
)

# Keystone's domain-specific configuration (``/v3/domains/{id}/config``): stored and
# returned; Stratus has one identity backend, so nothing reads it yet.
domain_configs = Table(
    "identity_domain_configs", metadata,
    Column("domain_id", ID, ForeignKey("identity_domains.id", ondelete="CASCADE"),
           primary_key=True),
    Column("config", JSON, nullable=False, default=dict),
)

# OS-EP-FILTER endpoint groups: stored and listed (catalog filtering by project: not yet).
endpoint_groups = Table(
    "identity_endpoint_groups", metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False),
    Column("description", Text, nullable=True),
    Column("filters", JSON, nullable=False, default=dict),
)

# Security compliance: earlier password hashes (for unique_last_password_count) and
# failed password logins (for lockout_failure_attempts). Rows exist only while those
# options are on, so a default deployment never writes here.
password_history = Table(
    "identity_password_history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", ID, ForeignKey("identity_users.id", ondelete="CASCADE"), nullable=False),
    Column("password_hash", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_identity_password_history_user", "user_id"),
)

login_failures = Table(
    "identity_login_failures", metadata,
    Column("user_id", ID, ForeignKey("identity_users.id", ondelete="CASCADE"),
           primary_key=True),
    Column("count", Integer, nullable=False, default=0),
    Column("last_failure_at", UTCDateTime, nullable=False),
)
