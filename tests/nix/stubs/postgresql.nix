# services.postgresql: the options our modules and the VM tests use (enable, package, enableTCPIP,
# authentication, ensureDatabases, ensureUsers with ensureDBOwnership), as nixpkgs' module
# (nixos/modules/services/databases/postgresql.nix) declares them, and its two units as current
# NixOS has them: `postgresql` (peer authentication on the socket /run/postgresql first) and
# `postgresql-setup`, which creates the ensured users and databases. The units run Debian's
# PostgreSQL 15, so the systemd harness (../harness/node.nix) starts a real server.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib) mkOption types;
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
  hostPostgresql = pkgs.runCommand "postgresql-host" { } ''
    mkdir -p $out/bin
    for p in pg_dump pg_restore psql; do ln -s ${pgBin}/$p $out/bin/$p; done
  '';
in
{
  options.services.postgresql = {
    enable = lib.mkEnableOption "PostgreSQL (Debian's 15, for the systemd harness)";
    package = mkOption {
      type = types.package;
      default = hostPostgresql;
      description = "The PostgreSQL programs (here: links to Debian's pg_dump, pg_restore, psql).";
    };
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

  config = lib.mkIf pg.enable {
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
  };
}
