# What the VM tests' nodes (tests/nixos/*.nix) declare beyond the module itself, for the systemd
# harness (../harness/node.nix): `virtualisation.*` (meaningless in a container, accepted and
# ignored); `services.clickhouse`, run from Debian's clickhouse-server with Debian's config
# (bound into the container at /etc/clickhouse-server): data under /var/lib/clickhouse, HTTP on
# 8123, native on 9000, loopback only, user `default` without a password -- what NixOS' module
# gives a test node; and `services.postgresql` from Debian's PostgreSQL 15 with the options the
# tests use (enableTCPIP, authentication, ensureDatabases, ensureUsers with ensureDBOwnership),
# users and databases created in postgresql-setup.service as on current NixOS.
# Not imported by the evaluation cases (tests/nix/cases).
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib) mkOption types;
  cfg = config.services.clickhouse;
  # Debian puts the server in /usr/sbin and the client in /usr/bin.
  pg = config.services.postgresql;
  pgBin = "/usr/lib/postgresql/15/bin"; # Debian's PostgreSQL 15
  pgData = "/var/lib/postgresql/data";
  hba = pkgs.writeText "pg_hba.conf" ''
    local all all peer
    ${pg.authentication}
  '';
  pgSetup = pkgs.writeShellScript "postgresql-setup" (
    ''
      until ${pgBin}/pg_isready -h /run/postgresql -q; do sleep 0.2; done
      psql() { /usr/bin/psql -h /run/postgresql -v ON_ERROR_STOP=1 -tA "$@"; }
    ''
    + lib.concatMapStrings (u: ''
      [ "$(psql -c "SELECT 1 FROM pg_roles WHERE rolname = '${u.name}'")" = 1 ] || psql -c 'CREATE ROLE "${u.name}" LOGIN'
    '') pg.ensureUsers
    + lib.concatMapStrings (db: ''
      [ "$(psql -c "SELECT 1 FROM pg_database WHERE datname = '${db}'")" = 1 ] || psql -c 'CREATE DATABASE "${db}"'
    '') pg.ensureDatabases
    + lib.concatMapStrings (u: lib.optionalString (u.ensureDBOwnership or false) ''
      psql -c 'ALTER DATABASE "${u.name}" OWNER TO "${u.name}"'
    '') pg.ensureUsers
  );
  hostClickhouse = pkgs.runCommand "clickhouse-host" { } ''
    mkdir -p $out/bin
    ln -s /usr/sbin/clickhouse-server $out/bin/clickhouse-server
    ln -s /usr/bin/clickhouse-client $out/bin/clickhouse-client
  '';
in
{
  options = {
    virtualisation = mkOption {
      type = types.attrsOf types.anything;
      default = { };
      description = "VM settings of the NixOS test driver; a container has none.";
    };
    services.postgresql = {
      enable = lib.mkEnableOption "PostgreSQL (Debian's 15, for the systemd harness)";
      enableTCPIP = mkOption {
        type = types.bool;
        default = false;
        description = "Listen on all addresses, not only the socket.";
      };
      authentication = mkOption {
        type = types.lines;
        default = "";
        description = "pg_hba.conf lines after `local all all peer`.";
      };
      ensureDatabases = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "Databases created when missing.";
      };
      ensureUsers = mkOption {
        type = types.listOf (types.attrsOf types.anything);
        default = [ ];
        description = "Roles created when missing (`name`, `ensureDBOwnership`).";
      };
    };
    services.clickhouse = {
      enable = lib.mkEnableOption "ClickHouse (Debian's server, for the systemd harness)";
      package = mkOption {
        type = types.package;
        default = hostClickhouse;
        description = "The host's ClickHouse programs.";
      };
    };
  };

  config = lib.mkMerge [
  (lib.mkIf pg.enable {
    users.users.postgres = {
      isSystemUser = true;
      group = "postgres";
      home = "/var/lib/postgresql";
    };
    users.groups.postgres = { };
    systemd.services.postgresql = {
      description = "PostgreSQL (Debian's 15)";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      serviceConfig = {
        User = "postgres";
        Group = "postgres";
        StateDirectory = "postgresql";
        StateDirectoryMode = "0700";
        RuntimeDirectory = "postgresql";
        ExecStartPre = "${pkgs.bash}/bin/sh -c '[ -e ${pgData}/PG_VERSION ] || ${pgBin}/initdb -D ${pgData} -A peer --auth-host=scram-sha-256 >/dev/null'";
        ExecStart = "${pgBin}/postgres -D ${pgData} -k /run/postgresql -c hba_file=${hba} -c listen_addresses=${lib.optionalString pg.enableTCPIP "*"}";
      };
    };
    systemd.services.postgresql-setup = {
      description = "PostgreSQL: ensureUsers and ensureDatabases";
      wantedBy = [ "multi-user.target" ];
      after = [ "postgresql.service" ];
      requires = [ "postgresql.service" ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        User = "postgres";
        ExecStart = "${pgSetup}";
      };
    };
  })
  (lib.mkIf cfg.enable {
    users.users.clickhouse = {
      isSystemUser = true;
      group = "clickhouse";
      home = "/var/lib/clickhouse";
    };
    users.groups.clickhouse = { };
    systemd.services.clickhouse = {
      description = "ClickHouse server (Debian's binary)";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/clickhouse-server --config-file=/etc/clickhouse-server/config.xml";
        User = "clickhouse";
        Group = "clickhouse";
        StateDirectory = "clickhouse";
        LogsDirectory = "clickhouse-server";
        Restart = "always";
      };
    };
  })
  ];
}
