from stratus.db.alembic_env import run
from stratus.network.models import metadata

run(metadata)
