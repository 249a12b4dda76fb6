# `nix flake check`'s view of the offline tests: every accepted case must evaluate with its checks
# passing, and every refused case must fail to evaluate. (tests/nix/run does more: it also matches
# each refusal's message, which needs one nix process per case.)
{
  pkgs,
  lib,
  module,
}:

let
  inherit (pkgs.stdenv.hostPlatform) system;
  harness = import ./eval.nix { inherit lib system; };
  problems = lib.concatMap (
    file:
    lib.concatMap (
      c:
      if c.expect == "ok" then
        lib.optional (c.status != "evaluated" || lib.any (ch: !ch.pass) c.checks) "${file.file}: ${c.name}"
      else
        lib.optional (builtins.tryEval (import ./eval.nix {
          inherit lib system;
          file = file.file;
          case = c.name;
        }).one).success "${file.file}: ${c.name} (evaluated but should be refused)"
    ) file.cases
  ) harness.batch;
in
# `module` is what the flake exports; the cases import the same files by path.
assert module.imports == [ ../../nix/modules/superset-async ];
if problems == [ ] then
  pkgs.runCommand "superset-async-offline-eval" { } "touch $out"
else
  throw "offline evaluation tests failed:\n${lib.concatStringsSep "\n" problems}"
