# What the VM tests' nodes (tests/nixos/*.nix) declare beyond the module itself, for the systemd
# harness (../harness/node.nix): `virtualisation.*` (meaningless in a container, accepted and
# ignored); `fonts.packages` (accepted, see below); `services.clickhouse`, run from Debian's
# clickhouse-server with Debian's config (bound into the container at /etc/clickhouse-server):
# data under /var/lib/clickhouse, HTTP on 8123, native on 9000, loopback only, user `default`
# without a password -- what NixOS' module gives a test node. `services.postgresql` is a stub of
# its own (postgresql.nix), since the module uses it too.
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
    # NixOS' fonts.packages (the report screenshots' text). Accepted and not linked anywhere: the
    # container's fontconfig finds Debian's fonts under /usr/share/fonts (the host's /usr) by itself.
    fonts.packages = mkOption {
      type = types.listOf types.package;
      default = [ ];
      description = "Font packages (NixOS' fonts.packages); the container sees Debian's installed fonts.";
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
