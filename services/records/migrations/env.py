from contactpoint.platform.migrate import run_migrations
from services.records.tables import metadata

run_migrations(metadata)
