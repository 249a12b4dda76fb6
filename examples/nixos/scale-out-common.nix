# What every host of a scaled-out stack shares: the same secrets, one Redis (the broker web and
# workers meet on) and one PostgreSQL metadata database, both on hosts of their own.
# Imported by scale-out-web.nix and scale-out-worker.nix.
{
  services.superset-async = {
    enable = true;
    redis.createLocally = false;
    settings = {
      secret_key_file = "/run/keys/superset-async/secret_key";
      global_async_queries.jwt_secret_file = "/run/keys/superset-async/gaq_jwt_secret";
      redis = {
        host = "redis.internal";
        port = 6379;
        password_file = "/run/keys/superset-async/redis_password";
      };
      metadata_db = {
        uri = "postgresql://superset@db.internal:5432/superset";
        password_file = "/run/keys/superset-async/metadata_db_password";
      };
    };
  };
}
