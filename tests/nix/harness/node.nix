# A VM test (tests/nixos/<name>.nix) prepared for the systemd-nspawn harness
# (tests/python/fixtures/nspawn.py): each node evaluated with the offline stubs plus
# ../stubs/test-nodes.nix, its units built with the /bin/sh builders, and the test's testScript
# rendered with those nodes -- the very script the NixOS test driver would run.
#
# The Superset environment cannot be built here, so `superset-async` is the checkout's .venv (or,
# when its interpreter lives outside /usr, Debian's python3 loading .venv's packages from
# .artifacts/harness-python, see fixtures/nspawn.py): the container binds the checkout at
# /srv/superset-async; Nix builds (the rendered config) run on the host, from `checkout`.
#
#   nix-build tests/nix/harness/node.nix --argstr test single-host --argstr checkout "$PWD" -A machine
{
  test,
  checkout,
  lib ? (import ../nixpkgs-lib.nix { }).lib,
  system ? builtins.currentSystem,
}:

let
  h = import ../eval.nix { inherit lib system; };
  # The glue's source, copied into the store only for its hash: files built with the wrapper (the
  # rendered config) are rebuilt whenever the glue changes, not reused from an earlier checkout state.
  glueSource = builtins.path {
    name = "superset-async-glue-source";
    path = /. + "${checkout}/python/superset_async_glue";
    filter = path: type: baseNameOf path != "__pycache__";
  };
  glue = h.pkgs.writeShellScriptBin "superset-async" ''
    # glue source: ${glueSource}
    for root in /srv/superset-async ${lib.escapeShellArg checkout}; do
      [ -d "$root/python/superset_async_glue" ] && break
    done
    # .venv's interpreter may live where the container cannot look (fixtures/nspawn.py, HARNESS_PYTHON)
    python="$root/.venv/bin/python"
    [ -x "$root/.artifacts/harness-python/bin/python" ] && python="$root/.artifacts/harness-python/bin/python"
    export PYTHONPATH="$root/python''${PYTHONPATH:+:$PYTHONPATH}"
    exec "$python" -c 'import sys; from superset_async_glue.cli import main; sys.argv[0] = "superset-async"; sys.exit(main())' "$@"
  '';
  # A test's own tools (python3.withPackages in tests/nixos/*.nix: the reports test's SMTP sink and
  # client) run on the checkout's Python, whose .venv holds what they ask for (aiosmtpd, requests,
  # celery, pillow); nixpkgs' Python packages cannot be built here.
  testPython = h.pkgs.writeShellScriptBin "python3" ''
    for root in /srv/superset-async ${lib.escapeShellArg checkout}; do
      [ -d "$root/.venv" ] && break
    done
    python="$root/.venv/bin/python"
    [ -x "$root/.artifacts/harness-python/bin/python" ] && python="$root/.artifacts/harness-python/bin/python"
    exec "$python" "$@"
  '';
  pkgs = h.pkgs // {
    python3 = h.pkgs.python3 // {
      withPackages = _: testPython;
    };
    superset-async = glue;
    openssl = h.pkgs.runCommand "openssl-host" { } ''mkdir -p $out/bin; ln -s "$(command -v openssl)" $out/bin/openssl'';
    postgresql = h.pkgs.runCommand "postgresql-host" { } ''mkdir -p $out/bin; ln -s "$(command -v psql || echo /usr/bin/psql)" $out/bin/psql'';
  };
  spec = import (../../nixos + "/${test}.nix") { module = ../../../nix/modules/superset-async; };
  evalNode =
    node:
    (h.evalConfig {
      inherit pkgs;
      modules = [
        node
        ../stubs/test-nodes.nix
        { services.superset-async.package = glue; }
      ];
    }).config;
  nodes = lib.mapAttrs (_: evalNode) spec.nodes;

  # systemd-sysusers lines for the container's empty /etc: every declared user and group.
  sysusers =
    cfg:
    lib.concatStrings (
      lib.mapAttrsToList (name: _: "g ${name} -\n") cfg.users.groups
      ++ lib.mapAttrsToList (
        name: u: "u ${name} -:${u.group} ${builtins.toJSON (if u.description == "" then name else u.description)} ${u.home}\n"
      ) cfg.users.users
    );

  # "SOURCE:DEST" lines the container binds over the host's /usr (fixtures/nspawn.py): Debian
  # programs a NixOS host does not have, where a unit would find them first. chromedriver looks for
  # the browser in its own directory and /usr/bin before PATH, so Debian's chromium-driver would start
  # Debian's /usr/bin/chromium wrapper, not the browser the module chose (on NixOS: PATH).
  usrBinds =
    cfg:
    let
      reports = cfg.services.superset-async.finalSettings.reports or { };
    in
    lib.optionalString (reports.enabled or false) "${reports.webdriver.chromium_path}:/usr/bin/chromium\n";
in
lib.mapAttrs (
  name: cfg:
  pkgs.runCommand "harness-${name}"
    {
      testScript = if builtins.isFunction spec.testScript then spec.testScript { inherit nodes; } else spec.testScript;
      sysusers = sysusers cfg;
      binds = usrBinds cfg;
      passAsFile = [
        "testScript"
        "sysusers"
      ];
    }
    ''
      mkdir -p $out
      ln -s ${cfg.system.build.toplevel} $out/toplevel
      ln -s ${
        pkgs.symlinkJoin {
          name = "system-path";
          paths = cfg.environment.systemPackages;
        }
      } $out/sw
      cp "$testScriptPath" $out/test-script.py
      cp "$sysusersPath" $out/sysusers.conf
      echo -n "$binds" > $out/binds
    ''
) nodes
// {
  __names = lib.attrNames nodes;
}
