# The options -> one settings JSON -> superset_config.py rendered by the glue at build time.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib) mkOption types;
  cfg = config.services.superset-async;
  settingsFormat = pkgs.formats.json { };
  dropNulls = lib.filterAttrs (_: v: v != null);

  derived = {
    state_dir = cfg.stateDir;
    secret_key_file = cfg.secretKeyFile;
    metadata_db = dropNulls {
      inherit (cfg.metadataDatabase) uri;
      password_file = cfg.metadataDatabase.passwordFile;
    };
    redis = dropNulls {
      inherit (cfg.redis) host port;
      unix_socket = if cfg.redis.createLocally then config.services.redis.servers.superset-async.unixSocket else null;
      password_file = cfg.redis.passwordFile;
    };
    global_async_queries = dropNulls {
      enabled = cfg.globalAsyncQueries.enable;
      jwt_secret_file = cfg.globalAsyncQueries.jwtSecretFile;
    };
    admin = dropNulls { password_file = cfg.adminPasswordFile; };
    databases = lib.mapAttrsToList (
      name: db:
      dropNulls {
        inherit name;
        inherit (db) uri extra;
        password_file = db.passwordFile;
        allow_run_async = db.allowRunAsync;
        expose_in_sqllab = db.exposeInSqlLab;
        allow_dml = db.allowDml;
      }
    ) cfg.databases;
    web = {
      bind = cfg.web.listenAddress;
      inherit (cfg.web) port workers threads;
      timeout_seconds = cfg.web.timeout;
      extra_args = cfg.web.extraArgs;
    };
    worker = dropNulls {
      inherit (cfg.worker) pool concurrency queues;
      max_tasks_per_child = cfg.worker.maxTasksPerChild;
      extra_args = cfg.worker.extraArgs;
    };
    beat.enabled = cfg.beat.enable;
  };

  # What the glue's defaults are for the keys the module reads back (keep in sync with
  # python/superset_async_glue/settings.py; the unit replay test renders both and compares).
  glueDefaults = {
    redis.dbs = {
      broker = 0;
      results = 1;
      cache = 2;
      data_cache = 3;
      async_events = 4;
    };
    sql_lab = {
      timeout_seconds = 300;
      async_time_limit_seconds = 300;
      hard_time_limit_grace_seconds = 60;
    };
  };
in
{
  options.services.superset-async = {
    finalSettings = mkOption {
      type = settingsFormat.type;
      readOnly = true;
      description = "The settings the glue receives: the options above with `settings` merged over them.";
    };
    effectiveSettings = mkOption {
      type = settingsFormat.type;
      readOnly = true;
      internal = true;
      description = "finalSettings with the glue's defaults for the keys this module reads (assertions, units).";
    };
    settingsFile = mkOption {
      type = types.path;
      readOnly = true;
      description = "finalSettings as JSON in the store (also /etc/superset-async/settings.json).";
    };
    configFile = mkOption {
      type = types.path;
      readOnly = true;
      description = "superset_config.py rendered from settingsFile (also /etc/superset-async/superset_config.py).";
    };
  };

  config = lib.mkIf cfg.enable {
    services.superset-async = {
      finalSettings = lib.recursiveUpdate derived cfg.settings;
      effectiveSettings = lib.recursiveUpdate glueDefaults cfg.finalSettings;
      settingsFile = settingsFormat.generate "superset-async-settings.json" cfg.finalSettings;
      # Same bytes as `superset-async render` on the same settings; no secret enters the store.
      configFile =
        pkgs.runCommand "superset_config.py"
          {
            nativeBuildInputs = [ cfg.package ];
            preferLocalBuild = true;
          }
          ''
            superset-async render --settings ${cfg.settingsFile} --output $out
          '';
    };

    # `superset-async-verify` checks this host's stack from these two files (docs/verify.md).
    environment.systemPackages = [
      (pkgs.writeShellScriptBin "superset-async-verify" ''
        exec ${cfg.package}/bin/superset-async verify --settings /etc/superset-async/settings.json \
          --config /etc/superset-async/superset_config.py "$@"
      '')
    ];
    environment.etc."superset-async/settings.json".source = cfg.settingsFile;
    environment.etc."superset-async/superset_config.py".source = cfg.configFile;

    system.build.supersetAsync = {
      inherit (cfg) settingsFile configFile package;
    };
  };
}
