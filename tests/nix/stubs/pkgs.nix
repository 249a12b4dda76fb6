# A tiny stand-in for nixpkgs' `pkgs`, enough for NixOS-style modules to evaluate and for their
# generated files to be built on a machine that has Nix but no nixpkgs and no binary cache.
#
# Every builder is `builtins.derivation` with builder = /bin/sh and the host's /usr/bin:/bin on
# PATH, so builds need `sandbox = false`. Program packages (bash, coreutils, redis, python3, ...)
# are symlinks to the host's binaries: good enough to replay a unit's ExecStart here, not a
# reproducible build. What is left out, and why, is in ../README.md.
{
  lib,
  system ? builtins.currentSystem,
}:

let
  hostPath = "/usr/bin:/bin";

  # Derivation attributes must be strings, lists of strings, bools, ints or paths; `passthru` and
  # `meta` are Nix-side only, so they are attached to the result instead of being passed down.
  nixOnly = [ "passthru" "meta" "nativeBuildInputs" "buildInputs" ];

  # The one builder everything else goes through: run `script` with /bin/sh -e.
  shellDerivation =
    name: env: script:
    let
      inputs = (env.nativeBuildInputs or [ ]) ++ (env.buildInputs or [ ]);
      drv = derivation (
        {
          inherit name system;
          builder = "/bin/sh";
          args = [ "-ec" script ];
          PATH = lib.concatStringsSep ":" (map (p: "${p}/bin") inputs ++ [ hostPath ]);
          preferLocalBuild = true;
          allowSubstitutes = false;
        }
        // removeAttrs env nixOnly
      );
    in
    drv // { meta = env.meta or { }; } // (env.passthru or { });

  # A package whose bin/ holds the host's programs of the same name, or, when the host lacks one,
  # a script that says so and fails: modules only need the path to exist at evaluation time.
  hostTools =
    name: programs: extra:
    shellDerivation name { passthru = extra; } ''
      mkdir -p "$out/bin"
      for prog in ${lib.escapeShellArgs programs}; do
        if found=$(command -v "$prog"); then
          ln -s "$found" "$out/bin/$prog"
        else
          printf '#!/bin/sh\necho "%s: placeholder from tests/nix/stubs/pkgs.nix" >&2\nexit 127\n' "$prog" > "$out/bin/$prog"
          chmod +x "$out/bin/$prog"
        fi
      done
    '';

  self = {
    inherit lib system;
    stdenv.hostPlatform.system = system;
    stdenv.buildPlatform.system = system;

    runCommand = shellDerivation;
    runCommandLocal = shellDerivation;

    # Like nixpkgs: `destination` puts the file inside $out (e.g. "/bin/foo"); `checkPhase` runs
    # with $target pointing at the file, so a syntax check fails the build, not the service.
    writeTextFile =
      {
        name,
        text,
        executable ? false,
        destination ? "",
        checkPhase ? "",
        meta ? { },
        passthru ? { },
        ...
      }:
      shellDerivation name
        {
          inherit text meta;
          passAsFile = [ "text" ];
          passthru = passthru // {
            inherit text;
          };
        }
        ''
          target="$out"${lib.escapeShellArg destination}
          mkdir -p "$(dirname "$target")"
          cp "$textPath" "$target"
          ${lib.optionalString executable ''chmod +x "$target"''}
          ${checkPhase}
        '';

    writeText = name: text: self.writeTextFile { inherit name text; };

    writeScript =
      name: text:
      self.writeTextFile {
        inherit name text;
        executable = true;
      };

    writeShellScript =
      name: text:
      self.writeTextFile {
        inherit name;
        executable = true;
        text = "#!${self.runtimeShell}\n${text}";
        checkPhase = ''${self.runtimeShell} -n "$target"'';
      };

    writeShellScriptBin =
      name: text:
      self.writeTextFile {
        inherit name;
        executable = true;
        destination = "/bin/${name}";
        text = "#!${self.runtimeShell}\n${text}";
        checkPhase = ''${self.runtimeShell} -n "$target"'';
        meta.mainProgram = name;
      };

    # Links every file of every path into one tree (later paths lose on collisions).
    symlinkJoin =
      {
        name,
        paths,
        ...
      }:
      shellDerivation name { } ''
        mkdir -p "$out"
        for p in ${toString paths}; do cp -rsn "$p"/. "$out"/; done
      '';

    formats.json =
      { }:
      {
        # Any value builtins.toJSON can write.
        type =
          let
            value =
              with lib.types;
              nullOr (oneOf [
                bool
                int
                float
                str
                path
                (attrsOf value)
                (listOf value)
              ])
              // {
                description = "JSON value";
              };
          in
          value;
        # nixpkgs pretty-prints with jq; we write compact JSON. Parse it, don't diff its text.
        generate = name: value: self.writeText name (builtins.toJSON value);
      };

    callPackage = lib.callPackageWith self;

    runtimeShell = "${self.bash}/bin/bash";
    bash = hostTools "bash" [ "bash" "sh" ] { shellPath = "/bin/bash"; };
    coreutils = hostTools "coreutils" [
      "basename" "cat" "chmod" "chown" "cp" "cut" "date" "dirname" "echo" "env" "false" "head"
      "id" "install" "ln" "ls" "mkdir" "mktemp" "mv" "printf" "readlink" "realpath" "rm" "sleep"
      "sort" "stat" "tail" "tee" "test" "touch" "tr" "true" "uniq" "wc"
    ] { };
    findutils = hostTools "findutils" [ "find" "xargs" ] { };
    gnugrep = hostTools "gnugrep" [ "grep" ] { };
    gnused = hostTools "gnused" [ "sed" ] { };
    systemd = hostTools "systemd" [ "systemctl" "systemd-creds" "systemd-tmpfiles" "journalctl" ] { };
    # nixpkgs' redis module runs `${package}/bin/${package.serverBin or "redis-server"}`.
    redis = hostTools "redis" [ "redis-server" "redis-cli" ] { serverBin = "redis-server"; };
    # Alerts & Reports' browser and its driver (the module's defaults with reports on): Debian's
    # chromium and chromium-driver. bin/chromium stands for nixpkgs' wrapper script with the least a
    # wrapper does: exec the browser. Not Debian's /usr/bin/chromium wrapper: that one greps
    # /proc/cpuinfo for SSE3, which the worker unit's ProcSubset=pid hides ("lacks support for the
    # sse3 instruction set", exit 1), and sources /etc/chromium.d, absent in the harness's container.
    # The binary itself, linked here, would look for its resources beside the link.
    chromium = self.writeShellScriptBin "chromium" ''exec /usr/lib/chromium/chromium "$@"'';
    chromedriver = hostTools "chromedriver" [ "chromedriver" ] { };
    # Debian's fonts-dejavu-core; fontconfig finds it under /usr/share/fonts without any /etc/fonts.
    dejavu_fonts = shellDerivation "dejavu-fonts" { } ''
      mkdir -p "$out/share/fonts/truetype"
      ln -s /usr/share/fonts/truetype/dejavu "$out/share/fonts/truetype/dejavu"
    '';
    python3 =
      let
        py = hostTools "python3" [ "python3" ] {
          interpreter = "${py}/bin/python3";
          # No package set here: withPackages hands back the bare interpreter.
          withPackages = _: py;
        };
      in
      py;
  };
in
self
