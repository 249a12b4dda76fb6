# A configuration the glue refuses while rendering superset_config.py at build time: two lanes with
# one database (the lanes' rules are the glue's, python/superset_async_glue/settings.py). The runner
# expects the build to fail with the glue's located message.
{ pkgs, root, ... }:

let
  # As in ./superset-async.nix: the project's .venv stands in for the Nix-built package.
  glue = pkgs.writeShellScriptBin "superset-async" ''exec ${toString root}/.venv/bin/superset-async "$@"'';
in
{
  pkgs = pkgs // { superset-async = glue; };
  config = [
    (root + "/nix/modules/superset-async")
    {
      services.superset-async = {
        enable = true;
        package = glue;
        settings = {
          secret_key_file = "/run/keys/sk";
          global_async_queries.jwt_secret_file = "/run/keys/jwt";
          redis.password_file = "/run/keys/redis";
          databases."ClickHouse (interactive)".uri = "clickhousedb://superset@127.0.0.1:8123/demo";
          sql_lab.lanes = {
            dashboards.databases = [ "ClickHouse (interactive)" ];
            interactive.databases = [ "ClickHouse (interactive)" ];
          };
        };
      };
    }
  ];
  fails = [
    "sql_lab.lanes.interactive.databases:"
    "'ClickHouse (interactive)' is in lanes 'dashboards' and 'interactive'"
    "keep it in one lane"
  ];
}
