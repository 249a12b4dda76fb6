# services.redis.servers.<name>: what nixpkgs' redis module (nixos/modules/services/databases/
# redis.nix) gives a module that consumes it -- the option defaults (user "redis-<name>", socket
# /run/redis-<name>/redis.sock mode 660, port 0), and a `redis-<name>` service with the same
# identity, directories and hardening keys, so that additions to that unit merge, or conflict,
# as they would on NixOS. Sentinel and replication options are left out.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib) mkOption types;
  cfg = config.services.redis;

  unitBase = name: if name == "" then "redis" else "redis-${name}";
  enabled = lib.filterAttrs (_: s: s.enable) cfg.servers;

  # redis.conf: "key value" lines, booleans as yes/no, lists as repeated keys.
  confValue =
    v:
    if v == true then
      "yes"
    else if v == false then
      "no"
    else
      toString v;
  redisConf =
    settings:
    pkgs.writeText "redis.conf" (
      lib.concatStrings (
        lib.mapAttrsToList (k: v: lib.concatMapStrings (x: "${k} ${confValue x}\n") (lib.toList v)) settings
      )
    );

  serverModule =
    { name, config, ... }:
    let
      opt =
        type: default: description:
        mkOption { inherit type default description; };
    in
    {
      options = {
        enable = lib.mkEnableOption "this Redis server";
        user = opt types.str (unitBase name) "Account the server runs as; created when left at the default." // {
          defaultText = lib.literalExpression ''"redis-''${name}"'';
        };
        group = opt types.str config.user "Group the server runs as; created when left at the default." // {
          defaultText = lib.literalExpression "config.user";
        };
        port = opt types.port (if name == "" then 6379 else 0) "TCP port; 0 disables TCP.";
        bind = opt (types.nullOr types.str) "127.0.0.1" "Address to listen on; null means all.";
        unixSocket = opt (types.nullOr types.path) "/run/${unitBase name}/redis.sock" "Unix socket path." // {
          defaultText = lib.literalExpression ''"/run/redis-''${name}/redis.sock"'';
        };
        unixSocketPerm = opt types.int 660 "Socket permissions (octal digits as an integer).";
        openFirewall = opt types.bool false "Open `port` in the firewall.";
        extraParams = opt (types.listOf types.str) [ ] "Extra redis-server arguments.";
        logLevel = opt types.str "notice" "loglevel.";
        logfile = opt types.str "/dev/null" "logfile.";
        syslog = opt types.bool true "syslog-enabled.";
        databases = opt types.int 16 "Number of databases.";
        maxclients = opt types.int 10000 "maxclients.";
        save = opt (types.listOf (types.listOf types.int)) [
          [ 900 1 ]
          [ 300 10 ]
          [ 60 10000 ]
        ] "RDB snapshots as [seconds changes] pairs; [] disables them.";
        appendOnly = opt types.bool false "appendonly.";
        appendFsync = opt types.str "everysec" "appendfsync.";
        requirePass = opt (types.nullOr types.str) null "Password, stored world-readable in the store.";
        requirePassFile = opt (types.nullOr types.path) null "File holding the password, read at start.";
        settings = opt (types.attrsOf (types.oneOf [ types.bool types.int types.str (types.listOf types.str) ])) { } "redis.conf settings; the typed options above fill it.";
      };

      # The typed options are plain definitions of `settings`, so setting e.g. settings.port as
      # well conflicts, as it does in nixpkgs.
      config.settings = lib.mkMerge [
        {
          inherit (config) port logfile databases maxclients;
          appendonly = config.appendOnly;
          appendfsync = config.appendFsync;
          daemonize = false;
          supervised = "systemd";
          loglevel = config.logLevel;
          syslog-enabled = config.syslog;
          dbfilename = "dump.rdb";
          dir = "/var/lib/${unitBase name}";
          save =
            if config.save == [ ] then ''""'' else map (p: lib.concatMapStringsSep " " toString p) config.save;
        }
        (lib.mkIf (config.bind != null) { inherit (config) bind; })
        (lib.mkIf (config.unixSocket != null) {
          unixsocket = config.unixSocket;
          unixsocketperm = toString config.unixSocketPerm;
        })
        (lib.mkIf (config.requirePass != null) { requirepass = config.requirePass; })
      ];
    };

  serverUnit =
    name: s:
    let
      base = unitBase name;
      # Run as root ("+"): the config in the state dir includes the store file, and a password
      # file is read without being put in the store.
      prepare = pkgs.writeShellScript "${base}-prep-conf" ''
        conf=/var/lib/${base}/redis.conf
        run=/run/${base}/nixos.conf
        touch "$conf" "$run"
        chown ${lib.escapeShellArg "${s.user}:${s.group}"} "$conf" "$run"
        chmod 0600 "$conf" "$run"
        [ -s "$conf" ] || echo "include \"$run\"" > "$conf"
        echo 'include "${redisConf s.settings}"' > "$run"
        ${lib.optionalString (s.requirePassFile != null) ''
          echo "requirepass $(cat ${lib.escapeShellArg s.requirePassFile})" >> "$run"
        ''}
      '';
    in
    {
      description = "Redis Server - ${base}";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      serviceConfig = {
        Type = "notify";
        ExecStartPre = "+${prepare}";
        ExecStart = "${cfg.package}/bin/${cfg.package.serverBin or "redis-server"} /var/lib/${base}/redis.conf ${lib.escapeShellArgs s.extraParams}";
        User = s.user;
        Group = s.group;
        RuntimeDirectory = base;
        RuntimeDirectoryMode = "0750";
        StateDirectory = base;
        StateDirectoryMode = "0700";
        UMask = "0077";
        LimitNOFILE = lib.mkDefault (toString (s.maxclients + 32));
        # The hardening nixpkgs applies; kept key for key so that a module adding to this unit
        # sees the same merges. Note SystemCallFilter is a single string there: a list added to
        # it is appended after it.
        CapabilityBoundingSet = "";
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        PrivateMounts = true;
        PrivateUsers = true;
        ProtectClock = true;
        ProtectControlGroups = true;
        ProtectHostname = true;
        ProtectKernelLogs = true;
        ProtectKernelModules = true;
        ProtectKernelTunables = true;
        RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = "~@cpu-emulation @debug @keyring @memlock @mount @obsolete @privileged @resources @setuid";
      };
    };
in
{
  options.services.redis = {
    package = lib.mkPackageOption pkgs "redis" { };
    vmOverCommit = mkOption {
      type = types.bool;
      default = true;
      description = "Set vm.overcommit_memory = 1 (nixpkgs' default).";
    };
    servers = mkOption {
      type = types.attrsOf (types.submodule serverModule);
      default = { };
      description = "Redis server instances; each enabled one becomes the redis-<name> service.";
    };
  };

  config = lib.mkIf (enabled != { }) {
    assertions = lib.mapAttrsToList (name: s: {
      assertion = s.requirePass == null || s.requirePassFile == null;
      message = "You can only set one of services.redis.servers.${name}.requirePass or services.redis.servers.${name}.requirePassFile";
    }) enabled;

    boot.kernel.sysctl = lib.mkIf cfg.vmOverCommit { "vm.overcommit_memory" = "1"; };
    environment.systemPackages = [ cfg.package ];
    networking.firewall.allowedTCPPorts = lib.concatMap (s: lib.optional s.openFirewall s.port) (
      lib.attrValues enabled
    );

    systemd.services = lib.mapAttrs' (name: s: lib.nameValuePair (unitBase name) (serverUnit name s)) enabled;

    users.users = lib.mapAttrs' (
      name: s:
      lib.nameValuePair (unitBase name) {
        description = "System user for the redis-server instance ${name}";
        isSystemUser = true;
        inherit (s) group;
      }
    ) (lib.filterAttrs (name: s: s.user == unitBase name) enabled);
    users.groups = lib.mapAttrs' (name: _: lib.nameValuePair (unitBase name) { }) (
      lib.filterAttrs (name: s: s.group == unitBase name) enabled
    );
  };
}
