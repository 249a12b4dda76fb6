# The host: its hardware and boot (from nixos-generate-config), and Superset (superset.nix).
{
  imports = [
    ./hardware-configuration.nix # nixos-generate-config --show-hardware-config > hardware-configuration.nix
    ./superset.nix
  ];
  networking.hostName = "superset";
  system.stateVersion = "26.05";
}
