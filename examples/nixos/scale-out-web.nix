# The web host of a scaled-out stack: init, web and beat (exactly one beat per stack); its SQL Lab
# queries run on the worker hosts (worker.externalPool tells the module they exist).
#
#   imports = [ inputs.superset-async.nixosModules.default ./scale-out-web.nix ];
{
  imports = [ ./scale-out-common.nix ];
  services.superset-async = {
    beat.enable = true; # with an external Redis, beat runs only where enabled: on exactly one host
    openFirewall = true;
    worker = {
      enable = false;
      externalPool = true;
    };
    settings = {
      admin.password_file = "/run/keys/superset-async/admin_password";
      web.bind = "0.0.0.0";
      databases."ClickHouse" = {
        uri = "clickhousedb://superset@clickhouse.internal:8123/default";
        password_file = "/run/keys/superset-async/clickhouse_password";
      };
    };
  };
}
