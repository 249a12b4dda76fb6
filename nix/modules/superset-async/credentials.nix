# Secrets reach the services through systemd's LoadCredential=: the file is read by systemd (as
# root) and handed to the unit under $CREDENTIALS_DIRECTORY/<name>, where the rendered
# superset_config.py looks first. The names are the glue's secret_files(), taken from contract.json.
{
  config,
  lib,
  ...
}:

let
  inherit (lib) mkOption types;
  cfg = config.services.superset-async;
  s = cfg.finalSettings;
  rules = (lib.importJSON ./contract.json).credentials;
  get = key: lib.attrByPath (lib.splitString "." key) null s;

  # credential_slug() of the glue: runs of separators become "_", trimmed, lower case.
  slug =
    name:
    lib.toLower (
      lib.concatStringsSep "_" (
        lib.filter (p: builtins.isString p && p != "") (builtins.split rules.slug.separators name)
      )
    );

  fixed = lib.mapAttrs (_: rule: if rule ? only_if && get rule.only_if == false then null else get rule.setting) rules.fixed;
  databases = lib.listToAttrs (
    map (
      db: lib.nameValuePair (lib.replaceStrings [ "{slug}" ] [ (slug db.name) ] rules.database.template) (db.${rules.database.setting} or null)
    ) s.databases
  );
  secretFiles = lib.mapAttrs' (
    key: lib.nameValuePair (lib.replaceStrings [ "{key}" ] [ (lib.toLower key) ] rules.secret_files.template)
  ) (s.secret_files or { });
in
{
  options.services.superset-async = {
    credentials = mkOption {
      type = types.attrsOf types.str;
      readOnly = true;
      description = "Credential name -> secret file, as passed to LoadCredential= of every unit.";
    };
    credentialSlug = mkOption {
      type = types.functionTo types.str;
      readOnly = true;
      internal = true;
      description = "The glue's credential_slug(), for tests of the contract's examples.";
    };
  };

  config = lib.mkIf cfg.enable {
    services.superset-async = {
      credentials = lib.filterAttrs (_: path: path != null) (fixed // databases // secretFiles);
      credentialSlug = slug;
    };
  };
}
