from stratus.compute.models import metadata
from stratus.db.alembic_env import run

run(metadata)
