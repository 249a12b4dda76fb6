# What the module's case files (./cases) share: nixpkgs with stand-ins for the packages the module
# names (evaluation only: none of them is ever run, each only needs a bin/ path), and the two case
# constructors. Not in ./cases itself, where every file is a table of cases.
{ pkgs }:

rec {
  pkgs' = pkgs // {
    superset-async = pkgs.writeShellScriptBin "superset-async" "exit 0";
    chromium = pkgs.writeShellScriptBin "chromium" "exit 0";
    chromedriver = pkgs.writeShellScriptBin "chromedriver" "exit 0";
  };
  ok = name: config: check: {
    inherit name config check;
    expect = "ok";
    pkgs = pkgs';
  };
  fail = name: config: message: {
    inherit name config message;
    expect = "fail";
    pkgs = pkgs';
  };
}
