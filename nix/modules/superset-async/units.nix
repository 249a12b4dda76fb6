# The four units. Every long-running role is `superset-async exec ROLE`: the glue turns the settings
# into the gunicorn/celery command line (python/superset_async_glue/commands.py), the same one the
# local runner starts, so the two cannot drift apart.
{
  config,
  lib,
  ...
}:

let
  inherit (lib) mkIf optional optionals;
  cfg = config.services.superset-async;
  # The same values the glue renders from: the units read `settings`, never a copy of it.
  s = cfg.settings;
  stateDir = s.state_dir;
  exe = "${cfg.package}/bin/superset-async";
  files = "--settings ${cfg.settingsFile} --config ${cfg.configFile}";
  redisUnit = optional cfg.redis.createLocally "redis-superset-async.service";
  initUnit = optional cfg.init.enable "superset-async-init.service";

  # Celery's hard time limit of an SQL Lab query, plus room for a warm shutdown to finish it.
  hardLimit = s.sql_lab.async_time_limit_seconds + s.sql_lab.hard_time_limit_grace_seconds;
  reportsOn = s.reports.enabled or false;

  commonUnitConfig = {
    after = [ "network.target" ] ++ redisUnit;
    # Wants=, not Requires=: stopping or restarting Redis (or a failed init) must not stop web, worker
    # and beat; they reconnect when Redis is back, and verify names what is missing meanwhile.
    wants = redisUnit;
    # Some libraries (matplotlib, numba caches, gunicorn) write below $HOME.
    environment.HOME = stateDir;
    serviceConfig = {
      User = cfg.user;
      Group = cfg.group;
      StateDirectory = lib.removePrefix "/var/lib/" stateDir;
      StateDirectoryMode = "0750";
      WorkingDirectory = stateDir;
      LoadCredential = lib.mapAttrsToList (name: path: "${name}:${path}") cfg.credentials;
      SupplementaryGroups = optional cfg.redis.createLocally "redis-superset-async"; # the Redis socket
      UMask = "0077";

      # Hardening, at the level of nixpkgs' pretix module.
      AmbientCapabilities = "";
      CapabilityBoundingSet = [ "" ];
      DevicePolicy = "closed";
      LockPersonality = true;
      MemoryDenyWriteExecute = true;
      NoNewPrivileges = true;
      PrivateDevices = true;
      PrivateTmp = true;
      ProcSubset = "pid";
      ProtectClock = true;
      ProtectControlGroups = true;
      ProtectHome = true;
      ProtectHostname = true;
      ProtectKernelLogs = true;
      ProtectKernelModules = true;
      ProtectKernelTunables = true;
      ProtectProc = "invisible";
      ProtectSystem = "strict";
      RemoveIPC = true;
      RestrictAddressFamilies = [
        "AF_UNIX"
        "AF_INET"
        "AF_INET6"
      ];
      RestrictNamespaces = true;
      RestrictRealtime = true;
      RestrictSUIDSGID = true;
      SystemCallArchitectures = "native";
      SystemCallFilter = [
        "@system-service"
        "~@privileged"
      ];
    };
  };

  role =
    extra:
    lib.recursiveUpdate commonUnitConfig (
      extra
      // {
        after = commonUnitConfig.after ++ initUnit ++ (extra.after or [ ]);
        wants = commonUnitConfig.wants ++ initUnit;
      }
    );
  # SQL Lab lanes (settings.sql_lab.lanes, docs/nixos.md): each gets a worker of its own,
  # `exec worker --lane NAME`, consuming only its queue with its own prefork children, so the lane's
  # databases never wait behind the shared queue. Nix only reads the names; the glue validates lanes.
  lanes = lib.attrNames (s.sql_lab.lanes or { });
  laneUnit = lane: "superset-async-worker-${lane}";

  # The worker's unit, and a lane's (lane = its name; null: the main worker). One function, so both
  # always get the same sandbox, credentials, restart and stop behaviour.
  workerUnit =
    lane:
    role {
      description =
        if lane == null then
          "Superset Celery worker (SQL Lab async queries, reports, GAQ)"
        else
          "Superset Celery worker of the SQL Lab lane ${lane}";
      wantedBy = [ "multi-user.target" ];
      serviceConfig = {
        ExecStart = "${exe} exec worker ${lib.optionalString (lane != null) "--lane ${lane} "}${files}";
        # Started once it is ready: its main process sends READY=1 when Celery's consumer is
        # (worker_app.py); its pool children and Chromium never get $NOTIFY_SOCKET.
        Type = "notify";
        NotifyAccess = "main";
        TimeoutStartSec = "5min"; # Superset's app build on a loaded host, not a hang
        Restart = "always";
        RestartSec = "5s";
        # SIGTERM only to the main process: Celery's warm shutdown lets running queries finish
        # (up to their hard time limit) before systemd kills what is left.
        KillMode = "mixed";
        TimeoutStopSec = hardLimit + 30;
      }
      # Alerts & Reports: the worker runs headless Chromium (docs/reports.md, measured by
      # tests/python/test_reports.py). It calls fchown, pkey_alloc and landlock_create_ruleset, which
      # the syscall filter refuses: EPERM lets it carry on, the default action kills it. With
      # reports.webdriver.jitless off, V8's JIT needs writable and executable memory.
      // lib.optionalAttrs reportsOn {
        SystemCallErrorNumber = "EPERM";
        MemoryDenyWriteExecute = s.reports.webdriver.jitless or true;
      };
    };
in
{
  # Environment, credentials, ordering and hardening every role's unit shares, for units declared
  # in other files of the module (flower.nix).
  options.services.superset-async.unitBase = lib.mkOption {
    type = lib.types.attrs;
    readOnly = true;
    internal = true;
    default = role { };
    description = "The settings every role's unit shares (environment, credentials, ordering, hardening).";
  };

  # The units that run a Celery worker here (the worker and one per lane), for what other files of
  # the module do to all of them (database.nix: ordering after the local PostgreSQL).
  options.services.superset-async.workerUnits = lib.mkOption {
    type = lib.types.listOf lib.types.str;
    readOnly = true;
    internal = true;
    default = optionals cfg.worker.enable ([ "superset-async-worker" ] ++ map laneUnit lanes);
    description = "The names of this host's Celery worker units: the worker and one per SQL Lab lane.";
  };

  config = mkIf cfg.enable {
    users.users = mkIf (cfg.user == "superset-async") {
      superset-async = {
        isSystemUser = true;
        inherit (cfg) group;
        home = stateDir;
        description = "Apache Superset (superset-async)";
      };
    };
    # The module's own user gets its group declared whatever its name (NixOS refuses a user whose
    # primary group no users.groups entry declares); a custom user brings its own group.
    users.groups = mkIf (cfg.user == "superset-async" || cfg.group == "superset-async") { ${cfg.group} = { }; };

    networking.firewall.allowedTCPPorts = optionals (cfg.openFirewall && cfg.web.enable && !cfg.nginx.enable) [ s.web.port ];

    systemd.services = {
      superset-async-init = mkIf cfg.init.enable (
        lib.recursiveUpdate commonUnitConfig {
          description = "Superset: migrations, admin user, roles and databases";
          wantedBy = [ "multi-user.target" ];
          # Databases, a metadata DB or a Redis on other hosts may come up after this host.
          after = commonUnitConfig.after ++ [ "network-online.target" ];
          wants = commonUnitConfig.wants ++ [ "network-online.target" ];
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
            ExecStart = "${exe} bootstrap ${files}";
            TimeoutStartSec = "15min"; # first migrations on a slow disk
            # A step that failed (an unreachable database) is tried again; the other units do not
            # wait for it (they only order after the first attempt).
            Restart = "on-failure";
            RestartSec = "30s";
          };
        }
      );

      superset-async-web = mkIf cfg.web.enable (role {
        description = "Superset web server (gunicorn)";
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          ExecStart = "${exe} exec web ${files}";
          Restart = "on-failure";
          RestartSec = "5s";
        };
      });

      superset-async-worker = mkIf cfg.worker.enable (workerUnit null);

      superset-async-beat = mkIf cfg.beat.enable (role {
        description = "Superset Celery beat (reports every minute, log pruning daily)";
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          ExecStart = "${exe} exec beat ${files}";
          Restart = "always";
          RestartSec = "5s";
        };
      });
    }
    // lib.listToAttrs (map (lane: lib.nameValuePair (laneUnit lane) (mkIf cfg.worker.enable (workerUnit lane))) lanes);
  };
}
