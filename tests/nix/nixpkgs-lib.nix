# The nixpkgs lib that flake.lock pins (input "nixpkgs-lib"), found without network.
# `.lib` is the library; `.present`/`.storePath` let the runner say what is missing.
{
  lockFile ? ../../flake.lock,
  input ? "nixpkgs-lib",
}:

let
  hint = "run scripts/setup (with NIXPKGS_LIB_SOURCE=<a .tar.gz of the locked revision, or its directory> where Nix cannot fetch it)";
  lock =
    if builtins.pathExists lockFile then
      builtins.fromJSON (builtins.readFile lockFile)
    else
      throw "${toString lockFile} does not exist; it must pin the flake input \"${input}\"";
  nodeName = lock.nodes.${lock.root}.inputs.${input} or (throw "flake.lock has no input \"${input}\"");
  locked =
    if builtins.isString nodeName then
      lock.nodes.${nodeName}.locked
    else
      throw "flake.lock: input \"${input}\" follows another input; pin it directly";

  # fetchTree answers from the store when the locked source is there, but otherwise downloads
  # (retrying for seconds, then failing with a network error). The store path is the fixed-output
  # path of narHash under the name "source", which a derivation's outPath gives without building.
  # (Without its string context, or pathExists would try to build that derivation.)
  storePath = builtins.unsafeDiscardStringContext
    (derivation {
      name = "source";
      system = "builtin";
      builder = "builtin:none";
      outputHashMode = "recursive";
      outputHashAlgo = "sha256";
      outputHash = locked.narHash;
    }).outPath;
  present = builtins.pathExists storePath;
  src =
    if present then
      (builtins.fetchTree locked).outPath
    else
      throw "the nixpkgs lib pinned in flake.lock (${locked.rev or "?"}) is not in the Nix store (${storePath}); ${hint}";
in
{
  inherit locked storePath present src;
  lib = import "${src}/lib";
}
