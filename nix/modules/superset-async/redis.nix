# redis.createLocally: a Redis of the stack's own, reachable over its unix socket (broker, results,
# caches) and on loopback TCP (Superset's GLOBAL_ASYNC_QUERIES backend cannot use a socket).
{
  config,
  lib,
  ...
}:

let
  cfg = config.services.superset-async;
in
{
  config = lib.mkIf (cfg.enable && cfg.redis.createLocally) {
    services.redis.servers.superset-async = {
      enable = true;
      bind = "127.0.0.1";
      inherit (cfg.redis) port;
      unixSocketPerm = 660; # the services reach it through the group redis-superset-async
      appendOnly = true; # queued SQL Lab queries and results survive a Redis restart
      # ... and a crash of the host: nothing Redis acknowledged is lost (the local runner does the same;
      # docs/runner.md has the cost, a few ms per query).
      appendFsync = "always";
      requirePassFile = cfg.redis.passwordFile;
      databases = 16;
    };
  };
}
