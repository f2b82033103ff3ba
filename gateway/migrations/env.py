from contactpoint.platform.migrate import run_migrations
from gateway.tables import metadata

run_migrations(metadata)
