# The few helpers of NixOS' `utils` module argument that service modules call.
{ lib }:

rec {
  # One argument for an Exec*= line: systemd splits on whitespace and honours C-style double
  # quotes (which JSON string syntax is a subset of), and expands % specifiers and $VARIABLES,
  # so those are doubled to stay literal.
  escapeSystemdExecArg =
    arg:
    let
      s =
        if builtins.isString arg || builtins.isPath arg || lib.isDerivation arg then
          "${arg}"
        else if builtins.isInt arg || builtins.isFloat arg then
          toString arg
        else
          throw "escapeSystemdExecArg takes a string, path, number or derivation, not a ${builtins.typeOf arg}";
    in
    builtins.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON s);

  escapeSystemdExecArgs = args: lib.concatMapStringsSep " " escapeSystemdExecArg args;

  # `systemd-escape --path`, for the characters that turn up in service paths: "/" separates,
  # "-" must itself be escaped.
  escapeSystemdPath =
    path:
    builtins.replaceStrings [ "-" "/" ] [ "\\x2d" "-" ] (lib.removeSuffix "/" (lib.removePrefix "/" path));
}
