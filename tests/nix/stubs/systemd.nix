# systemd.services / systemd.targets / systemd.tmpfiles as NixOS declares and renders them, for
# the options service modules use. Semantics imitated (not code): nixos/lib/systemd-lib.nix and
# nixos/lib/systemd-unit-options.nix. Rendered units land in system.build.units.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib) mkOption types;
  cfg = config.systemd;

  # systemd.unit(5): a unit name is built from these characters plus a known suffix.
  nameChars = "[a-zA-Z0-9@%:_.\\-]+";
  unitKinds = [ "service" "socket" "device" "mount" "automount" "swap" "target" "path" "timer" "scope" "slice" ];
  unitName = types.strMatching "${nameChars}[.](${lib.concatStringsSep "|" unitKinds})";
  isValidUnitName = n: builtins.match "${nameChars}[.](${lib.concatStringsSep "|" unitKinds})" n != null;

  isScalar =
    v:
    v == null
    || builtins.isBool v
    || builtins.isInt v
    || builtins.isFloat v
    || builtins.isString v
    || builtins.isPath v
    || lib.isDerivation v;

  # One setting of a [Unit]/[Service] section. Merging follows NixOS: once any definition is a
  # list the setting is repeatable and all definitions are appended (a lone string becomes one
  # more entry), so two modules can each add SystemCallFilter or LoadCredential entries; scalar
  # definitions must all be equal. mkForce/mkDefault are settled by the module system before
  # `merge` runs, so only the winning priority arrives here.
  unitValue = lib.mkOptionType {
    name = "systemdUnitValue";
    description = "systemd unit setting (string, number, boolean, path, package, or list of them)";
    descriptionClass = "noun";
    check = v: isScalar v || (builtins.isList v && lib.all isScalar v);
    merge =
      loc: defs:
      if lib.any (d: builtins.isList d.value) defs then
        lib.concatMap (d: lib.toList d.value) defs
      else
        lib.mergeEqualOption loc defs;
  };

  # null renders as an empty assignment, which resets the setting in systemd.
  renderValue =
    v:
    if v == true then
      "true"
    else if v == false then
      "false"
    else
      toString v;

  renderSection =
    title: lines: settings:
    "[${title}]\n"
    + lib.concatStrings lines
    + lib.concatStrings (
      lib.mapAttrsToList (k: v: lib.concatMapStrings (x: "${k}=${renderValue x}\n") (lib.toList v)) settings
    );

  # Store names allow fewer characters than unit names (no @ : % or spaces); a bad unit name must
  # still get as far as its assertion.
  storeSafe = lib.strings.sanitizeDerivationName;

  depOption =
    what:
    mkOption {
      type = types.listOf unitName;
      default = [ ];
      description = what;
    };

  # Options every unit kind has ([Unit] and [Install]).
  commonUnit =
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
          description = "Whether the unit exists; a disabled unit is left out of system.build.units.";
        };
        description = mkOption {
          type = types.singleLineStr;
          default = "";
          description = "Description= of the unit.";
        };
        documentation = mkOption {
          type = types.listOf types.str;
          default = [ ];
          description = "Documentation= URIs.";
        };
        wantedBy = depOption "Units that want this one (NixOS: .wants symlinks; rendered here as [Install] WantedBy=).";
        requiredBy = depOption "Units that require this one ([Install] RequiredBy= here).";
        requires = depOption "Requires=";
        wants = depOption "Wants=";
        after = depOption "After=";
        before = depOption "Before=";
        bindsTo = depOption "BindsTo=";
        partOf = depOption "PartOf=";
        conflicts = depOption "Conflicts=";
        onFailure = depOption "OnFailure=";
        unitConfig = mkOption {
          type = types.attrsOf unitValue;
          default = { };
          description = "Settings of the [Unit] section.";
        };
        startLimitBurst = mkOption {
          type = types.int;
          description = "StartLimitBurst= ([Unit]); unset means systemd's default.";
        };
        startLimitIntervalSec = mkOption {
          type = types.int;
          description = "StartLimitIntervalSec= ([Unit]); unset means systemd's default.";
        };
        restartTriggers = mkOption {
          type = types.listOf types.unspecified;
          default = [ ];
          description = "Anything whose change should restart the unit on switch (X-Restart-Triggers=).";
        };
        reloadTriggers = mkOption {
          type = types.listOf unitValue;
          default = [ ];
          description = "Anything whose change should reload the unit on switch (X-Reload-Triggers=).";
        };
      };

      # Like NixOS, the dependency lists become [Unit] settings, space-separated on one line.
      config.unitConfig =
        let
          line = key: list: lib.mkIf (list != [ ]) { ${key} = toString list; };
          triggers =
            key: list:
            lib.mkIf (list != [ ]) {
              ${key} = "${pkgs.writeText "${key}-${storeSafe name}" (
                toString (map (x: if builtins.isPath x then "${x}" else x) (lib.flatten list))
              )}";
            };
        in
        lib.mkMerge [
          (lib.mkIf (config.description != "") { Description = config.description; })
          (line "Documentation" config.documentation)
          (line "Requires" config.requires)
          (line "Wants" config.wants)
          (line "After" config.after)
          (line "Before" config.before)
          (line "BindsTo" config.bindsTo)
          (line "PartOf" config.partOf)
          (line "Conflicts" config.conflicts)
          (line "OnFailure" config.onFailure)
          (lib.mkIf options.startLimitBurst.isDefined { StartLimitBurst = config.startLimitBurst; })
          (lib.mkIf options.startLimitIntervalSec.isDefined {
            StartLimitIntervalSec = config.startLimitIntervalSec;
          })
          (triggers "X-Restart-Triggers" config.restartTriggers)
          (triggers "X-Reload-Triggers" config.reloadTriggers)
        ];
    };

  serviceUnit =
    { name, config, ... }:
    let
      # NixOS runs each script through `bash -e` from bin/<unit>-<kind> of a "unit-script-" package.
      jobScript =
        kind: text:
        let
          file = "${storeSafe name}-${kind}";
        in
        "${
          pkgs.writeTextFile {
            name = "unit-script-${file}";
            destination = "/bin/${file}";
            executable = true;
            text = "#!${pkgs.runtimeShell}\nset -e\n\n${text}\n";
            checkPhase = ''${pkgs.runtimeShell} -n "$target"'';
          }
        }/bin/${file}";
      scriptHooks = {
        preStart = "ExecStartPre";
        postStart = "ExecStartPost";
        reload = "ExecReload";
        preStop = "ExecStop";
        postStop = "ExecStopPost";
      };
      lines =
        what:
        mkOption {
          type = types.lines;
          default = "";
          description = what;
        };
    in
    {
      options = {
        environment = mkOption {
          type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]));
          default = { };
          description = "Environment= of the service; null entries are dropped.";
        };
        path = mkOption {
          type = types.listOf (types.oneOf [ types.package types.str ]);
          default = [ ];
          description = "Packages whose bin/ and sbin/ make the service's PATH.";
        };
        serviceConfig = mkOption {
          type = types.attrsOf unitValue;
          default = { };
          description = "Settings of the [Service] section.";
        };
        script = lines "Shell commands run as the main process (becomes ExecStart=).";
        scriptArgs = mkOption {
          type = types.str;
          default = "";
          description = "Arguments appended to the ExecStart= of `script`.";
        };
        preStart = lines "Shell commands run before the main process (appended to ExecStartPre=).";
        postStart = lines "Shell commands run after the main process started (ExecStartPost=).";
        reload = lines "Shell commands run on reload (ExecReload=).";
        preStop = lines "Shell commands run to stop the service (ExecStop=).";
        postStop = lines "Shell commands run after the main process exited (ExecStopPost=).";
        restartIfChanged = mkOption {
          type = types.bool;
          default = true;
          description = "Restart on switch when the unit changed (X-RestartIfChanged=).";
        };
        stopIfChanged = mkOption {
          type = types.bool;
          default = true;
          description = "Stop with the old unit, start with the new one (X-StopIfChanged=).";
        };
      };

      config = lib.mkMerge (
        [
          # NixOS's default PATH for every service; mkAfter so the module's own `path` comes first.
          { path = lib.mkAfter (with pkgs; [ coreutils findutils gnugrep gnused systemd ]); }
          (lib.mkIf (config.path != [ ]) {
            environment.PATH = "${lib.makeSearchPath "bin" config.path}:${lib.makeSearchPath "sbin" config.path}";
          })
          (lib.mkIf (config.script != "") {
            serviceConfig.ExecStart =
              jobScript "start" config.script + lib.optionalString (config.scriptArgs != "") " ${config.scriptArgs}";
          })
        ]
        ++ lib.mapAttrsToList (
          opt: key:
          lib.mkIf (config.${opt} != "") {
            # ExecStartPre/Post are lists so that a module's own entries are appended, not in conflict.
            serviceConfig.${key} =
              let
                s = jobScript opt config.${opt};
              in
              if key == "ExecStartPre" || key == "ExecStartPost" then [ s ] else s;
          }
        ) scriptHooks
      );
    };

  serviceText =
    s:
    let
      env = lib.filterAttrs (_: v: v != null) (cfg.globalEnvironment // s.environment);
      envLines = lib.mapAttrsToList (k: v: "Environment=${builtins.toJSON "${k}=${v}"}\n") env;
      switchLines =
        lib.optional (!s.restartIfChanged) "X-RestartIfChanged=false\n"
        ++ lib.optional (!s.stopIfChanged) "X-StopIfChanged=false\n";
    in
    renderSection "Service" (envLines ++ switchLines) s.serviceConfig;

  unitText =
    body: u:
    let
      install = lib.filterAttrs (_: v: v != "") {
        WantedBy = toString u.wantedBy;
        RequiredBy = toString u.requiredBy;
      };
    in
    lib.concatStringsSep "\n" (
      [ (renderSection "Unit" [ ] u.unitConfig) ]
      ++ lib.optional (body != null) (body u)
      ++ lib.optional (install != { }) (renderSection "Install" [ ] install)
    );

  # name.kind -> the unit file as a derivation; `.text` has the same content for evaluation checks.
  renderUnits =
    kind: body: units:
    lib.mapAttrs' (
      n: u:
      let
        file = "${n}.${kind}";
        text = unitText body u;
      in
      lib.nameValuePair file (pkgs.writeText "unit-${storeSafe file}" text // { inherit text; })
    ) (lib.filterAttrs (_: u: u.enable) units);

  serviceTypes = [ "simple" "exec" "forking" "oneshot" "dbus" "notify" "notify-reload" "idle" ];
  restartValues = [ "no" "on-success" "on-failure" "on-abnormal" "on-watchdog" "on-abort" "always" ];

  tmpfilesEntry =
    { name, ... }:
    {
      options = {
        type = mkOption {
          type = types.str;
          default = name;
          readOnly = true;
          description = "tmpfiles.d(5) line type; the attribute name.";
        };
      }
      // lib.genAttrs [ "mode" "user" "group" "age" ] (
        field:
        mkOption {
          type = types.str;
          default = "-";
          description = "The ${field} column; \"-\" leaves it unset.";
        }
      )
      // {
        argument = mkOption {
          type = types.str;
          default = "";
          description = "The argument column.";
        };
      };
    };

  tmpfilesLines =
    lib.concatLists (
      lib.mapAttrsToList (
        _file: paths:
        lib.concatLists (
          lib.mapAttrsToList (
            path: entries:
            lib.mapAttrsToList (
              _: e: lib.concatStringsSep " " ([ e.type path e.mode e.user e.group e.age ] ++ lib.optional (e.argument != "") e.argument)
            ) entries
          ) paths
        )
      ) cfg.tmpfiles.settings
    )
    ++ cfg.tmpfiles.rules;
in
{
  options.systemd = {
    package = mkOption {
      type = types.package;
      default = pkgs.systemd;
      defaultText = lib.literalExpression "pkgs.systemd";
      description = "The systemd package (host binaries in the offline stubs).";
    };
    globalEnvironment = mkOption {
      type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]));
      default = { };
      description = "Environment for every service; a service's own `environment` wins.";
    };
    services = mkOption {
      type = types.attrsOf (types.submodule [ commonUnit serviceUnit ]);
      default = { };
      description = "systemd services, by name without the .service suffix.";
    };
    targets = mkOption {
      type = types.attrsOf (types.submodule commonUnit);
      default = { };
      description = "systemd targets, by name without the .target suffix.";
    };
    tmpfiles = {
      rules = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "Raw tmpfiles.d(5) lines.";
      };
      settings = mkOption {
        type = types.attrsOf (types.attrsOf (types.attrsOf (types.submodule tmpfilesEntry)));
        default = { };
        description = "tmpfiles.d(5) entries as settings.<file>.<path>.<type> = { mode, user, group, age, argument }.";
      };
    };
  };

  config = {
    system.build.units =
      renderUnits "service" serviceText cfg.services // renderUnits "target" null cfg.targets;
    system.build.tmpfiles = pkgs.writeText "tmpfiles-nixos.conf" (lib.concatMapStrings (l: "${l}\n") tmpfilesLines);

    assertions =
      lib.mapAttrsToList (n: _: {
        assertion = isValidUnitName "${n}.service";
        message = "systemd.services.\"${n}\": \"${n}.service\" is not a valid unit name; systemd.unit(5) allows only ASCII letters, digits and @ % : _ . - in unit names.";
      }) cfg.services
      ++ lib.mapAttrsToList (n: _: {
        assertion = isValidUnitName "${n}.target";
        message = "systemd.targets.\"${n}\": \"${n}.target\" is not a valid unit name; systemd.unit(5) allows only ASCII letters, digits and @ % : _ . - in unit names.";
      }) cfg.targets
      ++ lib.concatLists (
        lib.mapAttrsToList (
          n: s:
          let
            sc = s.serviceConfig;
            type = sc.Type or "simple";
            starts = lib.toList (sc.ExecStart or [ ]);
          in
          # NixOS rejects unknown Type=/Restart= values by type check; the message here is ours.
          [
            {
              assertion = lib.elem type serviceTypes;
              message = "systemd.services.${n}.serviceConfig.Type is \"${toString type}\"; systemd knows ${lib.concatStringsSep ", " serviceTypes}.";
            }
            {
              assertion = !(sc ? Restart) || lib.elem sc.Restart restartValues;
              message = "systemd.services.${n}.serviceConfig.Restart is \"${toString (sc.Restart or "")}\"; systemd knows ${lib.concatStringsSep ", " restartValues}.";
            }
          ]
          # Not checked by NixOS, but systemd refuses to load such units, so fail here instead.
          ++ lib.optionals s.enable [
            {
              assertion = starts != [ ] || type == "oneshot" && sc ? ExecStop;
              message = "systemd.services.${n} has no ExecStart= (set `script` or serviceConfig.ExecStart); systemd refuses such a service.";
            }
            {
              assertion = lib.length starts <= 1 || type == "oneshot";
              message = "systemd.services.${n} has ${toString (lib.length starts)} ExecStart= lines but Type=${type}; only Type=oneshot may have several.";
            }
          ]
        ) cfg.services
      );
  };
}
