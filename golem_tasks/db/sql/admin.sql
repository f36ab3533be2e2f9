-- Queries for the database itself: bootstrap, schema version, migrations.

-- name: database_exists
SELECT 1 FROM pg_database WHERE datname = %(name)s;

-- name: create_database
-- The name is an identifier composed with psycopg.sql.Identifier, never formatted text.
CREATE DATABASE {name};

-- name: set_role_password
-- The role is composed with psycopg.sql.Identifier and the password (a scram verifier,
-- never the password itself) with psycopg.sql.Literal: ALTER ROLE takes no parameters.
ALTER ROLE {role} PASSWORD {password};

-- name: install_lock
-- One install at a time per database; released at the end of the transaction.
SELECT pg_advisory_xact_lock(hashtext('golem-tasks install'));

-- name: create_migration_table
CREATE SCHEMA IF NOT EXISTS tasks;
CREATE TABLE IF NOT EXISTS tasks.schema_migration (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: applied_migrations
SELECT version, name, checksum, applied_at FROM tasks.schema_migration ORDER BY version;

-- name: record_migration
INSERT INTO tasks.schema_migration (version, name, checksum)
VALUES (%(version)s, %(name)s, %(checksum)s);

-- name: schema_present
SELECT to_regclass('tasks.schema_migration') IS NOT NULL AS present;

-- name: schema_version
SELECT coalesce(max(version), 0) AS version FROM tasks.schema_migration;

-- name: create_schema
-- The name is composed with psycopg.sql.Identifier.
CREATE SCHEMA IF NOT EXISTS {name};

-- name: set_local_search_path
SELECT set_config('search_path', %(path)s, true);

-- name: reset_search_path
SELECT set_config('search_path', reset_val, true) FROM pg_settings WHERE name = 'search_path';
