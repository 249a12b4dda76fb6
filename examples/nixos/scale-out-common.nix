# What every host of a scaled-out stack shares: the same secrets, one Redis (the broker web and
# workers meet on) and one PostgreSQL metadata database, both on hosts of their own.
# Imported by scale-out-web.nix and scale-out-worker.nix.
{
  services.superset-async = {
    enable = true;
    secretKeyFile = "/run/keys/superset-async/secret_key";
    globalAsyncQueries.jwtSecretFile = "/run/keys/superset-async/gaq_jwt_secret";
    redis = {
      createLocally = false;
      host = "redis.internal";
      port = 6379;
      passwordFile = "/run/keys/superset-async/redis_password";
    };
    metadataDatabase = {
      uri = "postgresql://superset@db.internal:5432/superset";
      passwordFile = "/run/keys/superset-async/metadata_db_password";
    };
  };
}
