# The options of the first release, before everything the glue reads moved into `settings` under
# the glue's own keys: they keep working, with a warning naming the new option.
{
  config,
  lib,
  options,
  ...
}:

let
  inherit (lib) mkOption types;
  cfg = config.services.superset-async;
  rename =
    from: to:
    lib.mkRenamedOptionModule ([ "services" "superset-async" ] ++ from) (
      [ "services" "superset-async" "settings" ] ++ to
    );
  # old option -> glue key; keep in step with the table in docs/nixos.md ("Renamed options").
  renamed = {
    "stateDir" = "state_dir";
    "secretKeyFile" = "secret_key_file";
    "adminPasswordFile" = "admin.password_file";
    "globalAsyncQueries.enable" = "global_async_queries.enabled";
    "globalAsyncQueries.jwtSecretFile" = "global_async_queries.jwt_secret_file";
    "metadataDatabase.uri" = "metadata_db.uri";
    "metadataDatabase.passwordFile" = "metadata_db.password_file";
    "redis.host" = "redis.host";
    "redis.port" = "redis.port";
    "redis.passwordFile" = "redis.password_file";
    "web.listenAddress" = "web.bind";
    "web.port" = "web.port";
    "web.workers" = "web.workers";
    "web.threads" = "web.threads";
    "web.timeout" = "web.timeout_seconds";
    "web.extraArgs" = "web.extra_args";
    "worker.concurrency" = "worker.concurrency";
    "worker.pool" = "worker.pool";
    "worker.queues" = "worker.queues";
    "worker.maxTasksPerChild" = "worker.max_tasks_per_child";
    "worker.extraArgs" = "worker.extra_args";
  };
  # databases.<name>.* sit inside an attribute set of submodules, which mkRenamedOptionModule
  # cannot reach: the old option stays, hidden, and its definitions move to settings.databases.
  dbKeys = {
    passwordFile = "password_file";
    allowRunAsync = "allow_run_async";
    exposeInSqlLab = "expose_in_sqllab";
    allowDml = "allow_dml";
  };
  optional =
    type:
    mkOption {
      type = types.nullOr type;
      default = null;
    };
in
{
  imports = lib.mapAttrsToList (from: to: rename (lib.splitString "." from) (lib.splitString "." to)) renamed;

  options.services.superset-async.databases = mkOption {
    visible = false;
    default = { };
    description = "Alias of {option}`services.superset-async.settings.databases` with the old camelCase keys.";
    type = types.attrsOf (
      types.submodule {
        options = {
          uri = optional types.str;
          passwordFile = optional types.str;
          allowRunAsync = optional types.bool;
          exposeInSqlLab = optional types.bool;
          allowDml = optional types.bool;
          extra = optional (types.attrsOf types.anything);
        };
      }
    );
  };

  config = lib.mkIf (cfg.databases != { }) {
    warnings = [
      "The option `services.superset-async.databases' defined in ${lib.showFiles options.services.superset-async.databases.files} has been renamed to `services.superset-async.settings.databases' (keys: ${
        lib.concatStringsSep ", " (lib.mapAttrsToList (old: new: "${old} -> ${new}") dbKeys)
      })."
    ];
    services.superset-async.settings.databases = lib.mapAttrs (
      _: db:
      lib.filterAttrs (_: v: v != null) (
        {
          inherit (db) uri extra;
        }
        // lib.mapAttrs' (old: new: lib.nameValuePair new db.${old}) dbKeys
      )
    ) cfg.databases;
  };
}
