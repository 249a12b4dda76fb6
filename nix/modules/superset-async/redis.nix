# redis.createLocally: a Redis of the stack's own, configured from the same `settings.redis` the glue
# renders from: its unix socket (broker, results, caches) and loopback TCP (Superset's
# GLOBAL_ASYNC_QUERIES backend cannot use a socket).
{
  config,
  lib,
  ...
}:

let
  cfg = config.services.superset-async;
  r = cfg.settings.redis;
in
{
  options.services.superset-async.redis.socketOnly = lib.mkOption {
    type = lib.types.bool;
    readOnly = true;
    internal = true;
    description = "The local Redis has no password and is reached only through its group-restricted socket.";
  };

  config = lib.mkIf cfg.enable {
    # Without a password, only the socket is safe (0660, group redis-superset-async, which only the
    # services join); nothing needs TCP when GLOBAL_ASYNC_QUERIES, the one TCP client, is off.
    services.superset-async.redis.socketOnly =
      cfg.redis.createLocally
      && r.password_file == null
      && r.unix_socket != null
      && !cfg.settings.global_async_queries.enabled;

    services.redis.servers.superset-async = lib.mkIf cfg.redis.createLocally {
      enable = true;
      bind = r.host;
      port = if cfg.redis.socketOnly then 0 else r.port; # 0: no TCP listener
      unixSocket = r.unix_socket;
      unixSocketPerm = 660; # the services reach it through the group redis-superset-async
      appendOnly = true; # queued SQL Lab queries and results survive a Redis restart
      # ... and a crash of the host: nothing Redis acknowledged is lost (the local runner does the same;
      # docs/runner.md has the cost, a few ms per query).
      appendFsync = "always";
      requirePassFile = r.password_file;
      databases = 16;
    };
  };
}
