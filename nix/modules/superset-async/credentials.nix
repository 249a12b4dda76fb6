# Secrets reach the services through systemd's LoadCredential=: the file is read by systemd (as
# root) and handed to the unit under $CREDENTIALS_DIRECTORY/<name>, where the rendered
# superset_config.py looks first. Names must match secret_files() in
# python/superset_async_glue/settings.py (the unit replay test compares them).
{
  config,
  lib,
  ...
}:

let
  inherit (lib) mkOption types;
  cfg = config.services.superset-async;
  s = cfg.finalSettings;
  get = path: lib.attrByPath path null s;

  # credential_slug() in settings.py: runs of other characters become "_", trimmed, lower case.
  slug =
    name:
    let
      parts = builtins.filter builtins.isString (builtins.split "[^A-Za-z0-9]+" name);
    in
    lib.toLower (lib.concatStringsSep "_" (builtins.filter (p: p != "") parts));

  candidates = {
    secret_key = get [ "secret_key_file" ];
    metadata_db_password = get [ "metadata_db" "password_file" ];
    redis_password = get [ "redis" "password_file" ];
    redis_tls_key = get [ "redis" "tls" "key_file" ];
    gaq_jwt_secret =
      if get [ "global_async_queries" "enabled" ] == false then null else get [ "global_async_queries" "jwt_secret_file" ];
    admin_password = get [ "admin" "password_file" ];
  }
  // lib.listToAttrs (
    map (db: lib.nameValuePair "database_${slug db.name}_password" (db.password_file or null)) (s.databases or [ ])
  );
in
{
  options.services.superset-async.credentials = mkOption {
    type = types.attrsOf types.str;
    readOnly = true;
    description = "Credential name -> secret file, as passed to LoadCredential= of every unit.";
  };

  config = lib.mkIf cfg.enable {
    services.superset-async.credentials = lib.filterAttrs (_: path: path != null) candidates;
  };
}
