# The VM tests' demo ClickHouse: the server and a oneshot that fills demo.cities once it answers
# (user `default`, no password). Shared by single-host.nix and scale-out.nix.
{ config, ... }:

{
  services.clickhouse.enable = true;
  systemd.services.clickhouse-demo = {
    wantedBy = [ "multi-user.target" ];
    after = [ "clickhouse.service" ];
    requires = [ "clickhouse.service" ];
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
    };
    path = [ config.services.clickhouse.package ];
    script = ''
      until clickhouse-client --query "SELECT 1"; do sleep 1; done
      clickhouse-client --query "CREATE DATABASE IF NOT EXISTS demo"
      clickhouse-client --query "CREATE TABLE IF NOT EXISTS demo.cities (name String, population UInt32) ENGINE = MergeTree ORDER BY name"
      clickhouse-client --query "INSERT INTO demo.cities VALUES ('Lisbon', 545000), ('Porto', 232000)"
    '';
  };
}
