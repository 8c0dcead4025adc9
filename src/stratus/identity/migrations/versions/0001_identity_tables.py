"""Identity tables.

Revision ID: identity_0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import stratus.db.base

revision = "identity_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('identity_credentials',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('type', sa.String(length=255), nullable=False),
    sa.Column('blob', sa.Text(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_credentials'))
    )
    op.create_index('ix_identity_credentials_user', 'identity_credentials', ['user_id'], unique=False)
    op.create_table('identity_domains',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_domains')),
    sa.UniqueConstraint('name', name=op.f('uq_identity_domains_name'))
    )
    op.create_table('identity_endpoint_groups',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('filters', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_endpoint_groups'))
    )
    op.create_table('identity_limits',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('domain_id', sa.String(length=64), nullable=True),
    sa.Column('service_id', sa.String(length=64), nullable=False),
    sa.Column('region_id', sa.String(length=255), nullable=True),
    sa.Column('resource_name', sa.String(length=255), nullable=False),
    sa.Column('resource_limit', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_limits'))
    )
    op.create_table('identity_oauth_consumers',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('secret_hash', sa.String(length=128), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_oauth_consumers'))
    )
    op.create_table('identity_policies',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=255), nullable=False),
    sa.Column('blob', sa.Text(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_policies'))
    )
    op.create_table('identity_regions',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('parent_region_id', sa.String(length=255), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_regions'))
    )
    op.create_table('identity_registered_limits',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('service_id', sa.String(length=64), nullable=False),
    sa.Column('region_id', sa.String(length=255), nullable=True),
    sa.Column('resource_name', sa.String(length=255), nullable=False),
    sa.Column('default_limit', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_registered_limits'))
    )
    op.create_table('identity_revocation_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('domain_id', sa.String(length=64), nullable=True),
    sa.Column('audit_id', sa.String(length=32), nullable=True),
    sa.Column('audit_chain_id', sa.String(length=32), nullable=True),
    sa.Column('issued_before', stratus.db.base.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', stratus.db.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_revocation_events'))
    )
    op.create_table('identity_roles',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_roles')),
    sa.UniqueConstraint('domain_id', 'name', name='uq_identity_roles_domain_name')
    )
    op.create_table('identity_services',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=255), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_services'))
    )
    op.create_table('identity_trusts',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('trustor_user_id', sa.String(length=64), nullable=False),
    sa.Column('trustee_user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('impersonation', sa.Boolean(), nullable=False),
    sa.Column('expires_at', stratus.db.base.UTCDateTime(), nullable=True),
    sa.Column('remaining_uses', sa.Integer(), nullable=True),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_trusts'))
    )
    op.create_table('identity_assignments',
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=False),
    sa.Column('role_id', sa.String(length=64), nullable=False),
    sa.Column('inherited', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['role_id'], ['identity_roles.id'], name=op.f('fk_identity_assignments_role_id_identity_roles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('type', 'actor_id', 'target_id', 'role_id', 'inherited', name=op.f('pk_identity_assignments'))
    )
    op.create_index('ix_identity_assignments_actor', 'identity_assignments', ['actor_id'], unique=False)
    op.create_index('ix_identity_assignments_target', 'identity_assignments', ['target_id'], unique=False)
    op.create_table('identity_domain_configs',
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['identity_domains.id'], name=op.f('fk_identity_domain_configs_domain_id_identity_domains'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('domain_id', name=op.f('pk_identity_domain_configs'))
    )
    op.create_table('identity_endpoints',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('service_id', sa.String(length=64), nullable=False),
    sa.Column('interface', sa.String(length=8), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('region_id', sa.String(length=255), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['identity_services.id'], name=op.f('fk_identity_endpoints_service_id_identity_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_endpoints'))
    )
    op.create_table('identity_groups',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['identity_domains.id'], name=op.f('fk_identity_groups_domain_id_identity_domains')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_groups')),
    sa.UniqueConstraint('domain_id', 'name', name='uq_identity_groups_domain_name')
    )
    op.create_table('identity_implied_roles',
    sa.Column('prior_role_id', sa.String(length=64), nullable=False),
    sa.Column('implied_role_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['implied_role_id'], ['identity_roles.id'], name=op.f('fk_identity_implied_roles_implied_role_id_identity_roles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['prior_role_id'], ['identity_roles.id'], name=op.f('fk_identity_implied_roles_prior_role_id_identity_roles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('prior_role_id', 'implied_role_id', name=op.f('pk_identity_implied_roles'))
    )
    op.create_table('identity_projects',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('parent_id', sa.String(length=64), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['identity_domains.id'], name=op.f('fk_identity_projects_domain_id_identity_domains')),
    sa.ForeignKeyConstraint(['parent_id'], ['identity_projects.id'], name=op.f('fk_identity_projects_parent_id_identity_projects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_projects')),
    sa.UniqueConstraint('domain_id', 'name', name='uq_identity_projects_domain_name')
    )
    op.create_table('identity_users',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('password_hash', sa.String(length=128), nullable=True),
    sa.Column('password_created_at', stratus.db.base.UTCDateTime(), nullable=True),
    sa.Column('default_project_id', sa.String(length=64), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('created_at', stratus.db.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['domain_id'], ['identity_domains.id'], name=op.f('fk_identity_users_domain_id_identity_domains')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_users')),
    sa.UniqueConstraint('domain_id', 'name', name='uq_identity_users_domain_name')
    )
    op.create_table('identity_access_rules',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('service', sa.String(length=255), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['identity_users.id'], name=op.f('fk_identity_access_rules_user_id_identity_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_access_rules'))
    )
    op.create_index('ix_identity_access_rules_user', 'identity_access_rules', ['user_id'], unique=False)
    op.create_table('identity_application_credentials',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('secret_hash', sa.String(length=128), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('expires_at', stratus.db.base.UTCDateTime(), nullable=True),
    sa.Column('unrestricted', sa.Boolean(), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('access_rules', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['identity_users.id'], name=op.f('fk_identity_application_credentials_user_id_identity_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_application_credentials')),
    sa.UniqueConstraint('user_id', 'name', name='uq_identity_application_credentials_user_name')
    )
    op.create_table('identity_group_members',
    sa.Column('group_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['identity_groups.id'], name=op.f('fk_identity_group_members_group_id_identity_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['identity_users.id'], name=op.f('fk_identity_group_members_user_id_identity_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'user_id', name=op.f('pk_identity_group_members'))
    )
    op.create_index('ix_identity_group_members_user', 'identity_group_members', ['user_id'], unique=False)
    op.create_table('identity_project_tags',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('tag', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['identity_projects.id'], name=op.f('fk_identity_project_tags_project_id_identity_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'tag', name=op.f('pk_identity_project_tags'))
    )


def downgrade() -> None:
    op.drop_table('identity_project_tags')
    op.drop_index('ix_identity_group_members_user', table_name='identity_group_members')
    op.drop_table('identity_group_members')
    op.drop_table('identity_application_credentials')
    op.drop_index('ix_identity_access_rules_user', table_name='identity_access_rules')
    op.drop_table('identity_access_rules')
    op.drop_table('identity_users')
    op.drop_table('identity_projects')
    op.drop_table('identity_implied_roles')
    op.drop_table('identity_groups')
    op.drop_table('identity_endpoints')
    op.drop_table('identity_domain_configs')
    op.drop_index('ix_identity_assignments_target', table_name='identity_assignments')
    op.drop_index('ix_identity_assignments_actor', table_name='identity_assignments')
    op.drop_table('identity_assignments')
    op.drop_table('identity_trusts')
    op.drop_table('identity_services')
    op.drop_table('identity_roles')
    op.drop_table('identity_revocation_events')
    op.drop_table('identity_registered_limits')
    op.drop_table('identity_regions')
    op.drop_table('identity_policies')
    op.drop_table('identity_oauth_consumers')
    op.drop_table('identity_limits')
    op.drop_table('identity_endpoint_groups')
    op.drop_table('identity_domains')
    op.drop_index('ix_identity_credentials_user', table_name='identity_credentials')
    op.drop_table('identity_credentials')
