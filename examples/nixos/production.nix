# One production host: PostgreSQL for Superset's metadata (created here), a local Redis with a
# password, the web on loopback for a TLS reverse proxy in front (so the GAQ cookie is Secure), more
# web and worker processes, and worker children recycled now and then.
#
#   imports = [ inputs.superset-async.nixosModules.default ./production.nix ];
#
# Secrets: root-owned 0600 files outside the store, as in single-host.nix; the PostgreSQL password
# below must be the one in /run/keys/superset-async/metadata_db_password.
{ pkgs, ... }:
{
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
    authentication = "host superset superset 127.0.0.1/32 scram-sha-256";
  };
  # ensureUsers creates the role without a password; give it the one Superset connects with.
  systemd.services.superset-async-pg-password = {
    after = [
      "postgresql.service"
      "postgresql-setup.service"
    ];
    requires = [ "postgresql.service" ];
    before = [ "superset-async-init.service" ];
    wantedBy = [ "multi-user.target" ];
    serviceConfig = {
      Type = "oneshot";
      User = "postgres";
      LoadCredential = "password:/run/keys/superset-async/metadata_db_password";
    };
    path = [ pkgs.postgresql ];
    # psql reads the password itself (\set with backquotes), so it is on no command line.
    script = ''
      psql -v ON_ERROR_STOP=1 <<'SQL'
      \set pw `cat "$CREDENTIALS_DIRECTORY/password"`
      ALTER USER superset PASSWORD :'pw';
      SQL
    '';
  };

  services.superset-async = {
    enable = true;
    settings = {
      secret_key_file = "/run/keys/superset-async/secret_key";
      admin.password_file = "/run/keys/superset-async/admin_password";
      global_async_queries = {
        jwt_secret_file = "/run/keys/superset-async/gaq_jwt_secret";
        jwt_cookie_secure = true; # served over HTTPS by the proxy
      };
      redis.password_file = "/run/keys/superset-async/redis_password";
      metadata_db = {
        uri = "postgresql://superset@127.0.0.1:5432/superset";
        password_file = "/run/keys/superset-async/metadata_db_password";
      };
      web = {
        workers = 4;
        threads = 4;
      };
      worker = {
        concurrency = 4;
        max_tasks_per_child = 200;
      };
      databases."ClickHouse" = {
        uri = "clickhousedb://superset@127.0.0.1:8123/default";
        password_file = "/run/keys/superset-async/clickhouse_password";
      };
    };
  };
}
