-- +goose Up
ALTER TABLE hosts
    ADD COLUMN address         text,
    ADD COLUMN hypervisor      text,
    ADD COLUMN cpu_model       text,
    ADD COLUMN cpu_features    text[] NOT NULL DEFAULT '{}',
    ADD COLUMN traits          text[] NOT NULL DEFAULT '{}',
    ADD COLUMN ratio_cpu       double precision NOT NULL DEFAULT 4,
    ADD COLUMN ratio_ram       double precision NOT NULL DEFAULT 1,
    ADD COLUMN ratio_disk      double precision NOT NULL DEFAULT 1,
    ADD COLUMN disabled        boolean NOT NULL DEFAULT false,
    ADD COLUMN maintenance     boolean NOT NULL DEFAULT false,
    ADD COLUMN status_reason   text,
    ADD COLUMN down            boolean NOT NULL DEFAULT false,
    ADD COLUMN down_since      timestamptz,
    ADD COLUMN used_vcpus      integer NOT NULL DEFAULT 0,
    ADD COLUMN used_ram_mib    integer NOT NULL DEFAULT 0,
    ADD COLUMN used_disk_gib   integer NOT NULL DEFAULT 0,
    ADD COLUMN claims          integer NOT NULL DEFAULT 0,
    ADD COLUMN updated_at      timestamptz;

CREATE TABLE host_claims (
    host         text NOT NULL,
    server_id    uuid NOT NULL,
    vcpus        integer NOT NULL,
    ram_mib      integer NOT NULL,
    disk_gib     integer NOT NULL,
    operation_id text,
    claimed_at   timestamptz NOT NULL,
    PRIMARY KEY (host, server_id)
);
CREATE INDEX host_claims_server ON host_claims (server_id);

-- +goose Down
DROP TABLE host_claims;
ALTER TABLE hosts
    DROP COLUMN address, DROP COLUMN hypervisor, DROP COLUMN cpu_model, DROP COLUMN cpu_features,
    DROP COLUMN traits, DROP COLUMN ratio_cpu, DROP COLUMN ratio_ram, DROP COLUMN ratio_disk,
    DROP COLUMN disabled, DROP COLUMN maintenance, DROP COLUMN status_reason, DROP COLUMN down,
    DROP COLUMN down_since, DROP COLUMN used_vcpus, DROP COLUMN used_ram_mib, DROP COLUMN used_disk_gib,
    DROP COLUMN claims, DROP COLUMN updated_at;
