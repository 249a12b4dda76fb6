# One host: the whole async stack -- a local Redis (unix socket and a password), SQLite metadata,
# init, web, Celery worker and beat -- and a ClickHouse registered with allow_run_async.
#
#   imports = [ inputs.superset-async.nixosModules.default ./single-host.nix ];
#
# Secrets are files owned by root, mode 0600, outside the Nix store (agenix, sops-nix, or by hand:
#   install -d -m 0700 /run/keys/superset-async
#   openssl rand -base64 48 > /run/keys/superset-async/secret_key   # and so on for each file below
# ); the services read them only through systemd's LoadCredential=.
{
  services.superset-async = {
    enable = true;
    settings = {
      secret_key_file = "/run/keys/superset-async/secret_key";
      admin.password_file = "/run/keys/superset-async/admin_password";
      global_async_queries.jwt_secret_file = "/run/keys/superset-async/gaq_jwt_secret";
      redis.password_file = "/run/keys/superset-async/redis_password"; # required: Redis holds pickles
      databases."ClickHouse" = {
        uri = "clickhousedb://superset@127.0.0.1:8123/default";
        password_file = "/run/keys/superset-async/clickhouse_password";
        allow_run_async = true;
      };
    };
  };
}
