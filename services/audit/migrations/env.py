from contactpoint.platform.migrate import run_migrations
from services.audit.tables import metadata

run_migrations(metadata)
