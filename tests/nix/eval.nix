# Offline evaluation harness: NixOS-style modules evaluated with the real nixpkgs lib and our
# stubs (./stubs), against the case tables in ./cases. Driven by ./run; usable by hand:
#
#   nix-instantiate --eval --strict --json tests/nix/eval.nix -A batch
#   nix-instantiate --eval --strict --json tests/nix/eval.nix -A one --argstr file stubs-selftest.nix --argstr case "<name>"
#   nix-build tests/nix/eval.nix -A builds.<name>.toplevel
#
# A case file (cases/*.nix) is a list of cases, or a function of some of { lib, pkgs, utils, root,
# evalConfig } returning one. The case format is documented in ./README.md.
{
  lib ? (import ./nixpkgs-lib.nix { }).lib,
  # Pure evaluation (nix flake check) has no builtins.currentSystem: the flake passes its own.
  system ? builtins.currentSystem,
  file ? null,
  case ? null,
}:

let
  stubPkgs = import ./stubs/pkgs.nix { inherit lib system; };
  utils = import ./stubs/utils.nix { inherit lib; };
  root = ../..;

  # Like nixos/lib/eval-config.nix, minus everything but our stubs.
  evalConfig =
    {
      modules,
      pkgs ? stubPkgs,
    }:
    lib.evalModules {
      class = "nixos";
      modules = import ./stubs ++ [ { _module.args = { inherit pkgs utils; }; } ] ++ modules;
    };

  # "Accepted" means the system would build: computing toplevel's drvPath needs every assertion to
  # hold and every unit, /etc file and tmpfiles line (with their option values) to render.
  force = c: cfg: builtins.seq cfg.system.build.toplevel.drvPath (builtins.deepSeq ((c.force or (_: null)) cfg) true);

  loadFile =
    dir: name:
    let
      raw = import (dir + "/${name}");
      args = {
        inherit lib utils root evalConfig;
        pkgs = stubPkgs;
      };
      value = if builtins.isFunction raw then raw (builtins.intersectAttrs (builtins.functionArgs raw) args) else raw;
    in
    value;

  validate =
    fileName: cases:
    let
      where = c: "${fileName}: case \"${c.name or "?"}\"";
      check =
        c:
        if !(builtins.isAttrs c && c ? name && builtins.isString c.name && c ? config) then
          throw "${where c}: a case needs `name` (string) and `config` (module or list of modules)"
        else if c.expect or null == "ok" then
          (if c ? message then throw "${where c}: `message` is only for expect = \"fail\"" else c)
        else if c.expect or null == "fail" then
          (
            if lib.all builtins.isString (lib.toList (c.message or null)) then
              c
            else
              throw "${where c}: expect = \"fail\" needs `message`: a substring of the error, or a list of them"
          )
        else
          throw "${where c}: `expect` must be \"ok\" or \"fail\"";
      names = map (c: c.name or "") cases;
      dupes = lib.filter (n: lib.count (m: m == n) names > 1) (lib.unique names);
    in
    if !builtins.isList cases then
      throw "${fileName} must evaluate to a list of cases"
    else if dupes != [ ] then
      throw "${fileName}: duplicate case names: ${lib.concatStringsSep ", " dupes}"
    else
      map (c: check c // { source = "tests/nix/cases/${fileName}"; }) cases;

  caseFiles = lib.sort lib.lessThan (
    lib.filter (lib.hasSuffix ".nix") (lib.attrNames (builtins.readDir ./cases))
  );
  casesOf = f: validate f (loadFile ./cases f);

  # Each case's modules are named after the case, so error messages say where a definition is from.
  configOf =
    c:
    (evalConfig {
      modules = map (m: {
        _file = "${c.source or "tests/nix/builds"}, case \"${c.name or "?"}\"";
        imports = [ m ];
      }) (lib.toList c.config);
      pkgs = c.pkgs or stubPkgs;
    }).config;

  pretty = lib.generators.toPretty { multiline = false; };

  # One entry of a case's `check` list -> { name, pass } plus what was expected/found on failure.
  runCheck =
    ch:
    let
      name = ch.name or (throw "a check needs a `name`");
      verdict =
        if ch ? cond then
          {
            pass = ch.cond == true;
            expected = "true";
            got = pretty ch.cond;
          }
        else if ch ? contains then
          let
            missing = lib.filter (s: !lib.hasInfix s ch.got) (lib.toList ch.contains);
          in
          {
            pass = missing == [ ];
            expected = "a string containing ${pretty missing}";
            got = pretty ch.got;
          }
        else if ch ? expected then
          {
            pass = ch.expected == ch.got;
            expected = pretty ch.expected;
            got = pretty ch.got;
          }
        else
          throw "check \"${name}\" needs `cond`, `expected` + `got`, or `contains` + `got`";
    in
    { inherit name; inherit (verdict) pass; } // lib.optionalAttrs (!verdict.pass) { inherit (verdict) expected got; };

  # Forces the configuration, then its checks; errors propagate (the runner reads them on stderr).
  evaluated =
    c:
    let
      cfg = configOf c;
      checks = map runCheck ((c.check or (_: [ ])) cfg);
    in
    builtins.seq (force c cfg) (builtins.deepSeq checks {
      status = "evaluated";
      inherit checks;
    });

  findCase =
    f: n:
    let
      hits = lib.filter (c: c.name == n) (casesOf f);
    in
    if hits == [ ] then throw "${f} has no case named \"${n}\"" else lib.head hits;
in
{
  inherit evalConfig utils;
  pkgs = stubPkgs;

  # Every file's cases; accepted ones evaluated under tryEval. tryEval only catches `throw`
  # (assertions and module-system errors), so the runner re-runs, one process each, any case that
  # errors here -- or all of them, if something uncatchable stops this whole evaluation.
  # Rejected cases are only listed: each needs its own process to read the message.
  batch = map (f: {
    file = f;
    cases = map (
      c:
      { inherit (c) name expect; }
      // (
        if c.expect == "ok" then
          let
            r = builtins.tryEval (evaluated c);
          in
          if r.success then r.value else { status = "error"; }
        else
          { message = lib.toList c.message; }
      )
    ) (casesOf f);
  }) caseFiles;

  # The cases without evaluating any: what the runner falls back on when `batch` cannot finish.
  list = map (f: {
    file = f;
    cases = map (c: {
      inherit (c) name expect;
      message = lib.toList (c.message or [ ]);
    }) (casesOf f);
  }) caseFiles;

  # One case, for a process of its own: an accepted case yields its checks; a rejected one should
  # never get to yield { status = "evaluated"; }.
  one = evaluated (findCase file case);

  # Configurations to build with the /bin/sh builders (./builds/*.nix): the runner builds
  # `toplevel` and compares the unit files with `lines` / `patterns`; with `fails`, the build must
  # fail instead (a check that runs only when building, e.g. the glue validating the settings) and
  # its log contain each string.
  builds = lib.listToAttrs (
    map (
      f:
      let
        b = loadFile ./builds f;
        cfg = configOf b;
      in
      lib.nameValuePair (lib.removeSuffix ".nix" f) {
        inherit (cfg.system.build) toplevel;
        texts = lib.mapAttrs (_: u: u.text) cfg.system.build.units;
        lines = b.lines or { };
        patterns = b.patterns or { };
        fails = lib.toList (b.fails or [ ]);
      }
    ) (lib.filter (lib.hasSuffix ".nix") (lib.attrNames (builtins.readDir ./builds)))
  );
}
