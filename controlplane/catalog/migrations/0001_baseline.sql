-- The catalog as tenantvec made it before its schema was versioned: a catalog created
-- by an older tenantvec already has these tables (each statement then does nothing),
-- or lacks only the columns added to `tenants` later (added here).
CREATE TABLE IF NOT EXISTS catalog_meta (
    key   varchar(63) PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE IF NOT EXISTS servers (
    name                varchar(63) PRIMARY KEY,
    kind                varchar(16) NOT NULL,
    state               varchar(16) NOT NULL,
    address             varchar(255) NOT NULL,
    admin_dsn_encrypted text NOT NULL,
    capacity            integer,
    server_version      varchar(32) NOT NULL,
    pgvector_version    varchar(32) NOT NULL,
    created_at          timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS tenants (
    uid                   uuid PRIMARY KEY,
    id                    varchar(63) NOT NULL,
    state                 varchar(16) NOT NULL,
    backend               varchar(32) NOT NULL,
    server                varchar(63),
    placement             jsonb NOT NULL DEFAULT '{}'::jsonb,
    dsn_encrypted         text,
    service_dsn_encrypted text,
    dims                  integer NOT NULL,
    metric                varchar(16) NOT NULL,
    index_kind            varchar(16) NOT NULL,
    index_params          jsonb NOT NULL DEFAULT '{}'::jsonb,
    text_config           varchar(63) NOT NULL,
    schema_version        integer NOT NULL,
    labels                jsonb NOT NULL DEFAULT '{}'::jsonb,
    embedder              jsonb NOT NULL DEFAULT '{}'::jsonb,
    chunking              jsonb NOT NULL DEFAULT '{}'::jsonb,
    error                 text,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    expires_at            timestamptz,
    deleted_at            timestamptz,
    last_active_at        timestamptz
);
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS embedder jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS chunking jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS last_active_at timestamptz;
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS service_dsn_encrypted text;
CREATE INDEX IF NOT EXISTS tenants_expires_at ON tenants (expires_at) WHERE expires_at IS NOT NULL;
-- One live row per tenant id; deleted rows stay for audit and free the id.
CREATE UNIQUE INDEX IF NOT EXISTS tenants_live_id ON tenants (id) WHERE state <> 'deleted';
CREATE INDEX IF NOT EXISTS tenants_state ON tenants (state);

CREATE TABLE IF NOT EXISTS operations (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  varchar(63),
    tenant_uid uuid,
    action     varchar(32) NOT NULL,
    actor      varchar(255) NOT NULL,
    outcome    varchar(16) NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,
    error      text,
    details    jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS operations_tenant ON operations (tenant_id, started_at);
CREATE INDEX IF NOT EXISTS operations_started_at ON operations (started_at);

CREATE TABLE IF NOT EXISTS api_keys (
    id          varchar(32) PRIMARY KEY,
    tenant_uid  uuid NOT NULL,
    tenant_id   varchar(63) NOT NULL,
    name        varchar(255),
    secret_hash varchar(64) NOT NULL,
    created_by  varchar(255) NOT NULL,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant_uid);

CREATE TABLE IF NOT EXISTS job_queue (
    id               uuid PRIMARY KEY,
    tenant_uid       uuid NOT NULL,
    tenant_id        varchar(63) NOT NULL,
    created_at       timestamptz NOT NULL,
    lease_owner      varchar(255),
    lease_expires_at timestamptz,
    attempts         integer NOT NULL
);
CREATE INDEX IF NOT EXISTS job_queue_created_at ON job_queue (created_at);
