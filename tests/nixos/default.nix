# NixOS VM tests: `nix flake check` (or `nix build .#checks.x86_64-linux.vm-single-host`) where Nix
# can build. They cannot run on the machines this project is developed on (no nixpkgs there).
{
  lib,
  testers,
  module,
}:

{
  vm-single-host = testers.runNixOSTest (import ./single-host.nix { inherit module; });
  vm-scale-out = testers.runNixOSTest (import ./scale-out.nix { inherit module; });
}
