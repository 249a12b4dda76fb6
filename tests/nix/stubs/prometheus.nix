# services.prometheus.exporters.statsd as nixpkgs declares it
# (nixos/modules/services/monitoring/prometheus/exporters.nix with exporters/statsd.nix): the common
# exporter options a module sets, no unit. Used by metrics.nix.
{ lib, ... }:

let
  inherit (lib) mkOption types;
in
{
  options.services.prometheus.exporters.statsd = {
    enable = mkOption {
      type = types.bool;
      default = false;
    };
    listenAddress = mkOption {
      type = types.str;
      default = "0.0.0.0";
    };
    port = mkOption {
      type = types.port;
      default = 9102;
    };
    openFirewall = mkOption {
      type = types.bool;
      default = false;
    };
    extraFlags = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
  };
}
