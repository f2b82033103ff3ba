#!/usr/bin/env bash
# Runs once, when the postgres container initialises an empty data volume
# (/docker-entrypoint-initdb.d). Creates one database per ContactPoint service, each owned by a
# login role of the same name whose password comes from the environment — no secret lives in
# this file. No role may connect to another service's database: each service owns its own.
#
#   IDENTITY_DB_PASSWORD, RECORDS_DB_PASSWORD, AUDIT_DB_PASSWORD, GATEWAY_DB_PASSWORD,
#   WITNESS_DB_PASSWORD   (required)
#
# Use URL-safe passwords (e.g. `openssl rand -hex 24`): they are also written into each
# service's CONTACTPOINT_<SERVICE>_DATABASE_URL.
set -euo pipefail

create_service_database() {
  local name="$1" password="$2"
  if [ -z "$password" ]; then
    echo "init-databases: the password for $name is empty" >&2
    exit 1
  fi
  # psql variables (:"name", :'password') quote the identifier and the literal safely.
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v name="$name" -v password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"name" TO :"name";
SQL
}

create_service_database identity "${IDENTITY_DB_PASSWORD:-}"
create_service_database records "${RECORDS_DB_PASSWORD:-}"
create_service_database audit "${AUDIT_DB_PASSWORD:-}"
# The gateway keeps each person's rate and daily allowance here, shared by every replica.
create_service_database gateway "${GATEWAY_DB_PASSWORD:-}"
# The audit log's witness: the newest checkpoint it cosigned (run it apart from audit in production).
create_service_database witness "${WITNESS_DB_PASSWORD:-}"
