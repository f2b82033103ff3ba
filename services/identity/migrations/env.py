from contactpoint.platform.migrate import run_migrations
from services.identity.tables import metadata

run_migrations(metadata)
