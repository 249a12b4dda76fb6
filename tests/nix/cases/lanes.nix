# services.superset-async with SQL Lab lanes (settings.sql_lab.lanes, docs/nixos.md): one worker unit
# per lane, the worker's own unit with `--lane NAME`. The lanes' rules (names, databases, concurrency)
# are the glue's: a bad lane fails the build with its message (builds/lanes-refused.nix).
{ lib, pkgs, root, ... }:

let
  module = root + "/nix/modules/superset-async";
  inherit (import ../case-kit.nix { inherit pkgs; }) pkgs' ok fail;
  base = {
    services.superset-async = {
      enable = true;
      package = pkgs'.superset-async;
      metadataDatabase.createLocally = true;
      settings = {
        secret_key_file = "/run/keys/sk";
        global_async_queries.jwt_secret_file = "/run/keys/jwt";
        redis.password_file = "/run/keys/redis";
        databases."ClickHouse".uri = "clickhousedb://superset@127.0.0.1:8123/demo";
        databases."ClickHouse (interactive)".uri = "clickhousedb://superset@127.0.0.1:8123/demo";
      };
    };
  };
  twoLanes = {
    services.superset-async.settings.sql_lab.lanes = {
      interactive = {
        databases = [ "ClickHouse (interactive)" ];
        concurrency = 1;
      };
      mart.databases = [ "Sales mart" ];
    };
  };
  svc = cfg: name: cfg.systemd.services.${name};
  sc = cfg: name: (svc cfg name).serviceConfig;
  ours = cfg: lib.filter (lib.hasPrefix "superset-async-worker") (lib.attrNames cfg.systemd.services);
  # Everything but ExecStart and the description is the worker's (some unit options have no value
  # unless set: compare those a unit of ours sets).
  sameAsWorker =
    cfg: lane:
    let
      unit =
        name:
        lib.getAttrs [ "after" "wants" "requires" "wantedBy" "environment" "path" ] (svc cfg name)
        // { serviceConfig = removeAttrs (sc cfg name) [ "ExecStart" ]; };
    in
    {
      name = "${lane}: the worker's unit but for ExecStart and description";
      expected = unit "superset-async-worker";
      got = unit "superset-async-worker-${lane}";
    };
in
[
  (ok "lanes: one worker unit per lane, started with --lane NAME" [ module base twoLanes ] (cfg: [
    {
      name = "units";
      expected = [ "superset-async-worker" "superset-async-worker-interactive" "superset-async-worker-mart" ];
      got = ours cfg;
    }
    {
      name = "description";
      expected = "Superset Celery worker of the SQL Lab lane interactive";
      got = (svc cfg "superset-async-worker-interactive").description;
    }
    {
      name = "ExecStart";
      got = (sc cfg "superset-async-worker-interactive").ExecStart;
      contains = [ "/bin/superset-async exec worker --lane interactive --settings /nix/store/" " --config /nix/store/" ];
    }
    {
      name = "the main worker has no --lane";
      cond = !lib.hasInfix "--lane" (sc cfg "superset-async-worker").ExecStart;
    }
    {
      name = "same settings and config files as the worker";
      expected = lib.removePrefix "${cfg.services.superset-async.package}/bin/superset-async exec worker " (sc cfg "superset-async-worker").ExecStart;
      got = lib.removePrefix "${cfg.services.superset-async.package}/bin/superset-async exec worker --lane mart " (sc cfg "superset-async-worker-mart").ExecStart;
    }
    (sameAsWorker cfg "interactive")
    (sameAsWorker cfg "mart")
    {
      name = "the unit file: hardening, credentials, stop behaviour, started at boot";
      got = cfg.system.build.units."superset-async-worker-interactive.service".text;
      contains = [
        "LoadCredential=secret_key:/run/keys/sk\n"
        "KillMode=mixed\n"
        "TimeoutStopSec=390\n"
        "Restart=always\n"
        "SystemCallFilter=~@privileged\n"
        "WantedBy=multi-user.target\n"
      ];
    }
    {
      name = "ordered after the local PostgreSQL like the worker (database.nix)";
      cond = lib.elem "postgresql.service" (svc cfg "superset-async-worker-interactive").after;
    }
    {
      name = "the glue receives the lanes as written, an unset concurrency left to its default";
      expected = {
        interactive = {
          databases = [ "ClickHouse (interactive)" ];
          concurrency = 1;
        };
        mart.databases = [ "Sales mart" ];
      };
      got = cfg.services.superset-async.finalSettings.sql_lab.lanes;
    }
  ]))

  (ok "lanes: with reports on, a lane's unit gets the worker's syscall exceptions too"
    [ module base twoLanes { services.superset-async.settings.reports = { enabled = true; smtp.host = "mail.example.org"; }; } ]
    (cfg: [
      {
        name = "SystemCallErrorNumber, MemoryDenyWriteExecute";
        expected = [ "EPERM" true ];
        got = with sc cfg "superset-async-worker-interactive"; [ SystemCallErrorNumber MemoryDenyWriteExecute ];
      }
      (sameAsWorker cfg "interactive")
    ]))

  (ok "lanes: none declared, no lane unit" [ module base ] (cfg: [
    {
      name = "units";
      expected = [ "superset-async-worker" ];
      got = ours cfg;
    }
  ]))

  (ok "lanes: worker.enable = false, no lane unit (the lanes' workers run where the worker does)"
    [
      module
      base
      twoLanes
      {
        services.superset-async = {
          worker = {
            enable = false;
            externalPool = true;
          };
          metadataDatabase.createLocally = lib.mkForce false;
          settings.metadata_db.uri = "postgresql+psycopg2://superset@db.internal/superset";
        };
      }
    ]
    (cfg: [
      {
        name = "units";
        expected = [ ];
        got = ours cfg;
      }
    ]))

  (fail "lanes: a concurrency out of the glue's range (1-64, from the contract)"
    [ module base { services.superset-async.settings.sql_lab.lanes.interactive = { databases = [ "ClickHouse (interactive)" ]; concurrency = 0; }; } ]
    [ "services.superset-async.settings.sql_lab.lanes.interactive.concurrency" "between 1 and 64" ])

  (fail "lanes: databases is a list of names"
    [ module base { services.superset-async.settings.sql_lab.lanes.interactive.databases = "ClickHouse (interactive)"; } ]
    [ "services.superset-async.settings.sql_lab.lanes.interactive.databases" "list of string" ])
]
