# Configurations that cannot work are refused at evaluation time, with the options to change.
# The first one is the failure this project exists to end: "Failed to start remote query on a worker."
{
  config,
  lib,
  ...
}:

let
  cfg = config.services.superset-async;
  s = cfg.effectiveSettings;
  opt = "services.superset-async";

  asyncDatabases = lib.filter (db: db.allow_run_async or true) (s.databases or [ ]);
  dbs = s.redis.dbs;
  roleNames = lib.attrNames dbs;
  sharedDbs = lib.filter (db: lib.length (lib.filter (r: dbs.${r} == db) roleNames) > 1) (lib.unique (lib.attrValues dbs));
  rolesOn = db: lib.concatStringsSep ", " (lib.filter (r: dbs.${r} == db) roleNames);

  # Keys that would put a secret into the world-readable Nix store (settings.py: INLINE_SECRET_KEYS).
  inlineSecretKeys = [
    "secret_key"
    "password"
    "jwt_secret"
    "gaq_jwt_secret"
  ];
  findInlineSecrets =
    path: value:
    if builtins.isAttrs value then
      lib.concatLists (
        lib.mapAttrsToList (
          k: v: (lib.optional (lib.elem k inlineSecretKeys) (path ++ [ k ])) ++ findInlineSecrets (path ++ [ k ]) v
        ) value
      )
    else if builtins.isList value then
      lib.concatLists (lib.imap0 (i: v: findInlineSecrets (path ++ [ "[${toString i}]" ]) v) value)
    else
      [ ];
  # Everything the settings file carries (options and freeform settings, databases' `extra` included).
  inlineSecrets = findInlineSecrets [ ] cfg.finalSettings;
  # A secret file given as a store path (e.g. "${./f}" in freeform settings) is already world-readable.
  storeSecretFiles = lib.filterAttrs (_: path: lib.hasPrefix builtins.storeDir (toString path)) cfg.credentials;
  # The escape hatch is Python in the store: an assignment of a literal to a secret-looking name.
  secretInExtraConfig =
    builtins.match ''(.*[^A-Za-z0-9_])?[A-Za-z0-9_]*(PASSWORD|SECRET|TOKEN|password|secret|token)[A-Za-z0-9_]*[ ]*=[ ]*[rbuRBU]?["'][^"']+["'].*'' (
      lib.replaceStrings [ "\n" "\t" ] [ " " " " ] (s.extra_config or "")
    ) != null;

  hasPassword = uri: builtins.match "[a-z][a-z0-9+.-]*://[^/@]*:[^/@]*@.*" uri != null;
in
{
  config = lib.mkIf cfg.enable {
    assertions =
      [
        {
          assertion = asyncDatabases == [ ] || cfg.worker.enable || cfg.worker.externalPool;
          message = ''
            ${opt}.databases: ${lib.concatMapStringsSep ", " (db: "\"${db.name}\"") asyncDatabases} set allowRunAsync = true, but
            this host runs no Celery worker (${opt}.worker.enable = false) and no external worker pool is declared
            (${opt}.worker.externalPool = false). SQL Lab would hand every query to nobody ("Failed to start remote
            query on a worker." or queries pending forever). Enable the worker, declare the external pool, or set
            allowRunAsync = false.'';
        }
        {
          assertion = !cfg.globalAsyncQueries.enable || cfg.globalAsyncQueries.jwtSecretFile != null;
          message = ''
            ${opt}.globalAsyncQueries.jwtSecretFile must be set while ${opt}.globalAsyncQueries.enable is true:
            GLOBAL_ASYNC_QUERIES signs its tokens with it (at least 32 bytes, e.g. `openssl rand -base64 48`).
            Or set ${opt}.globalAsyncQueries.enable = false.'';
        }
        {
          assertion = sharedDbs == [ ];
          message = "${opt}.settings.redis.dbs: ${
            lib.concatMapStringsSep "; " (db: "roles ${rolesOn db} share Redis DB ${toString db}") sharedDbs
          }; give each role its own DB (defaults: broker 0, results 1, cache 2, data_cache 3, async_events 4).";
        }
        {
          assertion = s.sql_lab.async_time_limit_seconds >= s.sql_lab.timeout_seconds;
          message = "${opt}.settings.sql_lab.async_time_limit_seconds (${toString s.sql_lab.async_time_limit_seconds}) is shorter than sql_lab.timeout_seconds (${toString s.sql_lab.timeout_seconds}): an async query would get less time than a synchronous one.";
        }
        {
          assertion = s.web.timeout_seconds >= s.sql_lab.timeout_seconds;
          message = "${opt}.web.timeout (${toString s.web.timeout_seconds}) is shorter than ${opt}.settings.sql_lab.timeout_seconds (${toString s.sql_lab.timeout_seconds}): gunicorn would kill synchronous SQL Lab queries first.";
        }
        {
          assertion = inlineSecrets == [ ];
          message = "${opt}.settings: ${
            lib.concatMapStringsSep ", " (lib.concatStringsSep ".") inlineSecrets
          } would write a secret into the world-readable Nix store; put it in a file and use the matching *File option (secretKeyFile, redis.passwordFile, globalAsyncQueries.jwtSecretFile, adminPasswordFile, databases.<name>.passwordFile).";
        }
        {
          assertion = storeSecretFiles == { };
          message = "${opt}: ${
            lib.concatStringsSep ", " (lib.mapAttrsToList (name: path: "${name} (${path})") storeSecretFiles)
          }: a secret file in the Nix store is readable by every user of the host; give a path outside the store (a string, not a Nix path), e.g. /run/keys/...";
        }
        {
          assertion = !secretInExtraConfig;
          message = "${opt}.settings.extra_config assigns a literal to a secret-looking name (PASSWORD/SECRET/TOKEN); the escape hatch is written to the world-readable Nix store. Read the secret from a file at import instead, e.g. open(os.path.join(os.environ[\"CREDENTIALS_DIRECTORY\"], NAME)).read().";
        }
        {
          assertion = cfg.metadataDatabase.uri == null || !hasPassword cfg.metadataDatabase.uri;
          message = "${opt}.metadataDatabase.uri carries a password, which would land in the Nix store; remove it and set ${opt}.metadataDatabase.passwordFile.";
        }
        {
          assertion = cfg.web.enable || cfg.worker.enable || cfg.beat.enable;
          message = "${opt}: web, worker and beat are all disabled; enable at least one role on this host.";
        }
      ]
      ++ lib.mapAttrsToList (name: db: {
        assertion = !hasPassword db.uri;
        message = "${opt}.databases.\"${name}\".uri carries a password, which would land in the Nix store; remove it and set ${opt}.databases.\"${name}\".passwordFile.";
      }) cfg.databases;

    warnings =
      lib.optional (cfg.openFirewall && lib.elem s.web.bind [ "127.0.0.1" "::1" "localhost" ])
        "${opt}.openFirewall is set but the web server listens on ${s.web.bind} only; set ${opt}.web.listenAddress."
      ++ lib.optional (cfg.redis.createLocally && cfg.redis.passwordFile == null)
        "${opt}.redis.passwordFile is null: the local Redis accepts any local user on 127.0.0.1:${toString cfg.redis.port}, and it holds SQL Lab results."
      ++ lib.optional (cfg.init.enable && cfg.adminPasswordFile == null)
        "${opt}.adminPasswordFile is null: superset-async-init creates no admin user.";
  };
}
