from stratus.db.alembic_env import run
from stratus.compute.models import metadata

run(metadata)
