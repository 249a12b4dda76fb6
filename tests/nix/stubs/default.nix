# Our stand-ins for the NixOS options the project's modules use: a list of modules, put first in
# lib.evalModules' `modules` the way nixos/lib/eval-config.nix puts module-list.nix (definition
# order, and so the order of merged lists, follows from that). `pkgs` and `utils` come from
# _module.args (tests/nix/eval.nix sets them). What each file imitates: ../README.md.
[
  ./systemd.nix
  ./users.nix
  ./redis.nix
  ./postgresql.nix
  ./networking.nix
  ./nginx.nix
  ./prometheus.nix
  ./system.nix
]
