# The system-wide NixOS options a service module touches -- assertions/warnings, environment.etc,
# environment.systemPackages, boot.kernel.sysctl, system.build, system.stateVersion, meta -- and
# system.build.toplevel, which (as on NixOS) refuses to exist while an assertion fails.
# Imitates nixos/modules/misc/assertions.nix, system/etc/etc.nix, system/activation/top-level.nix.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib) mkOption types;

  etcEntry =
    {
      name,
      config,
      options,
      ...
    }:
    {
      options = {
        enable = mkOption {
          type = types.bool;
          default = true;
          description = "Whether the file is put in /etc.";
        };
        target = mkOption {
          type = types.str;
          default = name;
          description = "Path relative to /etc.";
        };
        text = mkOption {
          type = types.nullOr types.lines;
          default = null;
          description = "Contents; sets `source` to a store file.";
        };
        source = mkOption {
          type = types.path;
          description = "The file (or directory) to link or copy.";
        };
        mode = mkOption {
          type = types.str;
          default = "symlink";
          description = "\"symlink\", or an octal mode to copy the file with that mode.";
        };
        user = mkOption {
          type = types.str;
          default = "+0";
          description = "Owner of a copied file.";
        };
        group = mkOption {
          type = types.str;
          default = "+0";
          description = "Group of a copied file.";
        };
      };
      # Same priority as `text`, so a mkForce'd text still wins over a plain source.
      config.source = lib.mkIf (config.text != null) (
        lib.mkDerivedConfig options.text (pkgs.writeText "etc-${builtins.replaceStrings [ "/" ] [ "-" ] name}")
      );
    };

  etcEntries = lib.filter (e: e.enable) (lib.attrValues config.environment.etc);

  # The /etc tree: symlinks into the store, or copies with the requested mode.
  etcTree = pkgs.runCommand "etc" { } (
    "mkdir -p $out/etc\n"
    + lib.concatMapStrings (e: ''
      target=$out/etc/${lib.escapeShellArg e.target}
      mkdir -p "$(dirname "$target")"
      ${
        if e.mode == "symlink" then
          ''ln -s ${e.source} "$target"''
        else
          ''cp -rL ${e.source} "$target"; chmod ${lib.escapeShellArg e.mode} "$target"''
      }
    '') etcEntries
  );

  # meta.doc may be set by several modules; keep each one under the file that set it.
  perFile = lib.mkOptionType {
    name = "perFile";
    description = "value kept per defining file";
    merge = _loc: defs: lib.listToAttrs (map (d: lib.nameValuePair (toString d.file) d.value) defs);
  };

  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  manifest = {
    inherit (config.system) stateVersion;
    users = lib.mapAttrs (_: u: { inherit (u) isSystemUser group extraGroups home createHome uid; }) config.users.users;
    groups = lib.mapAttrs (_: g: { inherit (g) gid members; }) config.users.groups;
    firewall = config.system.build.firewall;
    sysctl = config.boot.kernel.sysctl;
    systemPackages = map (p: "${p}") config.environment.systemPackages;
  };

  toplevel = pkgs.runCommand "nixos-system-offline-stub"
    {
      manifest = builtins.toJSON manifest;
      passAsFile = [ "manifest" ];
    }
    ''
      mkdir -p $out/etc/systemd/system $out/etc/tmpfiles.d
      cp -rP ${etcTree}/etc/. $out/etc/
      ${lib.concatStrings (
        lib.mapAttrsToList (n: u: "ln -s ${u} $out/etc/systemd/system/${lib.escapeShellArg n}\n") config.system.build.units
      )}
      ln -s ${config.system.build.tmpfiles} $out/etc/tmpfiles.d/00-nixos.conf
      cp "$manifestPath" $out/manifest.json
    '';
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      internal = true;
      default = [ ];
      example = [
        {
          assertion = false;
          message = "you can't enable this for that reason";
        }
      ];
      description = "Conditions that must hold; system.build.toplevel throws the messages of those that don't.";
    };
    warnings = mkOption {
      type = types.listOf types.str;
      internal = true;
      default = [ ];
      description = "Messages printed (with lib.warn) when system.build.toplevel is evaluated.";
    };

    environment.etc = mkOption {
      type = types.attrsOf (types.submodule etcEntry);
      default = { };
      description = "Files in /etc.";
    };
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
      description = "Packages in the system profile.";
    };

    boot.kernel.sysctl = mkOption {
      type = types.attrsOf (types.nullOr (types.oneOf [ types.bool types.str types.int ]));
      default = { };
      description = "Kernel parameters.";
    };

    system.stateVersion = mkOption {
      type = types.str;
      default = lib.trivial.release;
      description = "NixOS release whose stateful defaults the machine keeps.";
    };
    # As on NixOS: an open set of build products; each key may be defined once.
    system.build = mkOption {
      type = types.submoduleWith {
        modules = [ { freeformType = types.lazyAttrsOf (types.uniq types.unspecified); } ];
      };
      default = { };
      description = "Build products of the configuration: units, etc, tmpfiles, toplevel, ...";
    };

    meta = {
      maintainers = mkOption {
        type = types.listOf types.raw;
        default = [ ];
        description = "Maintainers of the modules.";
      };
      teams = mkOption {
        type = types.listOf types.raw;
        default = [ ];
        description = "Teams maintaining the modules.";
      };
      doc = mkOption {
        type = perFile;
        description = "Documentation file of a module.";
      };
      buildDocsInSandbox = mkOption {
        type = types.bool;
        default = true;
        description = "Whether the module's docs build in the sandbox.";
      };
    };
  };

  config.system.build = {
    etc = etcTree;
    # Touching toplevel is the "build the system" step: it fails with every false assertion's
    # message, in NixOS's format, and prints the warnings.
    toplevel =
      if failedAssertions != [ ] then
        throw "\nFailed assertions:\n${lib.concatMapStringsSep "\n" (m: "- ${m}") failedAssertions}"
      else
        lib.foldr lib.warn toplevel config.warnings;
  };
}
