from stratus.db.alembic_env import run
from stratus.identity.models import metadata

run(metadata)
