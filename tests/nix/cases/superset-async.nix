# services.superset-async: configurations the module must accept (with what it generates) and
# configurations it must refuse at evaluation time (with the message a user would read).
{ lib, pkgs, root, ... }:

let
  module = root + "/nix/modules/superset-async";
  inherit (import ../case-kit.nix { inherit pkgs; }) pkgs' ok fail;
  minimal = {
    services.superset-async = {
      enable = true;
      package = pkgs'.superset-async;
      settings = {
        secret_key_file = "/run/keys/sk";
        global_async_queries.jwt_secret_file = "/run/keys/jwt";
        redis.password_file = "/run/keys/redis";
      };
    };
  };
  full = lib.recursiveUpdate minimal {
    services.superset-async.settings = {
      admin.password_file = "/run/keys/admin";
      databases."ClickHouse (demo)" = {
        uri = "clickhousedb://superset@127.0.0.1:8123/demo";
        password_file = "/run/keys/clickhouse";
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
  redisServer = cfg: cfg.services.redis.servers.superset-async;
  roles = [
    "superset-async-init"
    "superset-async-web"
    "superset-async-worker"
    "superset-async-beat"
  ];
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
      services.superset-async = {
        redis.createLocally = false;
        settings.redis = {
          host = "redis.internal";
          port = 6379;
        };
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
          unix_socket = null;
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
        settings.metadata_db.uri = "postgresql://superset@db.internal/superset"; # SQLite is one host's
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
      services.superset-async.settings.metadata_db.uri = "postgresql://superset@db.internal/superset";
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
        services.superset-async.settings.global_async_queries = {
          enabled = false;
          jwt_secret_file = null;
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
        expected = {
          enabled = false;
          jwt_secret_file = null;
        };
        got = (final cfg).global_async_queries;
      }
    ]))

  (ok "openFirewall opens the web port when it listens beyond loopback"
    (with' {
      services.superset-async = {
        openFirewall = true;
        settings.web = {
          bind = "0.0.0.0";
          port = 8443;
        };
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

  (ok "openFirewall on loopback warns; no admin password warns"
    [
      module
      (lib.recursiveUpdate minimal { services.superset-async.openFirewall = true; })
    ]
    (cfg: [
      {
        name = "warnings";
        cond =
          lib.any (lib.hasInfix "openFirewall is set but the web server listens on 127.0.0.1") cfg.warnings
          && lib.any (lib.hasInfix "settings.admin.password_file is null") cfg.warnings;
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
        feature_flags.DATASET_FOLDERS = true;
        celery.task_acks_late = true;
      };
    })
    (cfg: [
      {
        name = "merged";
        expected = [ 120 true true 8088 ];
        got = [
          (final cfg).sql_lab.timeout_seconds
          (final cfg).feature_flags.DATASET_FOLDERS
          (final cfg).celery.task_acks_late
          (final cfg).web.port
        ];
      }
    ]))

  (ok "worker options reach the settings; stop waits for the hard time limit"
    (with' {
      services.superset-async.settings.worker = {
        concurrency = 8;
        queues = [ "sqllab" "celery" ];
        max_tasks_per_child = 100;
        extra_args = [ "--without-gossip" ];
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
      services.superset-async.settings.metadata_db = {
        uri = "postgresql://superset@db.internal/superset";
        password_file = "/run/keys/pg";
      };
    })
    (cfg: [
      {
        name = "settings";
        expected = {
          uri = "postgresql://superset@db.internal/superset";
          password_file = "/run/keys/pg";
          backups_kept = 5;
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
      services.superset-async.settings.databases."ClickHouse (demo)".allow_run_async = false;
    })
    (cfg: [
      {
        name = "allow_run_async";
        expected = false;
        got = (lib.head (final cfg).databases).allow_run_async;
      }
    ]))

  (ok "settings.state_dir sets SUPERSET_HOME, StateDirectory and the user's home"
    (with' { services.superset-async.settings.state_dir = "/var/lib/superset-prod"; })
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

  # ---- one settings surface: what the module runs reads the value the glue renders from ------
  (ok "every value the module itself uses is set through settings, and units, Redis and settings agree"
    (with' {
      services.superset-async = {
        openFirewall = true;
        settings = {
          state_dir = "/var/lib/superset-prod";
          redis = {
            port = 7000;
            host = "::1";
            unix_socket = "/run/redis-superset-async/stack.sock";
            password_file = lib.mkForce "/run/keys/redis-2";
          };
          web = {
            bind = "0.0.0.0";
            port = 8443;
          };
          sql_lab = {
            timeout_seconds = 600;
            async_time_limit_seconds = 900;
            hard_time_limit_grace_seconds = 30;
          };
        };
      };
    })
    (cfg: [
      {
        name = "Redis: the module's server and the glue's settings";
        expected = {
          server = {
            inherit (cfg.services.superset-async.settings.redis) port;
            bind = "::1";
            unixsocket = "/run/redis-superset-async/stack.sock";
            requirePassFile = "/run/keys/redis-2";
          };
          glue = {
            port = 7000;
            host = "::1";
            unix_socket = "/run/redis-superset-async/stack.sock";
            password_file = "/run/keys/redis-2";
          };
        };
        got = {
          server = {
            inherit ((redisServer cfg).settings) port bind unixsocket;
            inherit (redisServer cfg) requirePassFile;
          };
          glue = { inherit ((final cfg).redis) port host unix_socket password_file; };
        };
      }
      {
        name = "Redis credential is the same file";
        cond = lib.elem "redis_password:/run/keys/redis-2" (sc cfg "superset-async-web").LoadCredential;
      }
      {
        name = "state directory: StateDirectory, WorkingDirectory, HOME, the user's home and state_dir";
        expected = [ "superset-prod" "/var/lib/superset-prod" "/var/lib/superset-prod" "/var/lib/superset-prod" "/var/lib/superset-prod" ];
        got = [
          (sc cfg "superset-async-worker").StateDirectory
          (sc cfg "superset-async-worker").WorkingDirectory
          (svc cfg "superset-async-worker").environment.HOME
          cfg.users.users.superset-async.home
          (final cfg).state_dir
        ];
      }
      {
        name = "web port: the firewall opens the port the glue binds";
        expected = [ [ 8443 ] 8443 "0.0.0.0" ];
        got = [ cfg.networking.firewall.allowedTCPPorts (final cfg).web.port (final cfg).web.bind ];
      }
      {
        name = "worker stop waits for the glue's hard time limit (900 + 30) plus 30 s";
        expected = [ 960 900 30 ];
        got = [
          (sc cfg "superset-async-worker").TimeoutStopSec
          (final cfg).sql_lab.async_time_limit_seconds
          (final cfg).sql_lab.hard_time_limit_grace_seconds
        ];
      }
      {
        name = "the unit file and the redis.conf settings carry the same values";
        got = unitText cfg "superset-async-worker" + builtins.toJSON (redisServer cfg).settings;
        contains = [ "StateDirectory=superset-prod\n" "TimeoutStopSec=960\n" "\"port\":7000" ];
      }
    ]))

  (ok "defaults: the module's own Redis on 6390 and its socket, both in the glue's settings"
    (with' { })
    (cfg: [
      {
        name = "server and settings";
        expected = [ 6390 6390 "/run/redis-superset-async/redis.sock" "/run/redis-superset-async/redis.sock" ];
        got = [
          (redisServer cfg).port
          (final cfg).redis.port
          (redisServer cfg).unixSocket
          (final cfg).redis.unix_socket
        ];
      }
    ]))

  (ok "the old option names still work, with a warning naming the new option"
    [
      module
      {
        services.superset-async = {
          enable = true;
          package = pkgs'.superset-async;
          stateDir = "/var/lib/superset-old";
          secretKeyFile = "/run/keys/sk";
          adminPasswordFile = "/run/keys/admin";
          globalAsyncQueries.jwtSecretFile = "/run/keys/jwt";
          redis = {
            port = 7001;
            passwordFile = "/run/keys/redis";
          };
          web = {
            listenAddress = "0.0.0.0";
            timeout = 400;
          };
          worker.maxTasksPerChild = 10;
          metadataDatabase.uri = "postgresql://superset@db/superset";
          databases."ClickHouse" = {
            uri = "clickhousedb://superset@127.0.0.1:8123/demo";
            passwordFile = "/run/keys/ch";
            allowDml = true;
          };
        };
      }
    ]
    (cfg: [
      {
        name = "values reach settings";
        expected = {
          state_dir = "/var/lib/superset-old";
          secret_key_file = "/run/keys/sk";
          admin = "/run/keys/admin";
          jwt = "/run/keys/jwt";
          port = 7001;
          redis_server_port = 7001;
          bind = "0.0.0.0";
          timeout = 400;
          tasks = 10;
          metadata = "postgresql://superset@db/superset";
          db = {
            name = "ClickHouse";
            uri = "clickhousedb://superset@127.0.0.1:8123/demo";
            password_file = "/run/keys/ch";
            allow_dml = true;
            allow_run_async = true;
            expose_in_sqllab = true;
            extra = { };
          };
        };
        got = with final cfg; {
          inherit state_dir secret_key_file;
          admin = admin.password_file;
          jwt = global_async_queries.jwt_secret_file;
          inherit (redis) port;
          redis_server_port = (redisServer cfg).port;
          inherit (web) bind;
          timeout = web.timeout_seconds;
          tasks = worker.max_tasks_per_child;
          metadata = metadata_db.uri;
          db = lib.head databases;
        };
      }
      {
        name = "a warning per old option, naming the new one";
        cond = lib.all (w: lib.any (lib.hasInfix w) cfg.warnings) [
          "`services.superset-async.stateDir' defined in"
          "has been renamed to `services.superset-async.settings.state_dir'"
          "`services.superset-async.web.listenAddress' defined in"
          "renamed to `services.superset-async.settings.web.bind'"
          "renamed to `services.superset-async.settings.web.timeout_seconds'"
          "`services.superset-async.databases' defined in"
          "passwordFile -> password_file"
        ];
      }
    ]))

  (ok "credential names come from the contract: its slug examples hold in Nix" (with' { }) (cfg:
    lib.mapAttrsToList (name: expected: {
      name = "slug of ${name}";
      inherit expected;
      got = cfg.services.superset-async.credentialSlug name;
    }) (lib.importJSON (module + "/contract.json")).credentials.slug.examples))

  (ok "settings.secret_files: one credential per key, on every unit"
    (with' {
      services.superset-async.settings.secret_files = {
        MAPBOX_API_KEY = "/run/keys/mapbox";
        AUTH_OAUTH_SECRET = "/run/keys/oauth";
      };
    })
    (cfg: map (r: {
      name = "${r} credentials";
      cond = lib.all (c: lib.elem c (sc cfg r).LoadCredential) [
        "secret_file_mapbox_api_key:/run/keys/mapbox"
        "secret_file_auth_oauth_secret:/run/keys/oauth"
      ];
    }) roles ++ [
      {
        name = "in the glue's settings";
        expected = { MAPBOX_API_KEY = "/run/keys/mapbox"; AUTH_OAUTH_SECRET = "/run/keys/oauth"; };
        got = (final cfg).secret_files;
      }
    ]))

  (ok "a local Redis without a password, reached only through its socket with GAQ off: no TCP port"
    [
      module
      {
        services.superset-async = {
          enable = true;
          package = pkgs'.superset-async;
          settings = {
            secret_key_file = "/run/keys/sk";
            global_async_queries.enabled = false;
          };
        };
      }
    ]
    (cfg: [
      {
        name = "socket only";
        expected = [ 0 "/run/redis-superset-async/redis.sock" 660 null ];
        got = [ (redisServer cfg).port (redisServer cfg).unixSocket (redisServer cfg).unixSocketPerm (redisServer cfg).requirePassFile ];
      }
      {
        name = "only the services' group reaches it";
        expected = [ "redis-superset-async" ];
        got = (sc cfg "superset-async-web").SupplementaryGroups;
      }
    ]))

  (ok "the module's own meta" (with' { }) (cfg: [
    {
      name = "meta.maintainers declared";
      cond = builtins.isList cfg.meta.maintainers;
    }
  ]))

  # ---- refused --------------------------------------------------------------------------------
  (fail "the seed's failure: async database, no worker, no external pool"
    (with' { services.superset-async.worker.enable = false; })
    [
      "\"ClickHouse (demo)\" set allow_run_async = true"
      "services.superset-async.worker.enable = false"
      "Failed to start remote"
    ])

  (fail "Redis without a password is refused (pickles: code execution)"
    (with' { services.superset-async.settings.redis.password_file = lib.mkForce null; })
    [ "services.superset-async.settings.redis.password_file is null" "a password is required" "group redis-superset-async" ])

  (fail "an external Redis without a password is refused too"
    (with' {
      services.superset-async = {
        redis.createLocally = false;
        settings.redis.password_file = lib.mkForce null;
      };
    })
    "services.superset-async.settings.redis.password_file is null")

  (fail "no password and GAQ on (it needs TCP): the socket alone is not enough"
    (with' { services.superset-async.settings.redis.password_file = lib.mkForce null; services.superset-async.settings.redis.unix_socket = "/run/redis-superset-async/redis.sock"; })
    "settings.global_async_queries.enabled = false (its backend can only use TCP)")

  (fail "the module's own Redis cannot listen beyond loopback"
    (with' { services.superset-async.settings.redis.host = "0.0.0.0"; })
    "services.superset-async.settings.redis.host is 0.0.0.0")

  (fail "the module's own Redis cannot put its socket outside its runtime directory"
    (with' { services.superset-async.settings.redis.unix_socket = "/run/other/redis.sock"; })
    "only create its socket in its runtime directory")

  (fail "a secret key written into settings"
    (with' { services.superset-async.settings.secret_key = "hunter2"; })
    "settings: secret_key would write a secret into the world-readable Nix store")

  (fail "a Redis password written into nested settings"
    (with' { services.superset-async.settings.redis.password = "hunter2"; })
    "redis.password would write a secret")

  (fail "a password in a database's extra JSON (it lands in the store with the settings)"
    (with' { services.superset-async.settings.databases."ClickHouse (demo)".extra.engine_params.connect_args.password = "hunter2"; })
    "databases.ClickHouse (demo).extra.engine_params.connect_args.password would write a secret")

  (fail "an API key or token anywhere in the settings"
    (with' { services.superset-async.settings.feature_flags_extra = { MAPBOX_API_KEY = "pk.x"; slack.access_token = "xoxb"; }; })
    [ "feature_flags_extra.MAPBOX_API_KEY" "feature_flags_extra.slack.access_token" ])

  (fail "a secret file given as a store path through a freeform key"
    (with' { services.superset-async.settings.redis.tls.key_file = "${root + "/flake.lock"}"; })
    [ "redis.tls.key_file (/nix/store/" "a secret file in the Nix store is readable by every user" ])

  (fail "a database password file in the store"
    (with' { services.superset-async.settings.databases.other = { uri = "clickhousedb://u@h/d"; password_file = "${root + "/flake.lock"}"; }; })
    "services.superset-async.settings.databases.other.password_file")

  (fail "a secret_files entry in the store"
    (with' { services.superset-async.settings.secret_files.MAPBOX_API_KEY = "${root + "/flake.lock"}"; })
    "services.superset-async.settings.secret_files.MAPBOX_API_KEY")

  (fail "a secret_files key that is not a Superset config key"
    (with' { services.superset-async.settings.secret_files."smtp-password" = "/run/keys/smtp"; })
    "settings.secret_files: smtp-password is not a Superset config key")

  (fail "a literal assigned to a secret-looking name in the escape hatch"
    (with' { services.superset-async.settings.extra_config = "SMTP_HOST = 'mail'\nSMTP_PASSWORD = 'hunter2'\n"; })
    [ "extra_config assigns a literal to a secret-looking name" "settings.secret_files" ])

  (fail "an API key in the escape hatch"
    (with' { services.superset-async.settings.extra_config = "MAPBOX_API_KEY = \"pk.x\"\n"; })
    "extra_config assigns a literal to a secret-looking name")

  (ok "the escape hatch may read a secret from a file at import, and set other keys"
    (with' { services.superset-async.settings.extra_config = "SMTP_PASSWORD = open('/run/credentials/x').read()\nCACHE_KEY_PREFIX = 'superset_'\n"; })
    (cfg: [ { name = "accepted"; cond = cfg.services.superset-async.enable; } ]))

  (fail "a secret given as a literal string instead of a file"
    (with' { services.superset-async.settings.secret_key_file = lib.mkForce "hunter2"; })
    [ "services.superset-async.settings.secret_key_file" "absolute path of a secret file" ])

  (fail "a secret given as a Nix path literal (would be copied to the store)"
    (with' { services.superset-async.settings.secret_key_file = lib.mkForce (root + "/README.md"); })
    [ "services.superset-async.settings.secret_key_file" "not a Nix path" ])

  (fail "a secret file inside the Nix store"
    (with' { services.superset-async.settings.admin.password_file = lib.mkForce "/nix/store/aaaa-admin"; })
    "services.superset-async.settings.admin.password_file")

  (fail "no secret key file at all"
    [ module { services.superset-async = { enable = true; package = pkgs'.superset-async; settings.redis.password_file = "/run/keys/r"; }; } ]
    "services.superset-async.settings.secret_key_file")

  (fail "a database URI carrying a password"
    (with' { services.superset-async.settings.databases.bad.uri = "clickhousedb://u:hunter2@h:8123/d"; })
    "services.superset-async.settings.databases.\"bad\".uri carries a password")

  (fail "a metadata URI carrying a password"
    (with' { services.superset-async.settings.metadata_db.uri = "postgresql://su:pw@db/superset"; })
    "services.superset-async.settings.metadata_db.uri carries a password")

  (fail "no role at all on the host"
    (with' {
      services.superset-async = {
        web.enable = false;
        worker.enable = false;
        beat.enable = false;
      };
    })
    "web, worker and beat are all disabled")

  (fail "beat set in settings against beat.enable conflicts"
    (with' { services.superset-async.settings.beat.enabled = false; })
    "services.superset-async.settings.beat.enabled")

  (fail "a pool the glue does not know (its enum, from the contract)"
    (with' { services.superset-async.settings.worker.pool = "eventlet"; })
    [ "services.superset-async.settings.worker.pool" "one of \"prefork\", \"threads\", \"solo\"" ])

  (fail "a state directory outside /var/lib"
    (with' { services.superset-async.settings.state_dir = "/srv/superset"; })
    "services.superset-async.settings.state_dir")

  (fail "a web port out of the glue's range (from the contract)"
    (with' { services.superset-async.settings.web.port = 70000; })
    [ "services.superset-async.settings.web.port" "between 1 and 65535" ])

  (fail "a database password file given as a relative path"
    (with' { services.superset-async.settings.databases."ClickHouse (demo)".password_file = lib.mkForce "keys/ch"; })
    "password_file")
  # ---- nginx.enable: the TLS reverse proxy (nginx.nix) -----------------------------------------
  (ok "nginx: the proxy in front, ACME, public_url set and the web on loopback"
    (with' {
      services.superset-async = {
        nginx = {
          enable = true;
          virtualHostName = "superset.example.org";
        };
        openFirewall = true;
        settings.web.timeout_seconds = 120;
      };
      security.acme = {
        acceptTerms = true;
        defaults.email = "ops@example.org";
      };
    })
    (cfg:
      let
        vhost = cfg.services.nginx.virtualHosts."superset.example.org";
        root = vhost.locations."/";
        rendered = cfg.system.build.nginxVirtualHosts."superset.example.org";
      in
      [
        { name = "nginx on"; cond = cfg.services.nginx.enable; }
        { name = "proxyPass to the web on loopback"; expected = "http://127.0.0.1:8088"; got = root.proxyPass; }
        { name = "HTTPS forced, certificate from ACME"; cond = vhost.forceSSL && vhost.enableACME; }
        { name = "ACME certificate requested"; expected = "superset.example.org"; got = cfg.security.acme.certs."superset.example.org".domain; }
        {
          name = "public_url is the virtual host (secure cookies, ProxyFix, HSTS in the rendered config)";
          expected = "https://superset.example.org/";
          got = (final cfg).web.public_url;
        }
        { name = "web on loopback"; expected = "127.0.0.1"; got = (final cfg).web.bind; }
        {
          name = "the headers ProxyFix reads, websockets' Upgrade, body size, timeouts past gunicorn's";
          got = rendered;
          contains = [
            "listen 0.0.0.0:443 ssl;"
            "return 301 https://$host$request_uri;"
            "ssl_certificate /var/lib/acme/superset.example.org/fullchain.pem;"
            "proxy_pass http://127.0.0.1:8088;"
            "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"
            "proxy_set_header X-Forwarded-Proto $scheme;"
            "proxy_set_header Host $host;"
            "proxy_set_header Upgrade $http_upgrade;"
            "proxy_set_header Connection $connection_upgrade;"
            "client_max_body_size 100m;"
            "proxy_read_timeout 130s;"
          ];
        }
        { name = "openFirewall opens the proxy's ports, not the web's"; expected = [ 80 443 ]; got = cfg.networking.firewall.allowedTCPPorts; }
        { name = "no warning (web on loopback is the point here)"; expected = [ ]; got = cfg.warnings; }
      ]))

  (ok "nginx: certificate files instead of ACME, the virtual host extended, the web port followed"
    (with' {
      services.superset-async = {
        nginx = {
          enable = true;
          virtualHostName = "bi.example.org";
          sslCertificate = "/var/lib/certs/bi/fullchain.pem";
          sslCertificateKey = "/var/lib/certs/bi/key.pem";
          clientMaxBodySize = "500m";
          virtualHost = {
            serverAliases = [ "superset.internal" ];
            locations."/robots.txt".return = "200 'User-agent: *\\nDisallow: /\\n'";
          };
        };
        settings.web = {
          port = 9000;
          public_url = "https://bi.example.org/superset/";
        };
      };
    })
    (cfg:
      let
        vhost = cfg.services.nginx.virtualHosts."bi.example.org";
      in
      [
        { name = "no ACME"; cond = !vhost.enableACME && cfg.security.acme.certs == { }; }
        { name = "the given certificate"; expected = "/var/lib/certs/bi/fullchain.pem"; got = vhost.sslCertificate; }
        { name = "the user's alias and location merged in"; cond = vhost.serverAliases == [ "superset.internal" ] && vhost.locations ? "/robots.txt"; }
        { name = "proxyPass follows web.port"; expected = "http://127.0.0.1:9000"; got = vhost.locations."/".proxyPass; }
        { name = "a public_url of one's own wins"; expected = "https://bi.example.org/superset/"; got = (final cfg).web.public_url; }
        { name = "body size"; got = vhost.locations."/".extraConfig; contains = "client_max_body_size 500m;"; }
        { name = "no firewall port without openFirewall"; expected = [ ]; got = cfg.networking.firewall.allowedTCPPorts; }
      ]))

  (ok "nginx: a web still bound beyond loopback warns (X-Forwarded-* could be forged around the proxy)"
    (with' {
      services.superset-async = {
        nginx = {
          enable = true;
          virtualHostName = "superset.example.org";
          sslCertificate = "/var/lib/certs/fullchain.pem";
          sslCertificateKey = "/var/lib/certs/key.pem";
        };
        openFirewall = true;
        settings.web.bind = "0.0.0.0";
      };
    })
    (cfg: [
      { name = "warning"; cond = lib.any (lib.hasInfix "bypass the TLS proxy") cfg.warnings; }
      { name = "proxyPass to loopback"; expected = "http://127.0.0.1:8088"; got = cfg.services.nginx.virtualHosts."superset.example.org".locations."/".proxyPass; }
      { name = "the web's port stays closed"; expected = [ 80 443 ]; got = cfg.networking.firewall.allowedTCPPorts; }
    ]))

  (fail "nginx: ACME without accepting the CA's terms (NixOS' acme module)"
    (with' { services.superset-async.nginx = { enable = true; virtualHostName = "superset.example.org"; }; })
    "security.acme.acceptTerms")

  (fail "nginx: a certificate without its key"
    (with' {
      services.superset-async.nginx = {
        enable = true;
        virtualHostName = "superset.example.org";
        sslCertificate = "/var/lib/certs/fullchain.pem";
      };
    })
    "services.superset-async.nginx.sslCertificate and services.superset-async.nginx.sslCertificateKey go together")

  (fail "nginx: a certificate key in the Nix store"
    (with' {
      services.superset-async.nginx = {
        enable = true;
        virtualHostName = "superset.example.org";
        sslCertificate = "/var/lib/certs/fullchain.pem";
        sslCertificateKey = "${builtins.storeDir}/x-key.pem";
      };
    })
    "services.superset-async.nginx.sslCertificateKey is in the Nix store")

  (fail "nginx: proxying to a web that does not run here"
    (with' {
      services.superset-async = {
        web.enable = false;
        nginx = {
          enable = true;
          virtualHostName = "superset.example.org";
          sslCertificate = "/var/lib/certs/fullchain.pem";
          sslCertificateKey = "/var/lib/certs/key.pem";
        };
      };
    })
    "services.superset-async.web.enable is false")

  # ---- metadataDatabase.createLocally, SQLite across hosts, pg_dump for backups -----------------
  (ok "metadataDatabase.createLocally: PostgreSQL here, peer auth over the socket, units after its setup"
    (with' { services.superset-async.metadataDatabase.createLocally = true; })
    (cfg: [
      {
        name = "database and owner named after the service user";
        expected = {
          enable = true;
          dbs = [ "superset-async" ];
          users = [
            {
              name = "superset-async";
              ensureDBOwnership = true;
            }
          ];
        };
        got = with cfg.services.postgresql; {
          inherit enable;
          dbs = ensureDatabases;
          users = ensureUsers;
        };
      }
      {
        name = "metadata URI: the socket, no password";
        expected = {
          uri = "postgresql+psycopg2:///superset-async?host=/run/postgresql";
          password_file = null;
        };
        got = { inherit ((final cfg).metadata_db) uri password_file; };
      }
      {
        name = "every role orders after postgresql and postgresql-setup";
        cond = lib.all (
          r:
          lib.all (u: lib.elem u (svc cfg r).after && lib.elem u (svc cfg r).wants) [
            "postgresql.service"
            "postgresql-setup.service"
          ]
        ) roles;
      }
      {
        name = "pg_dump on init's PATH (the dump before migrations)";
        cond = lib.elem cfg.services.postgresql.package (svc cfg "superset-async-init").path;
      }
    ]))

  (ok "SQLite stays the single-host default: no PostgreSQL, no ordering after it"
    (with' { })
    (cfg: [
      {
        name = "no postgresql";
        cond = !cfg.services.postgresql.enable && !lib.elem "postgresql.service" (svc cfg "superset-async-web").after;
      }
      {
        name = "metadata_db.uri unset (SQLite in state_dir), 5 dumps kept";
        expected = [ null 5 ];
        got = [ (final cfg).metadata_db.uri (final cfg).metadata_db.backups_kept ];
      }
    ]))

  (ok "external PostgreSQL metadata: pg_dump on init's PATH"
    (with' {
      services.superset-async.settings.metadata_db = {
        uri = "postgresql://superset@db.internal/superset";
        password_file = "/run/keys/pg";
      };
    })
    (cfg: [
      {
        name = "pg_dump";
        cond = lib.elem cfg.services.postgresql.package (svc cfg "superset-async-init").path;
      }
    ]))

  (ok "no pg_dump on init's PATH when dumps are off (backups_kept = 0)"
    (with' {
      services.superset-async.settings.metadata_db = {
        uri = "postgresql://superset@db.internal/superset";
        backups_kept = 0;
      };
    })
    (cfg: [
      {
        name = "no pg_dump";
        cond = !lib.elem cfg.services.postgresql.package ((svc cfg "superset-async-init").path or [ ]);
      }
    ]))

  (fail "SQLite metadata with workers on other hosts"
    (with' { services.superset-async.worker.externalPool = true; })
    [
      "services.superset-async.settings.metadata_db.uri is unset (SQLite in settings.state_dir)"
      "services.superset-async.worker.externalPool = true"
      "at one PostgreSQL reachable over TCP"
    ])

  (fail "SQLite metadata on a worker host whose web and init run elsewhere"
    (with' {
      services.superset-async = {
        web.enable = false;
        beat.enable = false;
        redis.createLocally = false;
      };
    })
    [
      "services.superset-async.init.enable = false with a worker or beat here"
      "cannot be shared"
    ])

  (fail "createLocally with a metadata URI of its own"
    (with' {
      services.superset-async = {
        metadataDatabase.createLocally = true;
        settings.metadata_db.uri = "postgresql://superset@db.internal/superset";
      };
    })
    "services.superset-async.metadataDatabase.createLocally reaches this host's PostgreSQL over its socket")

  (fail "createLocally with a password file (peer auth has none)"
    (with' {
      services.superset-async = {
        metadataDatabase.createLocally = true;
        settings.metadata_db.password_file = "/run/keys/pg";
      };
    })
    "settings.metadata_db.password_file unset")

  (fail "the runner's own PostgreSQL (metadata_db.local_postgresql) under NixOS"
    (with' { services.superset-async.settings.metadata_db.local_postgresql = true; })
    "metadataDatabase.createLocally = true instead")

  # ---- Flower and metrics (issue 14) ---------------------------------------------------------
  (ok "flower: off by default, no unit" (with' { }) (cfg: [
    {
      name = "no flower unit";
      expected = false;
      got = cfg.systemd.services ? superset-async-flower;
    }
  ]))

  (ok "flower: one more hardened unit, its password its own credential" (with' {
    services.superset-async = {
      flower.enable = true;
      settings.flower = {
        bind = "0.0.0.0";
        port = 5566;
        password_file = "/run/keys/flower";
      };
    };
  }) (cfg: [
    {
      name = "ExecStart is the glue's exec flower, config beside flowerconfig.py";
      got = (sc cfg "superset-async-flower").ExecStart;
      contains = [
        "/bin/superset-async exec flower --settings /nix/store/"
        "-superset-async-flower-config/superset_config.py"
      ];
    }
    {
      name = "the glue's settings say Flower runs";
      expected = [ true 5566 ];
      got = [ (final cfg).flower.enabled (final cfg).flower.port ];
    }
    {
      name = "flower_password reaches Flower only";
      expected = [ true false ];
      got = [
        (lib.elem "flower_password:/run/keys/flower" (sc cfg "superset-async-flower").LoadCredential)
        (lib.any (lib.hasPrefix "flower_password:") (sc cfg "superset-async-web").LoadCredential)
      ];
    }
    {
      name = "the roles' credentials and hardening";
      cond =
        let
          c = sc cfg "superset-async-flower";
          web = sc cfg "superset-async-web";
        in
        lib.all (x: lib.elem x c.LoadCredential) web.LoadCredential
        && c.ProtectSystem == "strict"
        && c.NoNewPrivileges
        && c.CapabilityBoundingSet == [ "" ]
        && c.SystemCallFilter == web.SystemCallFilter
        && c.User == web.User;
    }
  ]))

  (fail "flower beyond loopback without a password file"
    (with' {
      services.superset-async = {
        flower.enable = true;
        settings.flower.bind = "0.0.0.0";
      };
    })
    [
      "settings.flower.bind = \"0.0.0.0\" (not loopback)"
      "services.superset-async.settings.flower.password_file: Flower's UI can revoke tasks"
    ])

  (ok "metrics: nixpkgs' statsd exporter on loopback UDP, STATS_LOGGER pointed at it" (with' {
    services.superset-async.metrics.statsdExporter.enable = true;
  }) (cfg: [
    {
      name = "the exporter, loopback UDP only";
      expected = [
        true
        [
          "--statsd.listen-udp=127.0.0.1:9125"
          "--statsd.listen-tcp="
        ]
      ];
      got = with cfg.services.prometheus.exporters.statsd; [
        enable
        extraFlags
      ];
    }
    {
      name = "settings.metrics";
      expected = [ "127.0.0.1" 9125 ];
      got = [ (final cfg).metrics.statsd_host (final cfg).metrics.statsd_port ];
    }
  ]))

  # ---- Redis Sentinel (issue 14) ---------------------------------------------------------------
  (ok "redis.sentinel: passed through, no local Redis, the Sentinels' password as a credential"
    (with' {
      services.superset-async = {
        redis.createLocally = false;
        settings.redis = {
          dbs = {
            broker = 5;
            async_events = 0;
          };
          sentinel = {
            master_name = "superset";
            sentinels = [ "10.0.0.5:26379" "10.0.0.6:26379" "10.0.0.7:26379" ];
            password_file = "/run/keys/redis-sentinel";
          };
        };
      };
    })
    (cfg: [
      {
        name = "settings.redis.sentinel";
        expected = {
          master_name = "superset";
          sentinels = [ "10.0.0.5:26379" "10.0.0.6:26379" "10.0.0.7:26379" ];
          password_file = "/run/keys/redis-sentinel";
        };
        got = (final cfg).redis.sentinel;
      }
      {
        name = "no local redis";
        cond = !(cfg.systemd.services ? redis-superset-async);
      }
      {
        name = "the Sentinels' password reaches the units as a credential";
        expected = "/run/keys/redis-sentinel";
        got = cfg.services.superset-async.credentials.redis_sentinel_password or null;
      }
    ]))

  (fail "redis.sentinel with the module's own Redis"
    (with' {
      services.superset-async.settings.redis.sentinel = {
        master_name = "superset";
        sentinels = [ "10.0.0.5:26379" ];
      };
    })
    "set services.superset-async.redis.createLocally = false and list your Sentinels")
]
