# metadataDatabase.createLocally: Superset's metadata DB in this host's PostgreSQL
# (services.postgresql), reached over its unix socket with peer authentication -- the database and
# its owner are named after the service user, so no password exists at all. Also: pg_dump on the
# init unit's PATH whenever the metadata DB is PostgreSQL (bootstrap dumps it before migrations,
# python/superset_async_glue/bootstrap/backups.py).
{
  config,
  lib,
  ...
}:

let
  cfg = config.services.superset-async;
  md = cfg.settings.metadata_db;
  # SQLAlchemy URI; libpq reads `host=<directory>` as the socket's directory (peer auth, no password).
  localUri = "postgresql+psycopg2:///${cfg.user}?host=/run/postgresql";
  isPostgresql = md.uri != null && lib.hasPrefix "postgres" md.uri;
  # Every unit of ours that opens the metadata DB; on current NixOS the ensured users and databases
  # exist only once postgresql-setup.service ran (older releases did it in postgresql's postStart).
  ours =
    lib.attrNames (
      lib.filterAttrs (_: on: on) {
        superset-async-init = cfg.init.enable;
        superset-async-web = cfg.web.enable;
        superset-async-beat = cfg.beat.enable;
      }
    )
    ++ cfg.workerUnits; # the worker and its SQL Lab lanes' (units.nix)
  opt = "services.superset-async";
  isSqlite = md.uri == null || lib.hasPrefix "sqlite" md.uri;
  # The SQLite file lives in this host's state_dir: only this host's roles can open it.
  otherHostsShareIt = cfg.worker.externalPool || (!cfg.init.enable && (cfg.worker.enable || cfg.beat.enable));
  pgUnits = [ "postgresql.service" ] ++ lib.optional (config.systemd.services ? postgresql-setup) "postgresql-setup.service";
in
{
  options.services.superset-async.metadataDatabase.createLocally = lib.mkOption {
    type = lib.types.bool;
    default = false;
    description = ''
      Keep Superset's metadata DB in this host's PostgreSQL (`services.postgresql`): a database and
      a role named after `user`, the database owned by it (`ensureDatabases`/`ensureUsers`), reached
      over the socket in /run/postgresql with peer authentication (no password).
      `settings.metadata_db.uri` defaults to `${localUri}`, and every unit
      orders after `postgresql.service` (and `postgresql-setup.service`). Other hosts cannot use it
      this way (peer authentication is local): a stack spanning hosts points `settings.metadata_db`
      at a PostgreSQL reachable over TCP with a password. Off: SQLite in `settings.state_dir`, the
      single-host default.
    '';
  };

  config = lib.mkIf cfg.enable (lib.mkMerge [
    {
      assertions = [
        {
          assertion = !(isSqlite && otherHostsShareIt);
          message = ''
            ${opt}.settings.metadata_db.uri is ${if md.uri == null then "unset (SQLite in settings.state_dir)" else md.uri}, but the
            stack spans hosts (${
              if cfg.worker.externalPool then
                "${opt}.worker.externalPool = true: workers on other hosts"
              else
                "${opt}.init.enable = false with a worker or beat here: web and init on another host"
            }): a SQLite file in one host's state_dir cannot be shared. Point settings.metadata_db.uri (and
            password_file) of every host at one PostgreSQL reachable over TCP.'';
        }
        {
          # The glue's metadata_db.local_postgresql is the runner's own server (superset-async up).
          assertion = !(md.local_postgresql or false);
          message = "${opt}.settings.metadata_db.local_postgresql is for `superset-async up` only (the runner starts a PostgreSQL of its own); on NixOS set ${opt}.metadataDatabase.createLocally = true instead.";
        }
        {
          assertion = !cfg.metadataDatabase.createLocally || (md.uri == localUri && md.password_file == null);
          message = "${opt}.metadataDatabase.createLocally reaches this host's PostgreSQL over its socket with peer authentication: leave settings.metadata_db.uri at ${localUri} (it is ${toString md.uri}) and settings.metadata_db.password_file unset, or set createLocally = false to use another metadata DB.";
        }
      ];
    }
    (lib.mkIf cfg.metadataDatabase.createLocally {
      services.postgresql = {
        enable = true;
        ensureDatabases = [ cfg.user ];
        ensureUsers = [
          {
            name = cfg.user;
            ensureDBOwnership = true;
          }
        ];
      };
      services.superset-async.settings.metadata_db.uri = lib.mkDefault localUri;
      systemd.services = lib.genAttrs ours (_: {
        after = pgUnits;
        # Wants=, as for Redis (units.nix): restarting PostgreSQL must not stop the roles; they
        # reconnect, and verify names what is missing meanwhile.
        wants = pgUnits;
      });
    })
    (lib.mkIf (isPostgresql && cfg.init.enable && md.backups_kept > 0) {
      systemd.services.superset-async-init.path = [ config.services.postgresql.package ];
    })
  ]);
}
