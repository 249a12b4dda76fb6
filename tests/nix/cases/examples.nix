# The NixOS examples (examples/nixos/) and the flake template's service configuration
# (templates/default/superset.nix) evaluate with the module, as a user would import them.
{ lib, pkgs, root, ... }:

let
  module = root + "/nix/modules/superset-async";
  pkgs' = (import ../case-kit.nix { inherit pkgs; }).pkgs' // {
    postgresql = pkgs.writeShellScriptBin "psql" "exit 0";
    dejavu_fonts = pkgs.writeText "dejavu-fonts" "";
  };
  # fonts.packages (the screenshots' fonts in production.nix) is not among the general stubs.
  fontsStub = {
    options.fonts.packages = lib.mkOption {
      type = lib.types.listOf lib.types.package;
      default = [ ];
      description = "Font packages (NixOS' fonts.packages).";
    };
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
  # What the VM tests' nodes declare beyond the module (virtualisation.*, services.clickhouse).
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
  (example "examples/nixos/production.nix" [ fontsStub ] (cfg:
    let
      settings = cfg.services.superset-async.finalSettings;
      vhost = cfg.services.nginx.virtualHosts."superset.example.org";
    in
    [
      {
        name = "PostgreSQL metadata created here, over the socket";
        expected = "postgresql+psycopg2:///superset-async?host=/run/postgresql";
        got = settings.metadata_db.uri;
      }
      { name = "its database"; expected = [ "superset-async" ]; got = cfg.services.postgresql.ensureDatabases; }
      {
        name = "init after postgresql-setup";
        cond = lib.elem "postgresql-setup.service" cfg.systemd.services.superset-async-init.after;
      }
      { name = "nginx in front, certificate from ACME"; cond = vhost.forceSSL && vhost.enableACME && cfg.security.acme.certs ? "superset.example.org"; }
      { name = "proxied to the web on loopback"; expected = "http://127.0.0.1:8088"; got = vhost.locations."/".proxyPass; }
      { name = "public_url: Secure cookies, ProxyFix, HSTS"; expected = "https://superset.example.org/"; got = settings.web.public_url; }
      { name = "web on loopback"; expected = "127.0.0.1"; got = settings.web.bind; }
      { name = "only the proxy's ports open"; expected = [ 80 443 ]; got = cfg.networking.firewall.allowedTCPPorts; }
      { name = "reports by e-mail"; cond = settings.reports.enabled && settings.reports.smtp.host == "smtp.example.org"; }
      {
        name = "the SMTP password reaches the worker as a credential";
        cond = lib.elem "smtp_password:/run/keys/superset-async/smtp_password" cfg.systemd.services.superset-async-worker.serviceConfig.LoadCredential;
      }
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
  (vmNode "scale-out" "infra")
  (vmNode "scale-out" "web")
  (vmNode "scale-out" "worker1")
]
