# The module's files really built: settings JSON, superset_config.py rendered by the glue (the
# project's .venv stands in for the Nix-built package, which cannot be built here), and units.
{ lib, pkgs, root, ... }:

let
  # A string, not a path: the checkout must not be copied into the store.
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
          admin.password_file = "/run/keys/admin";
          redis.password_file = "/run/keys/redis";
          databases.ClickHouse.uri = "clickhousedb://superset@127.0.0.1:8123/demo";
          secret_files.MAPBOX_API_KEY = "/run/keys/mapbox"; # the glue renders it from $CREDENTIALS_DIRECTORY
          sql_lab.lanes.interactive.databases = [ "ClickHouse" ]; # a worker unit of its own
        };
      };
    }
  ];

  lines = {
    "superset-async-web.service" = [
      "[Unit]"
      "After=network.target redis-superset-async.service superset-async-init.service"
      "Wants=redis-superset-async.service superset-async-init.service"
      "[Service]"
      ''Environment="HOME=/var/lib/superset-async"''
      "LoadCredential=secret_key:/run/keys/sk"
      "LoadCredential=gaq_jwt_secret:/run/keys/jwt"
      "LoadCredential=secret_file_mapbox_api_key:/run/keys/mapbox"
      "NoNewPrivileges=true"
      "ProtectSystem=strict"
      "CapabilityBoundingSet="
      "SystemCallFilter=@system-service"
      "SystemCallFilter=~@privileged"
      "User=superset-async"
      "UMask=0077"
      "[Install]"
      "WantedBy=multi-user.target"
    ];
    "superset-async-init.service" = [
      "Type=oneshot"
      "RemainAfterExit=true"
      "TimeoutStartSec=15min"
    ];
    "superset-async-worker.service" = [
      "KillMode=mixed"
      "TimeoutStopSec=390"
      "Restart=always"
    ];
    "superset-async-worker-interactive.service" = [
      "Description=Superset Celery worker of the SQL Lab lane interactive"
      "After=network.target redis-superset-async.service superset-async-init.service"
      "LoadCredential=secret_key:/run/keys/sk"
      "KillMode=mixed"
      "TimeoutStopSec=390"
      "Restart=always"
      "WantedBy=multi-user.target"
    ];
  };
  patterns = {
    "superset-async-web.service" = [
      "ExecStart=/nix/store/[a-z0-9]{32}-superset-async/bin/superset-async exec web --settings /nix/store/[a-z0-9]{32}-superset-async-settings\\.json --config /nix/store/[a-z0-9]{32}-superset_config\\.py"
    ];
    "superset-async-beat.service" = [ "ExecStart=.* exec beat --settings .*" ];
    "superset-async-worker-interactive.service" = [
      "ExecStart=/nix/store/[a-z0-9]{32}-superset-async/bin/superset-async exec worker --lane interactive --settings /nix/store/[a-z0-9]{32}-superset-async-settings\\.json --config /nix/store/[a-z0-9]{32}-superset_config\\.py"
    ];
  };
}
