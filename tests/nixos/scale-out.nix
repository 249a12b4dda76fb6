# Two hosts sharing one Redis and one PostgreSQL metadata database: `server` runs init, web and beat;
# `worker` runs only the Celery worker. The server declares the external worker pool, so its async
# database passes the module's assertion, and verify must see the remote worker answer.
{ module }:

let
  common =
    { lib, ... }:
    {
      imports = [
        module
        ./test-secrets.nix
      ];
      virtualisation.memorySize = 3072;
      services.superset-async = {
        enable = true;
        redis.createLocally = false;
        settings = {
          secret_key_file = "/run/keys/secret-key-shared";
          global_async_queries.jwt_secret_file = "/run/keys/gaq-jwt-shared";
          redis = {
            host = "server";
            port = 6379;
            password_file = "/run/keys/shared-redis";
          };
          metadata_db = {
            uri = "postgresql://superset@server/superset";
            password_file = "/run/keys/postgres";
          };
        };
      };
      # Both hosts must share SECRET_KEY and the GAQ secret; a fixed test value, written at boot.
      systemd.services.test-secrets.script = lib.mkAfter ''
        (umask 077; echo -n shared-secret-key-for-the-test-only-0123456789 > /run/keys/secret-key-shared)
        (umask 077; echo -n shared-gaq-jwt-secret-for-the-test-only-0123456789 > /run/keys/gaq-jwt-shared)
      '';
    };
in
{
  name = "superset-async-scale-out";

  nodes.server =
    { pkgs, ... }:
    {
      imports = [ common ];
      networking.firewall.allowedTCPPorts = [
        6379
        5432
      ];
      services.redis.servers.shared = {
        enable = true;
        bind = "0.0.0.0";
        port = 6379;
        requirePassFile = "/run/keys/shared-redis";
        databases = 16;
      };
      services.postgresql = {
        enable = true;
        enableTCPIP = true;
        ensureDatabases = [ "superset" ];
        ensureUsers = [
          {
            name = "superset";
            ensureDBOwnership = true;
          }
        ];
        authentication = "host superset superset all scram-sha-256";
      };
      # ensureUsers runs in postgresql-setup.service on current NixOS (postgresql.service before);
      # ordering after both works on either.
      systemd.services.postgresql-superset-password = {
        after = [
          "postgresql.service"
          "postgresql-setup.service"
        ];
        requires = [ "postgresql.service" ];
        before = [ "superset-async-init.service" ];
        wantedBy = [ "multi-user.target" ];
        serviceConfig.Type = "oneshot";
        serviceConfig.User = "postgres";
        path = [ pkgs.postgresql ];
        script = ''psql -c "ALTER USER superset PASSWORD 'superset-pg'"'';
      };
      services.superset-async = {
        beat.enable = true; # external Redis: beat is off unless enabled, on exactly one host
        worker = {
          enable = false;
          externalPool = true;
        };
        settings = {
          admin.password_file = "/run/keys/admin";
          databases."Metadata (PostgreSQL)" = {
            uri = "postgresql://superset@server/superset";
            password_file = "/run/keys/postgres";
          };
        };
      };
    };

  nodes.worker = {
    imports = [ common ];
    services.superset-async = {
      web.enable = false;
      beat.enable = false;
    };
  };

  testScript = ''
    start_all()
    server.wait_for_unit("superset-async-web.service")
    server.wait_for_unit("superset-async-beat.service")
    worker.wait_for_unit("superset-async-worker.service")
    worker.fail("systemctl is-active superset-async-web.service")
    server.fail("systemctl is-active superset-async-worker.service")

    with subtest("verify on the web host sees the remote worker and runs an async query through it"):
        server.wait_until_succeeds("superset-async-verify --json > /tmp/verify.json", timeout=300)
        server.log(server.succeed("cat /tmp/verify.json"))
  '';
}
