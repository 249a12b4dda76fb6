# services.superset-async: configurations the module must accept (with what it generates) and
# configurations it must refuse at evaluation time (with the message a user would read).
{ lib, pkgs, root, ... }:

let
  module = root + "/nix/modules/superset-async";
  # Evaluation only: the package is never run here, it only needs a bin/superset-async path.
  pkgs' = pkgs // {
    superset-async = pkgs.writeShellScriptBin "superset-async" "exit 0";
  };
  minimal = {
    services.superset-async = {
      enable = true;
      package = pkgs'.superset-async;
      secretKeyFile = "/run/keys/sk";
      globalAsyncQueries.jwtSecretFile = "/run/keys/jwt";
    };
  };
  full = lib.recursiveUpdate minimal {
    services.superset-async = {
      adminPasswordFile = "/run/keys/admin";
      redis.passwordFile = "/run/keys/redis";
      databases."ClickHouse (demo)" = {
        uri = "clickhousedb://superset@127.0.0.1:8123/demo";
        passwordFile = "/run/keys/clickhouse";
      };
    };
  };
  with' = extra: [
    module
    full
    extra
  ];
  svc = cfg: name: cfg.systemd.services.${name};
  sc = cfg: name: (svc cfg name).serviceConfig;
  unitText = cfg: name: cfg.system.build.units."${name}.service".text;
  final = cfg: cfg.services.superset-async.finalSettings;
  roles = [
    "superset-async-init"
    "superset-async-web"
    "superset-async-worker"
    "superset-async-beat"
  ];
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
in
[
  # ---- accepted -------------------------------------------------------------------------------
  (ok "minimal: secret key and GAQ secret give the whole stack" [ module minimal ] (cfg: [
    {
      name = "units";
      expected = true;
      got = lib.all (r: cfg.systemd.services ? ${r}) (roles ++ [ "redis-superset-async" ]);
    }
    {
      name = "web ExecStart is the glue's exec";
      got = (sc cfg "superset-async-web").ExecStart;
      contains = [
        "/bin/superset-async exec web --settings /nix/store/"
        "-superset-async-settings.json --config /nix/store/"
        "-superset_config.py"
      ];
    }
    {
      name = "worker and beat too";
      cond =
        lib.hasInfix " exec worker " (sc cfg "superset-async-worker").ExecStart
        && lib.hasInfix " exec beat " (sc cfg "superset-async-beat").ExecStart;
    }
    {
      name = "init bootstraps";
      got = (sc cfg "superset-async-init").ExecStart;
      contains = " bootstrap --settings ";
    }
    {
      name = "init is a oneshot that stays";
      expected = [ "oneshot" true ];
      got = [ (sc cfg "superset-async-init").Type (sc cfg "superset-async-init").RemainAfterExit ];
    }
  ]))

  (ok "every role is hardened like nixpkgs' pretix" (with' { }) (cfg: map (r: {
    name = "${r} hardening";
    cond =
      let
        c = sc cfg r;
      in
      c.ProtectSystem == "strict"
      && c.CapabilityBoundingSet == [ "" ]
      && c.NoNewPrivileges
      && c.PrivateTmp
      && c.PrivateDevices
      && c.UMask == "0077"
      && c.ProtectHome
      && c.RestrictNamespaces
      && c.LockPersonality
      && c.SystemCallArchitectures == "native"
      && lib.elem "@system-service" c.SystemCallFilter
      && lib.elem "~@privileged" c.SystemCallFilter
      && c.RestrictAddressFamilies == [ "AF_UNIX" "AF_INET" "AF_INET6" ]
      && c.User == "superset-async";
  }) roles))

  (ok "secrets reach every unit through LoadCredential, named like the glue's secret_files()" (with' { }) (cfg: [
    {
      name = "credentials";
      expected = [
        "admin_password:/run/keys/admin"
        "database_clickhouse_demo_password:/run/keys/clickhouse"
        "gaq_jwt_secret:/run/keys/jwt"
        "redis_password:/run/keys/redis"
        "secret_key:/run/keys/sk"
      ];
      got = (sc cfg "superset-async-web").LoadCredential;
    }
    {
      name = "same list for the worker";
      expected = (sc cfg "superset-async-web").LoadCredential;
      got = (sc cfg "superset-async-worker").LoadCredential;
    }
    {
      name = "unit file";
      got = unitText cfg "superset-async-beat";
      contains = [ "LoadCredential=secret_key:/run/keys/sk\n" "LoadCredential=gaq_jwt_secret:/run/keys/jwt\n" ];
    }
    {
      name = "settings carry paths, never contents";
      expected = "/run/keys/redis";
      got = (final cfg).redis.password_file;
    }
  ]))

  (ok "web, worker and beat start after Redis and init, want them, and do not stop with them" (with' { }) (cfg: lib.concatMap (r: [
    {
      name = "${r} after";
      cond = lib.all (u: lib.elem u (svc cfg r).after) [ "redis-superset-async.service" "superset-async-init.service" ];
    }
    {
      name = "${r} wants";
      cond = lib.all (u: lib.elem u (svc cfg r).wants) [ "redis-superset-async.service" "superset-async-init.service" ];
    }
    {
      name = "${r} requires nothing (a failed init or a stopped Redis would stop it)";
      expected = [ ];
      got = (svc cfg r).requires;
    }
  ]) [ "superset-async-web" "superset-async-worker" "superset-async-beat" ] ++ [
    {
      name = "init after Redis and the network being online";
      cond = lib.all (u: lib.elem u (svc cfg "superset-async-init").after) [ "redis-superset-async.service" "network-online.target" ];
    }
    {
      name = "init tries again after a failure";
      expected = [ "on-failure" "30s" ];
      got = [ (sc cfg "superset-async-init").Restart (sc cfg "superset-async-init").RestartSec ];
    }
    {
      name = "restart policies";
      expected = [ "on-failure" "always" "always" ];
      got = map (r: (sc cfg r).Restart) [ "superset-async-web" "superset-async-worker" "superset-async-beat" ];
    }
  ]))

  (ok "redis.createLocally: a dedicated Redis with socket, AOF and password; settings use it" (with' { }) (cfg: [
    {
      name = "redis server";
      expected = {
        enable = true;
        bind = "127.0.0.1";
        port = 6390;
        unixSocketPerm = 660;
        appendOnly = true;
        appendFsync = "always";
        requirePassFile = "/run/keys/redis";
      };
      got = {
        inherit (cfg.services.redis.servers.superset-async) enable bind port unixSocketPerm appendOnly appendFsync requirePassFile;
      };
    }
    {
      name = "settings.redis";
      expected = {
        host = "127.0.0.1";
        port = 6390;
        unix_socket = "/run/redis-superset-async/redis.sock";
        password_file = "/run/keys/redis";
      };
      got = (final cfg).redis;
    }
    {
      name = "socket group";
      expected = [ "redis-superset-async" ];
      got = (sc cfg "superset-async-worker").SupplementaryGroups;
    }
  ]))

  (ok "external Redis: no local server, TCP settings, no unit dependency"
    (with' {
      services.superset-async.redis = {
        createLocally = false;
        host = "redis.internal";
        port = 6379;
      };
    })
    (cfg: [
      {
        name = "no local redis";
        cond = !(cfg.systemd.services ? redis-superset-async);
      }
      {
        name = "settings.redis";
        expected = {
          host = "redis.internal";
          port = 6379;
          password_file = "/run/keys/redis";
        };
        got = (final cfg).redis;
      }
      {
        name = "no dependency on a local Redis";
        cond = !lib.elem "redis-superset-async.service" ((svc cfg "superset-async-web").wants ++ (svc cfg "superset-async-web").after);
      }
      {
        name = "beat off by default (hosts share the broker: one beat, enabled explicitly)";
        expected = {
          unit = false;
          enabled = false;
        };
        got = {
          unit = cfg.systemd.services ? superset-async-beat;
          enabled = (final cfg).beat.enabled;
        };
      }
    ]))

  (ok "external Redis with beat enabled explicitly: this host runs the stack's one beat"
    (with' {
      services.superset-async = {
        redis.createLocally = false;
        beat.enable = true;
      };
    })
    (cfg: [
      {
        name = "beat unit and setting";
        expected = {
          unit = true;
          enabled = true;
        };
        got = {
          unit = cfg.systemd.services ? superset-async-beat;
          enabled = (final cfg).beat.enabled;
        };
      }
    ]))

  (ok "worker-only host of a scaled-out stack"
    (with' {
      services.superset-async = {
        web.enable = false;
        beat.enable = false;
        redis.createLocally = false;
      };
    })
    (cfg: [
      {
        name = "only the worker";
        expected = [ "superset-async-worker" ];
        got = lib.filter (n: lib.hasPrefix "superset-async" n) (lib.attrNames cfg.systemd.services);
      }
      {
        name = "no init dependency (init runs on the web host)";
        cond = !lib.elem "superset-async-init.service" ((svc cfg "superset-async-worker").wants ++ (svc cfg "superset-async-worker").after);
      }
    ]))

  (ok "web host with an external worker pool may declare async databases"
    (with' {
      services.superset-async.worker = {
        enable = false;
        externalPool = true;
      };
    })
    (cfg: [
      {
        name = "no local worker";
        cond = !(cfg.systemd.services ? superset-async-worker);
      }
      {
        name = "database still async";
        expected = true;
        got = (lib.head (final cfg).databases).allow_run_async;
      }
    ]))

  (ok "GLOBAL_ASYNC_QUERIES off needs no JWT secret"
    [
      module
      (lib.recursiveUpdate minimal {
        services.superset-async.globalAsyncQueries = {
          enable = false;
          jwtSecretFile = null;
        };
      })
    ]
    (cfg: [
      {
        name = "no jwt credential";
        cond = lib.all (c: !lib.hasPrefix "gaq_jwt_secret:" c) (sc cfg "superset-async-web").LoadCredential;
      }
      {
        name = "settings";
        expected = { enabled = false; };
        got = (final cfg).global_async_queries;
      }
    ]))

  (ok "openFirewall opens the web port when it listens beyond loopback"
    (with' {
      services.superset-async = {
        openFirewall = true;
        web.listenAddress = "0.0.0.0";
        web.port = 8443;
      };
    })
    (cfg: [
      {
        name = "port";
        expected = [ 8443 ];
        got = cfg.networking.firewall.allowedTCPPorts;
      }
      {
        name = "no warning about it";
        cond = lib.all (w: !lib.hasInfix "openFirewall" w) cfg.warnings;
      }
    ]))

  (ok "openFirewall on loopback warns; no Redis password warns"
    [
      module
      (lib.recursiveUpdate minimal { services.superset-async.openFirewall = true; })
    ]
    (cfg: [
      {
        name = "warnings";
        cond =
          lib.any (lib.hasInfix "openFirewall is set but the web server listens on 127.0.0.1") cfg.warnings
          && lib.any (lib.hasInfix "redis.passwordFile is null") cfg.warnings
          && lib.any (lib.hasInfix "adminPasswordFile is null") cfg.warnings;
      }
    ]))

  (ok "only a custom group: the module's user gets it, and it is declared"
    (with' { services.superset-async.group = "bi"; })
    (cfg: [
      {
        name = "user's primary group";
        expected = "bi";
        got = cfg.users.users.superset-async.group;
      }
      {
        name = "group declared";
        cond = cfg.users.groups ? bi;
      }
    ]))

  (fail "a custom user whose group nobody declares is refused, as on NixOS"
    (with' {
      services.superset-async = {
        user = "bi";
        group = "bi";
      };
      users.users.bi = {
        isSystemUser = true;
        group = "bi";
      };
    })
    "users.users.bi.group is \"bi\", which no users.groups entry declares.")

  (ok "custom user and group are used and not created"
    (with' {
      services.superset-async = {
        user = "bi";
        group = "bi";
      };
      users.users.bi = {
        isSystemUser = true;
        group = "bi";
      };
      users.groups.bi = { };
    })
    (cfg: [
      {
        name = "User/Group";
        expected = [ "bi" "bi" ];
        got = [ (sc cfg "superset-async-web").User (sc cfg "superset-async-web").Group ];
      }
      {
        name = "no superset-async user";
        cond = !(cfg.users.users ? superset-async);
      }
    ]))

  (ok "free-form settings merge over the options"
    (with' {
      services.superset-async.settings = {
        sql_lab.timeout_seconds = 120;
        feature_flags.ALERT_REPORTS = true;
        celery.task_acks_late = true;
      };
    })
    (cfg: [
      {
        name = "merged";
        expected = [ 120 true true 8088 ];
        got = [
          (final cfg).sql_lab.timeout_seconds
          (final cfg).feature_flags.ALERT_REPORTS
          (final cfg).celery.task_acks_late
          (final cfg).web.port
        ];
      }
    ]))

  (ok "worker options reach the settings; stop waits for the hard time limit"
    (with' {
      services.superset-async.worker = {
        concurrency = 8;
        queues = [ "sqllab" "celery" ];
        maxTasksPerChild = 100;
        extraArgs = [ "--without-gossip" ];
      };
    })
    (cfg: [
      {
        name = "settings.worker";
        expected = {
          pool = "prefork";
          concurrency = 8;
          queues = [ "sqllab" "celery" ];
          max_tasks_per_child = 100;
          extra_args = [ "--without-gossip" ];
        };
        got = (final cfg).worker;
      }
      {
        name = "KillMode/TimeoutStopSec";
        expected = [ "mixed" 390 ];
        got = [ (sc cfg "superset-async-worker").KillMode (sc cfg "superset-async-worker").TimeoutStopSec ];
      }
    ]))

  (ok "PostgreSQL metadata database with its password as a credential"
    (with' {
      services.superset-async.metadataDatabase = {
        uri = "postgresql://superset@db.internal/superset";
        passwordFile = "/run/keys/pg";
      };
    })
    (cfg: [
      {
        name = "settings";
        expected = {
          uri = "postgresql://superset@db.internal/superset";
          password_file = "/run/keys/pg";
        };
        got = (final cfg).metadata_db;
      }
      {
        name = "credential";
        cond = lib.elem "metadata_db_password:/run/keys/pg" (sc cfg "superset-async-init").LoadCredential;
      }
    ]))

  (ok "settings and config are published in /etc and system.build" (with' { }) (cfg: [
    {
      name = "etc";
      cond = cfg.environment.etc ? "superset-async/settings.json" && cfg.environment.etc ? "superset-async/superset_config.py";
    }
    {
      name = "system.build";
      expected = [ "configFile" "package" "settingsFile" ];
      got = lib.attrNames cfg.system.build.supersetAsync;
    }
    {
      name = "verify wrapper";
      cond = lib.any (p: lib.hasInfix "superset-async-verify" (toString p)) cfg.environment.systemPackages;
    }
  ]))

  (ok "a database that does not run async needs no worker"
    (with' {
      services.superset-async.worker.enable = false;
      services.superset-async.databases."ClickHouse (demo)".allowRunAsync = false;
    })
    (cfg: [
      {
        name = "allow_run_async";
        expected = false;
        got = (lib.head (final cfg).databases).allow_run_async;
      }
    ]))

  (ok "stateDir sets SUPERSET_HOME, StateDirectory and the user's home"
    (with' { services.superset-async.stateDir = "/var/lib/superset-prod"; })
    (cfg: [
      {
        name = "StateDirectory";
        expected = [ "superset-prod" "/var/lib/superset-prod" "/var/lib/superset-prod" "/var/lib/superset-prod" ];
        got = [
          (sc cfg "superset-async-web").StateDirectory
          (sc cfg "superset-async-web").WorkingDirectory
          (final cfg).state_dir
          cfg.users.users.superset-async.home
        ];
      }
    ]))

  # ---- refused --------------------------------------------------------------------------------
  (fail "the seed's failure: async database, no worker, no external pool"
    (with' { services.superset-async.worker.enable = false; })
    [
      "\"ClickHouse (demo)\" set allowRunAsync = true"
      "services.superset-async.worker.enable = false"
      "Failed to start remote"
    ])

  (fail "GLOBAL_ASYNC_QUERIES without a JWT secret file"
    (with' { services.superset-async.globalAsyncQueries.jwtSecretFile = lib.mkForce null; })
    "services.superset-async.globalAsyncQueries.jwtSecretFile must be set")

  (fail "two Redis roles on one DB"
    (with' { services.superset-async.settings.redis.dbs.cache = 1; })
    "roles cache, results share Redis DB 1")

  (fail "async time limit shorter than the SQL Lab timeout"
    (with' { services.superset-async.settings.sql_lab.async_time_limit_seconds = 60; })
    "async_time_limit_seconds (60) is shorter than sql_lab.timeout_seconds (300)")

  (fail "gunicorn timeout shorter than the SQL Lab timeout"
    (with' { services.superset-async.web.timeout = 60; })
    "services.superset-async.web.timeout (60) is shorter than")

  (fail "a secret key written into settings"
    (with' { services.superset-async.settings.secret_key = "hunter2"; })
    "settings: secret_key would write a secret into the world-readable Nix store")

  (fail "a Redis password written into nested settings"
    (with' { services.superset-async.settings.redis.password = "hunter2"; })
    "redis.password would write a secret")

  (fail "a password in a database's extra JSON (it lands in the store with the settings)"
    (with' { services.superset-async.databases."ClickHouse (demo)".extra.password = "hunter2"; })
    "databases.[0].extra.password would write a secret")

  (fail "a secret file given as a store path through the freeform settings"
    (with' { services.superset-async.settings.redis.password_file = "${root + "/flake.lock"}"; })
    [ "redis_password (/nix/store/" "a secret file in the Nix store is readable by every user" ])

  (fail "a literal assigned to a secret-looking name in the escape hatch"
    (with' { services.superset-async.settings.extra_config = "SMTP_HOST = 'mail'\nSMTP_PASSWORD = 'hunter2'\n"; })
    "extra_config assigns a literal to a secret-looking name")

  (ok "the escape hatch may read a secret from a file at import"
    (with' { services.superset-async.settings.extra_config = "SMTP_PASSWORD = open('/run/credentials/x').read()\n"; })
    (cfg: [ { name = "accepted"; cond = cfg.services.superset-async.enable; } ]))

  (fail "a secret given as a literal string instead of a file"
    (with' { services.superset-async.secretKeyFile = lib.mkForce "hunter2"; })
    [ "services.superset-async.secretKeyFile" "absolute path of a secret file" ])

  (fail "a secret given as a Nix path literal (would be copied to the store)"
    (with' { services.superset-async.secretKeyFile = lib.mkForce (root + "/README.md"); })
    [ "services.superset-async.secretKeyFile" "not a Nix path" ])

  (fail "a secret file inside the Nix store"
    (with' { services.superset-async.adminPasswordFile = lib.mkForce "/nix/store/aaaa-admin"; })
    "services.superset-async.adminPasswordFile")

  (fail "no secret key file at all"
    [ module { services.superset-async = { enable = true; package = pkgs'.superset-async; globalAsyncQueries.jwtSecretFile = "/run/keys/jwt"; }; } ]
    "services.superset-async.secretKeyFile")

  (fail "a database URI carrying a password"
    (with' { services.superset-async.databases.bad.uri = "clickhousedb://u:hunter2@h:8123/d"; })
    "services.superset-async.databases.\"bad\".uri carries a password")

  (fail "a metadata URI carrying a password"
    (with' { services.superset-async.metadataDatabase.uri = "postgresql://su:pw@db/superset"; })
    "services.superset-async.metadataDatabase.uri carries a password")

  (fail "no role at all on the host"
    (with' {
      services.superset-async = {
        web.enable = false;
        worker.enable = false;
        beat.enable = false;
      };
    })
    "web, worker and beat are all disabled")

  (fail "a pool that does not enforce time limits"
    (with' { services.superset-async.worker.pool = "threads"; })
    "services.superset-async.worker.pool")

  (fail "a state directory outside /var/lib"
    (with' { services.superset-async.stateDir = "/srv/superset"; })
    "services.superset-async.stateDir")

  (fail "a web port out of range"
    (with' { services.superset-async.web.port = 70000; })
    "services.superset-async.web.port")

  (fail "a database password file given as a relative path"
    (with' { services.superset-async.databases."ClickHouse (demo)".passwordFile = lib.mkForce "keys/ch"; })
    "passwordFile")
]
