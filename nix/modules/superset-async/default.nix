# services.superset-async: Apache Superset with its asynchronous query stack (Redis, gunicorn,
# Celery worker and beat) as hardened systemd services.
#
# One settings surface, RFC 42 style: `settings` holds the glue's settings (docs/settings.md) under
# their own snake_case keys; the keys this module reads itself are typed options inside it, the
# rest passes through its freeform type. Types, defaults and descriptions of those keys come from
# contract.json, generated from the glue's pydantic models (python/superset_async_glue/contract.py),
# so the module holds no copy of the glue's rules. Only NixOS concepts live at the top level.
# From the settings the glue renders superset_config.py at build time and starts every role
# (`superset-async exec ROLE`), so the module and the local runner run the very same command lines.
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
  contract = lib.importJSON ./contract.json;
  localSocket = "/run/redis-superset-async/redis.sock";

  # A secret is a path *string*: a Nix path literal would copy the secret into the world-readable store.
  secretFile = types.mkOptionType {
    name = "secretFile";
    description = "absolute path of a secret file, as a string (not a Nix path, which would copy the secret into the Nix store)";
    descriptionClass = "noun";
    check = x: builtins.isString x && lib.hasPrefix "/" x && !(lib.hasPrefix builtins.storeDir x);
    merge = lib.mergeEqualOption;
  };

  # The option type of a glue key, from its JSON schema in the contract (ranges, enums, null).
  typeOf =
    entry:
    let
      lo =
        if entry ? minimum then
          entry.minimum
        else if entry ? exclusiveMinimum then
          entry.exclusiveMinimum + 1
        else
          null;
      hi =
        if entry ? maximum then
          entry.maximum
        else if entry ? exclusiveMaximum then
          entry.exclusiveMaximum - 1
        else
          null;
      int =
        if lo != null && hi != null then
          types.ints.between lo hi
        else if lo == 1 then
          types.ints.positive
        else if lo == 0 then
          types.ints.unsigned
        else
          types.int;
      base =
        if entry.secret_file or false then
          secretFile
        else if entry ? enum then
          types.enum entry.enum
        else if entry ? const then
          types.enum [ entry.const ]
        else
          {
            integer = int;
            boolean = types.bool;
            string = types.str;
            array = types.listOf (if (entry.items.type or null) == "string" then types.str else settingsFormat.type);
            object = settingsFormat.type;
          }
          .${entry.type};
    in
    if entry.nullable or false then types.nullOr base else base;

  # The glue's default of a key; a key of a list's items ("databases[].uri") has its item's default.
  defaultPath =
    key:
    let
      parts = lib.splitString "[]." key;
    in
    if lib.length parts == 2 then
      [ "item_defaults" (lib.head parts) ] ++ lib.splitString "." (lib.last parts)
    else
      [ "defaults" ] ++ lib.splitString "." key;

  # An option inside `settings` for the glue key `key` (dotted, as in contract.json): its type,
  # default and description are the glue's.
  glueOption =
    key: overrides:
    let
      entry = contract.keys.${key};
    in
    mkOption (
      {
        type = typeOf entry;
        # `note`: what the module itself does with the value.
        description = "${entry.description or ""}${lib.optionalString (overrides ? note) " ${overrides.note}"} (Glue key `${key}`, docs/settings-reference.md.)";
      }
      // lib.optionalAttrs (lib.hasAttrByPath (defaultPath key) contract) {
        default = lib.getAttrFromPath (defaultPath key) contract;
      }
      // removeAttrs overrides [ "note" ]
    );
  # Several keys of one section, as the section's attribute set of options.
  glueOptions =
    keys:
    lib.listToAttrs (map (k: lib.nameValuePair (lib.last (lib.splitString "." k)) (glueOption k { })) keys);
in
{
  imports = [
    ./renames.nix
    ./settings.nix
    ./credentials.nix
    ./redis.nix
    ./database.nix
    ./units.nix
    ./assertions.nix
    ./nginx.nix
    ./flower.nix
    ./metrics.nix
  ];

  # No maintainers are listed yet: the module lives outside nixpkgs, in this flake (issues go to its repository).
  meta.maintainers = [ ];

  options.services.superset-async = {
    enable = mkEnableOption "Apache Superset with its asynchronous query stack (Redis, gunicorn web, Celery worker and beat)";

    # mkPackageOption names a package of nixpkgs; this one is the flake's own, so a plain option
    # with defaultText stands in for it.
    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ../../packages/superset-async.nix { };
      defaultText = literalExpression "superset-async.packages.\${system}.superset-async (Superset 6.1 and the glue, from python/lock)";
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

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open `settings.web.port` in the firewall (when the web role runs here); with `nginx.enable`, the proxy's ports 80 and 443 instead.";
    };

    redis.createLocally = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Run a dedicated Redis (`services.redis.servers.superset-async`, AOF on) configured from
        `settings.redis`: it listens on `settings.redis.host`/`port` (loopback) and on the unix socket
        `settings.redis.unix_socket`, with `settings.redis.password_file` as `requirepass`. When false,
        point `settings.redis` at an external Redis shared by every host of the stack.
      '';
    };

    web.enable = mkOption {
      type = types.bool;
      default = true;
      description = "Run the web server (gunicorn) on this host.";
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
    };

    beat.enable = mkOption {
      type = types.bool;
      # With an external Redis the stack may span hosts, and two beats would send every periodic
      # task twice: beat then runs only where it is enabled explicitly, on exactly one host.
      default = cfg.redis.createLocally;
      defaultText = literalExpression "config.services.superset-async.redis.createLocally";
      description = ''
        Run Celery beat here (reports every minute, log pruning daily); sets `settings.beat.enabled`.
        Exactly one host of a stack must. On by default only with a local Redis (a single-host
        stack); with an external Redis (hosts sharing one broker) enable it on exactly one host.
      '';
    };

    init.enable = mkOption {
      type = types.bool;
      default = cfg.web.enable;
      defaultText = literalExpression "config.services.superset-async.web.enable";
      description = "Run `superset-async-init` (migrations, admin, `superset init`, databases) before the other roles.";
    };

    settings = mkOption {
      default = { };
      example = literalExpression ''
        {
          secret_key_file = "/run/keys/superset-secret-key";
          global_async_queries.jwt_secret_file = "/run/keys/superset-gaq-jwt";
          redis.password_file = "/run/keys/superset-redis";
          databases."ClickHouse" = {
            uri = "clickhousedb://superset@127.0.0.1:8123/default";
            password_file = "/run/keys/clickhouse-superset";
          };
          sql_lab.timeout_seconds = 120;
          feature_flags.DATASET_FOLDERS = true;
        }
      '';
      description = ''
        The glue's settings (docs/settings.md, every key: docs/settings-reference.md), under the
        glue's own snake_case keys. The keys this module reads are typed options below; any other
        key passes through. One difference: `databases` is an attribute set keyed by the database's
        name (the glue's list, with `name` filled in). The glue validates the final settings when the
        system is built (`superset-async render`), so a wrong value fails the build with a message
        naming the key. Never put a secret here: the settings land in the Nix store; give files
        (`*_file` keys, `secret_files`).
      '';
      type = types.submodule {
        freeformType = settingsFormat.type;
        options = {
          # StateDirectory= manages it: it must lie below /var/lib.
          state_dir = glueOption "state_dir" {
            type = types.strMatching "/var/lib/[^/].*";
            note = "Also every unit's StateDirectory=, WorkingDirectory= and HOME, so it must lie below /var/lib.";
          };
          secret_key_file = glueOption "secret_key_file" {
            example = "/run/keys/superset-secret-key";
            description = ''
              File holding Superset's `SECRET_KEY` (e.g. `openssl rand -base64 42`). Keep it stable: it
              encrypts database passwords in the metadata database. Read through systemd's `LoadCredential=`.
            '';
          };
          metadata_db = glueOptions [
            "metadata_db.uri"
            "metadata_db.password_file"
            "metadata_db.backups_kept"
          ];
          admin.password_file = glueOption "admin.password_file" {
            example = "/run/keys/superset-admin-password";
          };
          global_async_queries = glueOptions [
            "global_async_queries.enabled"
            "global_async_queries.jwt_secret_file"
          ];
          redis = {
            password_file = glueOption "redis.password_file" {
              note = ''
                Required: Redis holds pickles Superset loads, so whoever writes to it runs code as the
                service user. The one exception: the module's own Redis reached only through its
                socket with global_async_queries off (its backend needs TCP); that Redis then opens no
                TCP port. With redis.createLocally it is that Redis's `requirepass`.'';
            };
            host = glueOption "redis.host" {
              note = "With redis.createLocally the module's own Redis binds it (loopback only).";
            };
            port = glueOption "redis.port" {
              # Not Redis's usual 6379: the stack's own Redis sits beside any other on the host.
              default = 6390;
              note = "With redis.createLocally the module's own Redis listens on it (no TCP at all when reached only through its socket, see redis.password_file).";
            };
            unix_socket = glueOption "redis.unix_socket" {
              note = "With redis.createLocally the module's own Redis creates it (below /run/redis-superset-async/, mode 0660, group redis-superset-async, which the services join).";
              default = if cfg.redis.createLocally then localSocket else null;
              defaultText = literalExpression ''if config.services.superset-async.redis.createLocally then "${localSocket}" else null'';
            };
          };
          web = {
            port = glueOption "web.port" { note = "openFirewall opens it."; };
          }
          // glueOptions [
            "web.bind"
            "web.workers"
            "web.threads"
            "web.timeout_seconds"
            "web.extra_args"
          ];
          worker = glueOptions [
            "worker.pool"
            "worker.concurrency"
            "worker.queues"
            "worker.max_tasks_per_child"
            "worker.extra_args"
          ];
          # The worker's TimeoutStopSec= is their sum plus 30 s (a warm shutdown lets queries finish).
          sql_lab =
            glueOptions [
              "sql_lab.async_time_limit_seconds"
              "sql_lab.hard_time_limit_grace_seconds"
            ]
            // {
              # units.nix makes a worker unit of each lane; the glue judges the lanes (names, databases).
              lanes = mkOption {
                default = { };
                description = ''
                  SQL Lab lanes, by name (docs/nixos.md, "SQL Lab lanes"): the listed databases' async
                  queries get a Celery queue (`sql_lab_lane_NAME`) and a worker of their own, the unit
                  `superset-async-worker-NAME` on every host where `worker.enable` is set, so they never wait
                  behind the shared queue. Give every host of a stack the same lanes (the web routes to them).
                  (Glue key `sql_lab.lanes`, docs/settings-reference.md.)
                '';
                example = literalExpression ''
                  {
                    interactive = {
                      databases = [ "ClickHouse (interactive)" ];
                      concurrency = 2;
                    };
                  }
                '';
                type = types.attrsOf (
                  types.submodule {
                    freeformType = settingsFormat.type;
                    options = {
                      databases = glueOption "sql_lab.lanes.*.databases" { };
                      # The contract holds no default for a map's items: unset, the key is left out and
                      # the glue's default applies.
                      concurrency = glueOption "sql_lab.lanes.*.concurrency" {
                        type = types.nullOr (typeOf contract.keys."sql_lab.lanes.*.concurrency");
                        default = null;
                        note = "Unset (null): the glue's default.";
                      };
                    };
                  }
                );
                apply = lib.mapAttrs (_: lib.filterAttrs (_: v: v != null));
              };
            };
          databases = mkOption {
            default = { };
            description = "Databases to register in Superset, by `database_name` (the glue's `databases` list).";
            example = literalExpression ''
              {
                "ClickHouse" = {
                  uri = "clickhousedb://superset@127.0.0.1:8123/default";
                  password_file = "/run/keys/clickhouse-superset";
                };
              }
            '';
            type = types.attrsOf (
              types.submodule {
                freeformType = settingsFormat.type;
                options = glueOptions [
                  "databases[].uri"
                  "databases[].password_file"
                  "databases[].allow_run_async"
                  "databases[].expose_in_sqllab"
                  "databases[].allow_dml"
                  "databases[].extra"
                ];
              }
            );
          };
          secret_files = mkOption {
            type = types.attrsOf secretFile;
            default = { };
            example = {
              MAPBOX_API_KEY = "/run/keys/superset-mapbox";
            };
            description = ''
              Other Superset config keys that hold a secret (`${contract.credentials.secret_files.key_pattern}`, e.g. `MAPBOX_API_KEY`), each
              read from a file: every unit gets it as the credential `secret_file_<key in lower case>`, and
              the rendered config sets the key from `$CREDENTIALS_DIRECTORY` like the other secrets.
            '';
          };
          extra_config = glueOption "extra_config" { type = types.lines; };
        };
      };
    };
  };
}
