# services.superset-async: Apache Superset with its asynchronous query stack (Redis, gunicorn,
# Celery worker and beat) as hardened systemd services.
#
# The options below are the NixOS face of the glue's settings (docs/settings.md): they are turned
# into one settings JSON (settings.nix), from which the glue renders superset_config.py at build
# time and starts every role (`superset-async exec ROLE`), so the module and the local runner run
# the very same command lines.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    literalExpression
    mkEnableOption
    mkOption
    types
    ;
  cfg = config.services.superset-async;
  settingsFormat = pkgs.formats.json { };

  # A secret is a path *string*: a Nix path literal would copy the secret into the world-readable store.
  secretFile = types.mkOptionType {
    name = "secretFile";
    description = "absolute path of a secret file, as a string (not a Nix path, which would copy the secret into the Nix store)";
    descriptionClass = "noun";
    check = x: builtins.isString x && lib.hasPrefix "/" x && !(lib.hasPrefix builtins.storeDir x);
    merge = lib.mergeEqualOption;
  };
  mkSecretOption =
    args:
    mkOption (
      {
        type = types.nullOr secretFile;
        default = null;
      }
      // args
    );
in
{
  imports = [
    ./settings.nix
    ./credentials.nix
    ./redis.nix
    ./units.nix
    ./assertions.nix
  ];

  options.services.superset-async = {
    enable = mkEnableOption "Apache Superset with its asynchronous query stack (Redis, gunicorn web, Celery worker and beat)";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ../../packages/superset-async.nix { };
      defaultText = literalExpression "the superset-async package of this flake (Superset 6.1 and the glue, from python/lock)";
      description = "Python environment providing `superset-async`, `superset`, `gunicorn` and `celery`.";
    };

    user = mkOption {
      type = types.str;
      default = "superset-async";
      description = "User the services run as (created when left at the default).";
    };

    group = mkOption {
      type = types.str;
      default = "superset-async";
      description = "Group the services run as (created when left at the default).";
    };

    stateDir = mkOption {
      type = types.strMatching "/var/lib/[^/].*";
      default = "/var/lib/superset-async";
      description = "SUPERSET_HOME: the SQLite metadata database, Celery beat's schedule and Superset's data.";
    };

    secretKeyFile = mkOption {
      type = secretFile;
      example = "/run/keys/superset-secret-key";
      description = ''
        File holding Superset's `SECRET_KEY` (e.g. `openssl rand -base64 42`). Keep it stable: it
        encrypts database passwords in the metadata database. Read through systemd's `LoadCredential`.
      '';
    };

    adminPasswordFile = mkSecretOption {
      example = "/run/keys/superset-admin-password";
      description = "Password of the admin user `superset-async-init` creates; null creates no admin.";
    };

    globalAsyncQueries = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "The `GLOBAL_ASYNC_QUERIES` feature: charts load through Celery and Redis streams (polling).";
      };
      jwtSecretFile = mkSecretOption {
        example = "/run/keys/superset-gaq-jwt";
        description = "`GLOBAL_ASYNC_QUERIES_JWT_SECRET`, at least 32 bytes. Required while the feature is on.";
      };
    };

    metadataDatabase = {
      uri = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "postgresql://superset@db.internal/superset";
        description = "SQLAlchemy URI of the metadata database, without password; null: SQLite in stateDir.";
      };
      passwordFile = mkSecretOption { description = "Password of the metadata database user."; };
    };

    redis = {
      createLocally = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Run a dedicated Redis (`services.redis.servers.superset-async`, unix socket, AOF on). When
          false, point `redis.host`/`redis.port` at an external Redis shared by every host of the stack.
        '';
      };
      host = mkOption {
        type = types.str;
        default = "127.0.0.1";
        description = "Redis TCP host. Superset's GLOBAL_ASYNC_QUERIES backend always connects over TCP.";
      };
      port = mkOption {
        type = types.port;
        default = 6390;
        description = "Redis TCP port (the local Redis listens on it, loopback only).";
      };
      passwordFile = mkSecretOption {
        example = "/run/keys/superset-redis";
        description = "Redis password (`requirepass` of the local Redis).";
      };
    };

    web = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Run the web server (gunicorn) on this host.";
      };
      listenAddress = mkOption {
        type = types.str;
        default = "127.0.0.1";
        description = "Address gunicorn binds to.";
      };
      port = mkOption {
        type = types.port;
        default = 8088;
        description = "Port gunicorn binds to.";
      };
      workers = mkOption {
        type = types.ints.positive;
        default = 2;
        description = "gunicorn worker processes.";
      };
      threads = mkOption {
        type = types.ints.positive;
        default = 4;
        description = "Threads per gunicorn worker (gthread).";
      };
      timeout = mkOption {
        type = types.ints.positive;
        default = 300;
        description = "gunicorn `--timeout` in seconds; at least the SQL Lab timeout.";
      };
      extraArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "--max-requests=1000" ];
        description = "Extra gunicorn arguments (<https://docs.gunicorn.org/en/stable/settings.html>).";
      };
    };

    worker = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Run a Celery worker on this host.";
      };
      externalPool = mkOption {
        type = types.bool;
        default = false;
        description = "Workers for this stack run on other hosts (lets async databases be declared without a local worker).";
      };
      concurrency = mkOption {
        type = types.ints.positive;
        default = 4;
        description = "Celery worker processes (`-c`).";
      };
      pool = mkOption {
        type = types.enum [ "prefork" ];
        default = "prefork";
        description = "Celery pool; only prefork enforces the SQL Lab time limit.";
      };
      queues = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "Queues to consume (`--queues`); empty: Celery's default queue.";
      };
      maxTasksPerChild = mkOption {
        type = types.nullOr types.ints.positive;
        default = null;
        description = "Recycle a worker process after this many tasks (`--max-tasks-per-child`).";
      };
      extraArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "Extra `celery worker` arguments (<https://docs.celeryq.dev/en/stable/reference/cli.html>).";
      };
    };

    beat.enable = mkOption {
      type = types.bool;
      # With an external Redis the stack may span hosts, and two beats would send every periodic
      # task twice: beat then runs only where it is enabled explicitly, on exactly one host.
      default = cfg.redis.createLocally;
      defaultText = literalExpression "config.services.superset-async.redis.createLocally";
      description = ''
        Run Celery beat here (reports every minute, log pruning daily). Exactly one host of a stack must.
        On by default only with a local Redis (a single-host stack); with an external Redis (hosts
        sharing one broker) enable it on exactly one host.
      '';
    };

    init.enable = mkOption {
      type = types.bool;
      default = cfg.web.enable;
      defaultText = literalExpression "config.services.superset-async.web.enable";
      description = "Run `superset-async-init` (migrations, admin, `superset init`, databases) before the other roles.";
    };

    databases = mkOption {
      default = { };
      description = "Databases to register in Superset, by `database_name`.";
      example = literalExpression ''
        {
          "ClickHouse" = {
            uri = "clickhousedb://superset@127.0.0.1:8123/default";
            passwordFile = "/run/keys/clickhouse-superset";
          };
        }
      '';
      type = types.attrsOf (
        types.submodule {
          options = {
            uri = mkOption {
              type = types.str;
              description = "SQLAlchemy URI without password.";
            };
            passwordFile = mkSecretOption { description = "Password of the database user."; };
            allowRunAsync = mkOption {
              type = types.bool;
              default = true;
              description = "`allow_run_async`: SQL Lab runs its queries on the Celery workers.";
            };
            exposeInSqlLab = mkOption {
              type = types.bool;
              default = true;
              description = "`expose_in_sqllab`.";
            };
            allowDml = mkOption {
              type = types.bool;
              default = false;
              description = "`allow_dml`: INSERT/UPDATE/DELETE from SQL Lab.";
            };
            extra = mkOption {
              type = settingsFormat.type;
              default = { };
              description = "Superset's database `extra` JSON.";
            };
          };
        }
      );
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open `web.port` in the firewall.";
    };

    settings = mkOption {
      type = types.submodule { freeformType = settingsFormat.type; };
      default = { };
      example = literalExpression ''
        {
          sql_lab.timeout_seconds = 120;
          feature_flags.ALERT_REPORTS = true;
          celery.worker_prefetch_multiplier = 1;
        }
      '';
      description = ''
        The glue's settings (docs/settings.md), merged over what the options above produce. Upstream
        key names are kept where they exist. Never put secrets here: the file lands in the Nix store;
        use the `*File` options.
      '';
    };
  };
}
