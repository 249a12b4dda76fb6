# A configuration the glue refuses while rendering superset_config.py at build time: two lanes with
# one database (the lanes' rules are the glue's, python/superset_async_glue/settings.py). The runner
# expects the build to fail with the glue's located message. It is ./superset-async.nix, whose lane
# `interactive` has the database "ClickHouse", plus a second lane with the same database.
{ lib, pkgs, root, ... }@args:

let
  base = import ./superset-async.nix args;
in
{
  inherit (base) pkgs;
  config = base.config ++ [
    { services.superset-async.settings.sql_lab.lanes.dashboards.databases = [ "ClickHouse" ]; }
  ];
  fails = [
    "sql_lab.lanes.interactive.databases:"
    "'ClickHouse' is in lanes 'dashboards' and 'interactive'"
    "keep it in one lane"
  ];
}
