# services.superset-async with Alerts & Reports: what the worker unit's hardening becomes for the
# headless Chromium that takes the screenshots (docs/reports.md; the browser itself is measured under
# the same filter by tests/python/test_reports.py).
{ pkgs, root, ... }:

let
  module = root + "/nix/modules/superset-async";
  inherit (import ../case-kit.nix { inherit pkgs; }) pkgs' ok;
  withReports = reports: [
    module
    {
      services.superset-async = {
        enable = true;
        package = pkgs'.superset-async;
        settings = {
          secret_key_file = "/run/keys/sk";
          global_async_queries.jwt_secret_file = "/run/keys/jwt";
          redis.password_file = "/run/keys/redis";
        } // pkgs.lib.optionalAttrs (reports != null) { inherit reports; };
      };
    }
  ];
  sc = cfg: name: cfg.systemd.services.${name}.serviceConfig;
  on = {
    enabled = true;
    smtp.host = "mail.example.org";
  };
in
[
  (ok "reports: the browser and its driver default to nixpkgs' (not the glue's Debian paths)"
    (withReports on)
    (cfg: [
      {
        name = "defaults";
        expected = [ "${pkgs'.chromium}/bin/chromium" "${pkgs'.chromedriver}/bin/chromedriver" ];
        got = with cfg.services.superset-async.finalSettings.reports.webdriver; [ chromium_path chromedriver_path ];
      }
    ]))

  (ok "reports: a browser path set in the settings is kept"
    (withReports (on // { webdriver.chromium_path = "/opt/chrome/chrome"; }))
    (cfg: [
      {
        name = "kept";
        expected = [ "/opt/chrome/chrome" "${pkgs'.chromedriver}/bin/chromedriver" ];
        got = with cfg.services.superset-async.finalSettings.reports.webdriver; [ chromium_path chromedriver_path ];
      }
    ]))

  (ok "reports off: no browser in the final settings"
    (withReports null)
    (cfg: [
      {
        name = "absent";
        expected = false;
        got = cfg.services.superset-async.finalSettings ? reports;
      }
    ]))

  (ok "reports: the worker keeps W^X and its syscall filter, refused calls fail with EPERM; web and beat unchanged"
    (withReports on)
    (cfg: [
      {
        name = "worker";
        expected = [ "EPERM" true [ "@system-service" "~@privileged" ] ];
        got = with sc cfg "superset-async-worker"; [ SystemCallErrorNumber MemoryDenyWriteExecute SystemCallFilter ];
      }
      {
        name = "web and beat";
        expected = [ false false true true ];
        got = [
          (sc cfg "superset-async-web" ? SystemCallErrorNumber)
          (sc cfg "superset-async-beat" ? SystemCallErrorNumber)
          (sc cfg "superset-async-web").MemoryDenyWriteExecute
          (sc cfg "superset-async-beat").MemoryDenyWriteExecute
        ];
      }
    ]))

  (ok "reports with V8's JIT (webdriver.jitless = false): the worker drops MemoryDenyWriteExecute, the web keeps it"
    (withReports (on // { webdriver.jitless = false; }))
    (cfg: [
      {
        name = "worker, web";
        expected = [ false true ];
        got = [
          (sc cfg "superset-async-worker").MemoryDenyWriteExecute
          (sc cfg "superset-async-web").MemoryDenyWriteExecute
        ];
      }
    ]))

  (ok "reports: the SMTP password and the Slack token reach the units as credentials smtp_password, slack_token"
    (withReports (on // {
      smtp = {
        host = "mail.example.org";
        user = "superset";
        password_file = "/run/keys/smtp";
      };
      slack.token_file = "/run/keys/slack";
    }))
    (cfg: [
      {
        name = "worker LoadCredential";
        expected = [ "slack_token:/run/keys/slack" "smtp_password:/run/keys/smtp" ];
        got = builtins.filter (c: builtins.match "(smtp|slack).*" c != null) (sc cfg "superset-async-worker").LoadCredential;
      }
    ]))

  (ok "reports off (the default): the worker's hardening is the common one" (withReports null) (cfg: [
    {
      name = "worker";
      expected = [ false true ];
      got = [
        (sc cfg "superset-async-worker" ? SystemCallErrorNumber)
        (sc cfg "superset-async-worker").MemoryDenyWriteExecute
      ];
    }
  ]))
]
