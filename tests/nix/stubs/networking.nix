# networking.firewall's port lists and networking.hostName, as modules set and read them
# (imitating nixos/modules/services/networking/firewall.nix: ports are kept sorted and unique).
{ config, lib, ... }:

let
  inherit (lib) mkOption types;
  canonical = ports: lib.unique (lib.sort lib.lessThan ports);
  range = types.submodule {
    options.from = mkOption { type = types.port; description = "First port."; };
    options.to = mkOption { type = types.port; description = "Last port."; };
  };
  portOptions = {
    allowedTCPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
      apply = canonical;
      description = "TCP ports open to the outside.";
    };
    allowedUDPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
      apply = canonical;
      description = "UDP ports open to the outside.";
    };
    allowedTCPPortRanges = mkOption {
      type = types.listOf range;
      default = [ ];
      description = "TCP port ranges open to the outside.";
    };
    allowedUDPPortRanges = mkOption {
      type = types.listOf range;
      default = [ ];
      description = "UDP port ranges open to the outside.";
    };
  };
in
{
  options.networking = {
    hostName = mkOption {
      type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$";
      default = "nixos";
      description = "The host name.";
    };
    firewall = portOptions // {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Whether the firewall is on (it is by default on NixOS).";
      };
      interfaces = mkOption {
        type = types.attrsOf (types.submodule { options = portOptions; });
        default = { };
        description = "Ports open on one interface only.";
      };
    };
  };

  config.system.build.firewall = {
    inherit (config.networking.firewall) enable allowedTCPPorts allowedUDPPorts;
    interfaces = lib.mapAttrs (_: i: { inherit (i) allowedTCPPorts allowedUDPPorts; }) config.networking.firewall.interfaces;
  };
}
