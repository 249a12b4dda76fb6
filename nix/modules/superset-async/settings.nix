# `settings` -> one settings JSON -> superset_config.py rendered by the glue at build time.
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
in
{
  options.services.superset-async = {
    finalSettings = mkOption {
      type = settingsFormat.type;
      readOnly = true;
      description = "The settings the glue receives: `settings`, with `databases` as the glue's list.";
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
      # What the glue runs with is what this host runs: one beat per stack, chosen here.
      settings.beat.enabled = cfg.beat.enable;

      finalSettings =
        removeAttrs cfg.settings [
          "databases"
          "secret_files"
        ]
        // {
          databases = lib.mapAttrsToList (name: db: { inherit name; } // db) cfg.settings.databases;
        }
        # Only when used: the key is the newest of the glue's.
        // lib.optionalAttrs (cfg.settings.secret_files != { }) { inherit (cfg.settings) secret_files; }
        # Alerts & Reports: the glue's browser defaults are Debian's paths; here nixpkgs' Chromium and its
        # driver (same version), unless set. Only when reports are on, so no closure carries Chromium
        # otherwise (the settings file would reference it).
        // lib.optionalAttrs (cfg.settings.reports.enabled or false) {
          reports = lib.recursiveUpdate {
            webdriver = {
              chromium_path = "${pkgs.chromium}/bin/chromium";
              chromedriver_path = "${pkgs.chromedriver}/bin/chromedriver";
            };
          } cfg.settings.reports;
        };
      settingsFile = settingsFormat.generate "superset-async-settings.json" cfg.finalSettings;
      # Same bytes as `superset-async render` on the same settings; the glue validates them here, so a
      # wrong value fails the build with a message naming the key. No secret enters the store.
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
