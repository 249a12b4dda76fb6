# Flower (Celery's monitoring UI, REST API and Prometheus /metrics) as one more hardened unit,
# `superset-async exec flower`: the same command line as the local runner's flower role
# (python/superset_async_glue/commands.py). Address and port are the glue's `settings.flower.*`.
# Its basic-auth password never reaches the command line, the environment or the store: the
# rendered flowerconfig.py (no secret inside) reads it from $CREDENTIALS_DIRECTORY/flower_password.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib) mkIf mkOption types;
  cfg = config.services.superset-async;
  contract = lib.importJSON ./contract.json;
  f = contract.defaults.flower // (cfg.finalSettings.flower or { });

  # flowerconfig.py beside a link to superset_config.py: the glue looks for it next to --config.
  configDir =
    pkgs.runCommand "superset-async-flower-config"
      {
        nativeBuildInputs = [ cfg.package ];
        preferLocalBuild = true;
      }
      ''
        mkdir -p $out
        ln -s ${cfg.configFile} $out/superset_config.py
        superset-async render --flower --settings ${cfg.settingsFile} --output $out/flowerconfig.py
      '';
  # Every unit's credentials (the rendered superset_config.py reads the broker's password, and the
  # secret key, when Flower's Celery app imports it) plus Flower's own, for this unit only.
  loopback = f.bind == "localhost" || f.bind == "::1" || lib.hasPrefix "127." f.bind;
  credentials = cfg.credentials // lib.optionalAttrs (f.password_file != null) { flower_password = f.password_file; };
in
{
  options.services.superset-async.flower.enable = mkOption {
    type = types.bool;
    default = false;
    description = ''
      Run Flower here (unit `superset-async-flower`): Celery's monitoring UI, REST API and Prometheus
      `/metrics` (docs/metrics.md); sets `settings.flower.enabled`. It listens on
      `settings.flower.bind`:`settings.flower.port` (127.0.0.1:5555 by default); beyond loopback
      `settings.flower.password_file` is required (basic auth for the UI and the API; Flower 2.2 serves
      `/metrics` and `/healthcheck` without authentication).
    '';
  };

  config = mkIf cfg.enable {
    services.superset-async.settings.flower.enabled = cfg.flower.enable;

    # The glue refuses this too (at build time, when it renders); here it fails at evaluation.
    assertions = [
      {
        assertion = !cfg.flower.enable || loopback || f.password_file != null;
        message = ''
          services.superset-async.flower.enable with settings.flower.bind = "${f.bind}" (not loopback) needs
          services.superset-async.settings.flower.password_file: Flower's UI can revoke tasks; give it a
          password file (basic auth) or bind it to 127.0.0.1.
        '';
      }
    ];

    systemd.services.superset-async-flower = mkIf cfg.flower.enable (
      lib.recursiveUpdate cfg.unitBase {
        description = "Flower: Celery monitoring (UI, API, Prometheus /metrics)";
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          ExecStart = "${cfg.package}/bin/superset-async exec flower --settings ${cfg.settingsFile} --config ${configDir}/superset_config.py";
          LoadCredential = lib.mapAttrsToList (name: path: "${name}:${path}") credentials;
          Restart = "always";
          RestartSec = "5s";
        };
      }
    );
  };
}
