from contactpoint.platform.migrate import run_migrations
from services.witness.tables import metadata

run_migrations(metadata)
