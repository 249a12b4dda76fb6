# A stand-in for the `nixpkgs` input, for the pure-evaluation test of this repository's flake
# (tests/nix/run: `nix eval --override-input nixpkgs <this>`): legacyPackages are the offline stubs,
# so outputs that only need stub builders evaluate as `nix flake check` would, in pure mode.
{
  description = "offline stub of nixpkgs (tests only)";
  outputs =
    { self }:
    let
      # The repository this flake sits in (its `dir`): the pinned lib comes from its flake.lock.
      inherit ((import ../nixpkgs-lib.nix { })) lib;
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (
        system: import ../stubs/pkgs.nix { inherit lib system; }
      );
    };
}
