# What only the module can judge, refused at evaluation time with the options to change: roles on
# this host, its own Redis, and secrets that would land in the world-readable Nix store. Ranges and
# cross-checks of the settings are the glue's: it validates the final settings when the system is
# built (settings.nix), with messages naming the key.
{
  config,
  lib,
  ...
}:

let
  cfg = config.services.superset-async;
  s = cfg.settings;
  r = s.redis;
  opt = "services.superset-async";
  contract = lib.importJSON ./contract.json;
  showPath = lib.concatStringsSep ".";

  asyncDatabases = lib.attrNames (lib.filterAttrs (_: db: db.allow_run_async) s.databases);

  # Every value at a dotted key of the contract ("databases[].password_file", "secret_files.*"),
  # with its path; `settings.databases` is keyed by name here, so "[]" walks an attribute set too.
  valuesAt =
    path: parts: value:
    if parts == [ ] then
      [ { inherit path value; } ]
    else
      let
        part = lib.head parts;
        rest = lib.tail parts;
        children = v: if builtins.isAttrs v then lib.mapAttrsToList (n: c: { name = n; value = c; }) v else lib.imap0 (i: c: { name = "[${toString i}]"; value = c; }) v;
        each = v: lib.concatMap (c: valuesAt (path ++ [ c.name ]) rest c.value) (children v);
      in
      if part == "*" then
        each value
      else if lib.hasSuffix "[]" part then
        let
          name = lib.removeSuffix "[]" part;
        in
        if builtins.isAttrs value && value ? ${name} && (builtins.isAttrs value.${name} || builtins.isList value.${name}) then
          each value.${name}
        else
          [ ]
      else if builtins.isAttrs value && value ? ${part} then
        valuesAt (path ++ [ part ]) rest value.${part}
      else
        [ ];
  # A secret file in the store (e.g. "${./f}") is readable by every user of the host.
  storeSecretFiles = lib.filter (f: builtins.isString f.value && lib.hasPrefix builtins.storeDir f.value) (
    lib.concatMap (key: valuesAt [ ] (lib.splitString "." key) s) contract.secret_file_keys
  );

  # A key that names a secret (…password…, …secret…, …token…, …key) holding a literal string:
  # the settings are written to the store. `*_file` keys and `secret_files` hold paths.
  secretLooking =
    name:
    let
      n = lib.toLower name;
    in
    !(lib.hasSuffix "_file" n)
    && (
      builtins.match ".*(password|passwd|secret|token).*" n != null
      || builtins.match "(.*[^a-z])?(api|private|access|secret)?key" n != null
    );
  findInlineSecrets =
    path: value:
    if builtins.isAttrs value then
      lib.concatLists (
        lib.mapAttrsToList (
          k: v:
          if path == [ ] && k == "secret_files" then
            [ ]
          else
            lib.optional (secretLooking k && builtins.isString v && v != "") (path ++ [ k ]) ++ findInlineSecrets (path ++ [ k ]) v
        ) value
      )
    else if builtins.isList value then
      lib.concatLists (lib.imap0 (i: v: findInlineSecrets (path ++ [ "[${toString i}]" ]) v) value)
    else
      [ ];
  inlineSecrets = findInlineSecrets [ ] s;
  # The escape hatch is Python in the store: an assignment of a literal to a secret-looking name.
  secretInExtraConfig =
    builtins.match ''(.*[^A-Za-z0-9_])?([A-Za-z0-9_]*(PASSWORD|PASSWD|SECRET|TOKEN|password|passwd|secret|token)[A-Za-z0-9_]*|[A-Za-z0-9_]*(KEY|key))[ ]*=[ ]*[rbufRBUF]?["'][^"']+["'].*'' (
      lib.replaceStrings [ "\n" "\t" ] [ " " " " ] s.extra_config
    ) != null;

  hasPassword = uri: builtins.isString uri && builtins.match "[a-z][a-z0-9+.-]*://[^/@]*:[^/@]*@.*" uri != null;
  loopback = [
    "127.0.0.1"
    "::1"
    "localhost"
  ];
  secretFileKey = builtins.replaceStrings [ "^" "$" ] [ "" "" ] contract.credentials.secret_files.key_pattern;
  badSecretFileKeys = lib.filter (k: builtins.match secretFileKey k == null) (lib.attrNames s.secret_files);
in
{
  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = asyncDatabases == [ ] || cfg.worker.enable || cfg.worker.externalPool;
        message = ''
          ${opt}.settings.databases: ${lib.concatMapStringsSep ", " (n: "\"${n}\"") asyncDatabases} set allow_run_async = true, but
          this host runs no Celery worker (${opt}.worker.enable = false) and no external worker pool is declared
          (${opt}.worker.externalPool = false). SQL Lab would hand every query to nobody ("Failed to start remote
          query on a worker." or queries pending forever). Enable the worker, declare the external pool, or set
          allow_run_async = false.'';
      }
      {
        assertion = r.password_file != null || cfg.redis.socketOnly;
        message = ''
          ${opt}.settings.redis.password_file is null. Redis holds pickles (SQL Lab results, caches) that Superset
          loads, so whoever can write to Redis runs code as the service user: a password is required. Give a file
          (e.g. `openssl rand -base64 48 > /run/keys/superset-redis`). The one exception is the module's own Redis
          reached only through its unix socket (mode 0660, group redis-superset-async, which only the services
          join): ${opt}.redis.createLocally = true, settings.redis.unix_socket set (the default) and
          settings.global_async_queries.enabled = false (its backend can only use TCP); that Redis then opens no
          TCP port.'';
      }
      {
        assertion = inlineSecrets == [ ];
        message = "${opt}.settings: ${
          lib.concatMapStringsSep ", " showPath inlineSecrets
        } would write a secret into the world-readable Nix store; put it in a file and give its path instead (a *_file key, or settings.secret_files.<SUPERSET_KEY> for any other Superset setting).";
      }
      {
        assertion = storeSecretFiles == [ ];
        message = "${opt}.settings: ${
          lib.concatMapStringsSep ", " (f: "${showPath f.path} (${f.value})") storeSecretFiles
        }: a secret file in the Nix store is readable by every user of the host; give a path outside the store (a string, not a Nix path), e.g. /run/keys/...";
      }
      {
        assertion = !secretInExtraConfig;
        message = "${opt}.settings.extra_config assigns a literal to a secret-looking name (PASSWORD/SECRET/TOKEN/…KEY); the escape hatch is written to the world-readable Nix store. Use settings.secret_files.<NAME> = \"/run/keys/...\" instead (the rendered config reads it from $CREDENTIALS_DIRECTORY).";
      }
      {
        assertion = badSecretFileKeys == [ ];
        message = "${opt}.settings.secret_files: ${lib.concatStringsSep ", " badSecretFileKeys} is not a Superset config key (expected ${contract.credentials.secret_files.key_pattern}, e.g. MAPBOX_API_KEY).";
      }
      {
        assertion = !hasPassword s.metadata_db.uri;
        message = "${opt}.settings.metadata_db.uri carries a password, which would land in the Nix store; remove it and set ${opt}.settings.metadata_db.password_file.";
      }
      {
        assertion = cfg.web.enable || cfg.worker.enable || cfg.beat.enable;
        message = "${opt}: web, worker and beat are all disabled; enable at least one role on this host.";
      }
      {
        assertion = !cfg.redis.createLocally || lib.elem r.host loopback;
        message = "${opt}.settings.redis.host is ${r.host}, but the module's own Redis (${opt}.redis.createLocally) listens on loopback only; use 127.0.0.1, or run a Redis of your own and set createLocally = false.";
      }
      {
        assertion = !cfg.redis.createLocally || r.unix_socket == null || lib.hasPrefix "/run/redis-superset-async/" r.unix_socket;
        message = "${opt}.settings.redis.unix_socket is ${toString r.unix_socket}, but the module's own Redis can only create its socket in its runtime directory /run/redis-superset-async/ (default: /run/redis-superset-async/redis.sock).";
      }
      {
        assertion = !cfg.redis.createLocally || (r.sentinel or null) == null;
        message = "${opt}.settings.redis.sentinel is set, but ${opt}.redis.createLocally runs one Redis of its own, without replicas or Sentinels; set ${opt}.redis.createLocally = false and list your Sentinels in settings.redis.sentinel.sentinels (docs/production.md).";
      }
      {
        assertion = !cfg.redis.createLocally || (r.username or null == null && !(r.tls.enabled or false));
        message = "${opt}.settings.redis: the module's own Redis (${opt}.redis.createLocally) has no ACL users and no TLS; remove redis.username and redis.tls, or run a Redis of your own and set createLocally = false.";
      }
    ]
    ++ lib.mapAttrsToList (name: db: {
      assertion = !hasPassword db.uri;
      message = "${opt}.settings.databases.\"${name}\".uri carries a password, which would land in the Nix store; remove it and set ${opt}.settings.databases.\"${name}\".password_file.";
    }) s.databases;

    warnings =
      lib.optional (cfg.openFirewall && cfg.web.enable && !cfg.nginx.enable && lib.elem s.web.bind loopback)
        "${opt}.openFirewall is set but the web server listens on ${s.web.bind} only; set ${opt}.settings.web.bind."
      ++ lib.optional (cfg.init.enable && s.admin.password_file == null)
        "${opt}.settings.admin.password_file is null: superset-async-init creates no admin user.";
  };
}
