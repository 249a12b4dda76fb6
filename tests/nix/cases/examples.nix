# The NixOS examples (examples/nixos/) and the flake template's service configuration
# (templates/default/superset.nix) evaluate with the module, as a user would import them.
{ lib, pkgs, root, ... }:

let
  module = root + "/nix/modules/superset-async";
  pkgs' = pkgs // {
    superset-async = pkgs.writeShellScriptBin "superset-async" "exit 0";
    postgresql = pkgs.writeShellScriptBin "psql" "exit 0";
  };
  example =
    file: extra: check:
    {
      name = "${file} evaluates";
      expect = "ok";
      pkgs = pkgs';
      config = [
        module
        (root + "/${file}")
        { services.superset-async.package = pkgs'.superset-async; }
      ] ++ extra;
      # What a user copies must not teach an old option name: no warning at all (renames warn).
      check = cfg: [ { name = "no warnings"; expected = [ ]; got = cfg.warnings; } ] ++ check cfg;
    };
  # The VM tests' nodes (tests/nixos/) too: they are examples of a kind, and the systemd harness runs them.
  vmNode =
    test: node:
    {
      name = "tests/nixos/${test}.nix node ${node} evaluates without warnings";
      expect = "ok";
      pkgs = pkgs' // {
        openssl = pkgs.writeShellScriptBin "openssl" "exit 0";
      };
      config = [
        (import (root + "/tests/nixos/${test}.nix") { inherit module; }).nodes.${node}
        postgresqlStub
        { services.superset-async.package = pkgs'.superset-async; }
      ];
      check = cfg: [ { name = "no warnings"; expected = [ ]; got = cfg.warnings; } ];
    };
  units = cfg: lib.filter (lib.hasPrefix "superset-async") (lib.attrNames cfg.systemd.services);
  # services.postgresql is not among the general stubs; the harness's stub declares it.
  postgresqlStub = root + "/tests/nix/stubs/test-nodes.nix";
in
[
  (example "examples/nixos/single-host.nix" [ ] (cfg: [
    {
      name = "the whole stack with its own Redis";
      expected = [ "superset-async-beat" "superset-async-init" "superset-async-web" "superset-async-worker" ];
      got = units cfg;
    }
    { name = "local Redis"; cond = cfg.services.redis.servers ? superset-async; }
  ]))
  (example "templates/default/superset.nix" [ ] (cfg: [
    {
      name = "same as examples/nixos/single-host.nix";
      cond = builtins.readFile (root + "/templates/default/superset.nix") == builtins.readFile (root + "/examples/nixos/single-host.nix");
    }
  ]))
  (example "examples/nixos/production.nix" [ postgresqlStub ] (cfg: [
    {
      name = "PostgreSQL metadata";
      expected = "postgresql://superset@127.0.0.1:5432/superset";
      got = cfg.services.superset-async.finalSettings.metadata_db.uri;
    }
    {
      name = "the password unit runs before init";
      cond = lib.elem "superset-async-init.service" cfg.systemd.services.superset-async-pg-password.before;
    }
    { name = "secure GAQ cookie"; cond = cfg.services.superset-async.finalSettings.global_async_queries.jwt_cookie_secure; }
  ]))
  (example "examples/nixos/scale-out-web.nix" [ ] (cfg: [
    {
      name = "init, web and beat; no worker";
      expected = [ "superset-async-beat" "superset-async-init" "superset-async-web" ];
      got = units cfg;
    }
  ]))
  (example "examples/nixos/scale-out-worker.nix" [ ] (cfg: [
    {
      name = "only the worker";
      expected = [ "superset-async-worker" ];
      got = units cfg;
    }
  ]))
  (vmNode "single-host" "machine")
  (vmNode "scale-out" "server")
  (vmNode "scale-out" "worker")
]
