# The options of services.superset-async as data, for docs/nixos-options.md
# (rendered by tools/nixos_options_doc.py; a test fails when the file is stale).
{
  lib ? (import ./nixpkgs-lib.nix { }).lib,
}:

let
  harness = import ./eval.nix { inherit lib; };
  eval = harness.evalConfig {
    modules = [
      ../../nix/modules/superset-async
      {
        services.superset-async = {
          enable = true;
          package = harness.pkgs.writeShellScriptBin "superset-async" "exit 0";
          settings.secret_key_file = "/run/keys/sk";
          settings.redis.password_file = "/run/keys/redis";
        };
      }
    ];
  };
  render = v: if v ? text then v.text else builtins.toJSON v;
in
map
  (o: {
    inherit (o) name type readOnly;
    description = o.description or "";
    default = if o ? default then render o.default else null;
    example = if o ? example then render o.example else null;
  })
  (
    lib.filter (o: lib.hasPrefix "services.superset-async." o.name && !o.internal && o.visible) (
      lib.optionAttrSetToDocList eval.options
    )
  )
