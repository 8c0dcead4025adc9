from stratus.db.alembic_env import run
from stratus.image.models import metadata

run(metadata)
