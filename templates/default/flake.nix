{
  description = "A NixOS host running Apache Superset with its async query stack (superset-async)";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    # Where you got this template from (`nix flake init -t <that>`).
    superset-async.url = "github:<you>/superset-async";
    superset-async.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs =
    { nixpkgs, superset-async, ... }:
    {
      nixosConfigurations.superset = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          superset-async.nixosModules.default
          ./configuration.nix
        ];
      };
    };
}
