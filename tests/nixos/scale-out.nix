# A scaled-out stack on four hosts: `infra` (Redis with a password, PostgreSQL over TCP with a
# password, ClickHouse: the async datasource), `web` (init, web, beat; its SQL Lab queries run on
# the worker pool) and two worker hosts with two worker processes each. Queries run on both workers
# (counted where they ran: ClickHouse's query log on infra names each query's client host); one
# worker host powered off mid-batch leaves no query lost or stuck; one crashed mid-query leaves that
# query `failed` by the web's sweep while the next ones run on the other host.
{ module }:

let
  # What web and workers share: the broker and the metadata DB on infra, and the same secrets.
  stackHost =
    { lib, ... }:
    {
      imports = [
        module
        ./test-secrets.nix
      ];
      virtualisation.memorySize = 2048;
      services.superset-async = {
        enable = true;
        redis.createLocally = false;
        settings = {
          secret_key_file = "/run/keys/secret-key-shared";
          global_async_queries.jwt_secret_file = "/run/keys/gaq-jwt-shared";
          redis = {
            host = "infra";
            port = 6379;
            password_file = "/run/keys/shared-redis";
          };
          metadata_db = {
            uri = "postgresql://superset@infra/superset";
            password_file = "/run/keys/postgres";
          };
          # Short limits, so that the web's sweep ends a query whose worker host crashed within
          # seconds: running for longer than 5 + 2 (Celery's hard limit) + 5 s, seen at most 5 s later.
          sql_lab = {
            timeout_seconds = 5;
            async_time_limit_seconds = 5;
            hard_time_limit_grace_seconds = 2;
            running_grace_seconds = 5;
          };
        };
      };
      # Every host must share SECRET_KEY and the GAQ secret; a fixed test value, written at boot.
      systemd.services.test-secrets.script = lib.mkAfter ''
        (umask 077; echo -n shared-secret-key-for-the-test-only-0123456789 > /run/keys/secret-key-shared)
        (umask 077; echo -n shared-gaq-jwt-secret-for-the-test-only-0123456789 > /run/keys/gaq-jwt-shared)
      '';
    };

  workerHost = {
    imports = [ stackHost ];
    services.superset-async = {
      web.enable = false;
      beat.enable = false;
      # Two processes per host: four containers share the test machine's cores.
      settings.worker.concurrency = 2;
    };
  };
in
{
  name = "superset-async-scale-out";

  nodes.infra =
    { config, pkgs, ... }:
    {
      imports = [
        module # not enabled: only for its test-secrets ordering and the harness's package option
        ./test-secrets.nix
        ./clickhouse-demo.nix
      ];
      virtualisation.memorySize = 2048;
      networking.firewall.allowedTCPPorts = [
        6379
        5432
        8123
      ];
      services.redis.servers.shared = {
        enable = true;
        bind = "0.0.0.0";
        port = 6379;
        requirePassFile = "/run/keys/shared-redis";
        databases = 16;
      };
      services.postgresql = {
        enable = true;
        enableTCPIP = true;
        ensureDatabases = [ "superset" ];
        ensureUsers = [
          {
            name = "superset";
            ensureDBOwnership = true;
          }
        ];
        authentication = "host superset superset all scram-sha-256";
      };
      # ensureUsers runs in postgresql-setup.service on current NixOS (postgresql.service before);
      # ordering after both works on either.
      systemd.services.postgresql-superset-password = {
        after = [
          "postgresql.service"
          "postgresql-setup.service"
        ];
        requires = [ "postgresql.service" ];
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true; # the test script waits for it
          User = "postgres";
        };
        path = [ config.services.postgresql.package ];
        script = ''psql -c "ALTER USER superset PASSWORD 'superset-pg'"'';
      };

      # The demo ClickHouse (clickhouse-demo.nix: user `default`, no password), reachable from the
      # workers, and logging every query: the test counts on which host each one ran.
      environment.etc."clickhouse-server/config.d/listen.xml".text = ''
        <yandex><listen_host>0.0.0.0</listen_host></yandex>
      '';
      environment.etc."clickhouse-server/users.d/log-queries.xml".text = ''
        <yandex><profiles><default><log_queries>1</log_queries></default></profiles></yandex>
      '';
    };

  nodes.web = {
    imports = [ stackHost ];
    services.superset-async = {
      beat.enable = true; # external Redis: beat is off unless enabled, on exactly one host
      worker = {
        enable = false;
        externalPool = true;
      };
      settings = {
        admin.password_file = "/run/keys/admin";
        databases."ClickHouse" = {
          uri = "clickhousedb://default@infra:8123/demo";
          allow_run_async = true;
        };
      };
    };
  };

  nodes.worker1 = workerHost;
  nodes.worker2 = workerHost;

  testScript =
    { nodes, ... }:
    let
      clickhouseClient = "${nodes.infra.services.clickhouse.package}/bin/clickhouse-client";
      redisCli = "${nodes.infra.services.redis.package}/bin/redis-cli";
    in
    ''
      import json
      import re
      import shlex
      import time

      API = "http://127.0.0.1:8088/api/v1"
      WORKERS = {"worker1": worker1, "worker2": worker2}


      def api_all(requests):
          """Superset's REST API from the web host, one curl per (path, body) in one shell; the JSON answers."""
          curls = []
          for path, body in requests:
              data = "" if body is None else f"-d {shlex.quote(json.dumps(body))} "
              curls.append(
                  "curl -gsS --fail-with-body -b /tmp/jar -H @/tmp/auth -H 'Content-Type: application/json' "
                  f"-H 'Referer: http://127.0.0.1:8088/' {data}{shlex.quote(API + path)}; echo"
              )
          return [json.loads(line) for line in web.succeed(" && ".join(curls)).splitlines() if line.strip()]


      def submit(queries):
          """Async SQL Lab queries (n, sql) on ClickHouse, as SQL Lab sends them; their query ids."""
          bodies = [
              ("/sqllab/execute/", {
                  "database_id": database_id, "sql": sql, "runAsync": True, "client_id": f"scale{n:06d}",
                  "schema": "demo", "tab": "scale-out", "sql_editor_id": "1", "queryLimit": 1000,
                  "expand_data": True, "select_as_cta": False, "ctas_method": "TABLE", "templateParams": "{}",
              })
              for n, sql in queries
          ]
          return [answer["query"]["queryId"] for answer in api_all(bodies)]


      def batch(number, size):
          """`size` queries of about 1 s, each returning its own n (1001, 1002, ... for batch 1)."""
          return submit([(number * 1000 + i, f"SELECT {number * 1000 + i} AS n, sleep(1) AS slept") for i in range(1, size + 1)])


      def wait_for(ids, bound):
          """Poll until every query is success, failed, stopped or timed_out, at most `bound` seconds."""
          deadline = time.monotonic() + bound
          while True:
              states = {q: r["result"] for q, r in zip(ids, api_all([(f"/query/{q}", None) for q in ids]))}
              if all(s["status"] in ("success", "failed", "stopped", "timed_out") for s in states.values()):
                  return states
              if time.monotonic() > deadline:
                  raise AssertionError(f"still unfinished after {bound} s: " + str({q: s["status"] for q, s in states.items()}))
              time.sleep(0.5)


      def assert_own_rows(states, first_n):
          """Each query ended `success` with the one row it asked for (its own n)."""
          keys = [states[q]["results_key"] for q in states]
          for i, (q, result) in enumerate(zip(states, api_all([(f"/sqllab/results/?q=(key:'{k}')", None) for k in keys]))):
              t.assertEqual(states[q]["status"], "success", states[q].get("error_message"))
              t.assertEqual([row["n"] for row in result["data"]], [first_n + i], q)


      def addresses(host):
          """The addresses infra knows `host` by (IPv4 and IPv6, as ClickHouse logs its clients)."""
          found = set()
          for line in infra.succeed(f"getent ahosts {host}").splitlines():
              found.add(line.split()[0])
          return found | {f"::ffff:{a}" for a in found}


      def clickhouse(sql):
          """Rows of a query on infra's ClickHouse as dicts (JSONEachRow: SQL texts keep their newlines)."""
          out = infra.succeed(f"${clickhouseClient} --format JSONEachRow --query {shlex.quote(sql)}")
          return [json.loads(line) for line in out.splitlines() if line.strip()]


      def numbered(query):
          """The n of one of this test's queries (`SELECT <n> AS n, sleep(...)`), as ClickHouse got it."""
          match = re.search(r"SELECT\s+(\d+)\s+AS", query, re.IGNORECASE)
          return int(match.group(1)) if match and "sleep" in query.lower() else None


      def host_of(address):
          return next((h for h in WORKERS if address in hosts[h]), address)


      def logged(first_n, last_n, finished):
          """(n, host) of each query numbered first_n..last_n in ClickHouse's query log, by its client's
          address: the queries that started (finished=False) or finished without an error (True)."""
          clickhouse("SYSTEM FLUSH LOGS")
          which = "query_duration_ms > 0 AND exception = '''" if finished else "query_duration_ms = 0"
          rows = clickhouse(
              "SELECT IPv6NumToString(address) AS address, query FROM system.query_log "
              f"WHERE {which} AND positionCaseInsensitive(query, 'sleep') > 0"
          )
          return [(n, host_of(row["address"])) for row in rows if first_n <= (n := numbered(row["query"]) or 0) <= last_n]


      def ran_on(first_n, size):
          """Where each query numbered first_n.. ran: {host: [n, ...]}. Each must have run exactly once."""
          seen = {}
          for n, host in logged(first_n, first_n + size - 1, finished=True):
              seen.setdefault(n, []).append(host)
          t.assertEqual(sorted(seen), list(range(first_n, first_n + size)), f"each query of the batch ran: {seen}")
          t.assertEqual({n: h for n, h in seen.items() if len(h) != 1}, {}, "no query ran twice")
          per_host = {}
          for n, (host,) in seen.items():
              per_host.setdefault(host, []).append(n)
          return per_host


      def started_on(first_n, last_n):
          """The hosts that started a query numbered first_n..last_n so far."""
          return {host for _, host in logged(first_n, last_n, finished=False)}


      infra.start()  # first: the web's init needs its PostgreSQL, Redis and ClickHouse
      infra.wait_for_unit("redis-shared.service")
      infra.wait_for_unit("postgresql-superset-password.service")
      infra.wait_for_unit("clickhouse-demo.service")
      start_all()
      web.wait_for_unit("superset-async-web.service")
      web.wait_for_unit("superset-async-beat.service")
      web.fail("systemctl is-active superset-async-worker.service")
      for name, worker in WORKERS.items():
          worker.wait_for_unit("superset-async-worker.service")
          worker.fail("systemctl is-active superset-async-web.service superset-async-beat.service")
          worker.wait_until_succeeds(f"journalctl -b -u superset-async-worker.service -o cat | grep -q 'celery@{name} ready'", timeout=300)
      hosts = {h: addresses(h) for h in WORKERS}

      with subtest("verify on the web host passes and sees both worker hosts"):
          web.wait_until_succeeds("superset-async-verify --json > /tmp/verify.json", timeout=300)
          check = next(c for c in json.loads(web.succeed("cat /tmp/verify.json"))["checks"] if c["key"] == "workers")
          t.assertEqual(sorted(w["name"] for w in check["details"]["workers"]), ["celery@worker1", "celery@worker2"], check["reason"])
          web.log(check["reason"])

      # Log in through the REST API: the password goes from its file into a request body file, never
      # onto a command line; the bearer and CSRF tokens into a header file curl reads.
      web.succeed(
          "printf '{\"username\": \"admin\", \"password\": \"%s\", \"provider\": \"db\", \"refresh\": false}' \"$(cat /run/keys/admin)\" > /tmp/login.json",
          f"curl -sS --fail -c /tmp/jar -H 'Content-Type: application/json' -d @/tmp/login.json {API}/security/login "
          "| sed -n 's/.*\"access_token\": *\"\\([^\"]*\\)\".*/Authorization: Bearer \\1/p' > /tmp/auth",
          f"curl -sS --fail -b /tmp/jar -c /tmp/jar -H @/tmp/auth {API}/security/csrf_token/ "
          "| sed -n 's/.*\"result\": *\"\\([^\"]*\\)\".*/X-CSRFToken: \\1/p' >> /tmp/auth",
          "test $(wc -l < /tmp/auth) = 2",
      )
      database_id = api_all([("/database/?q=(filters:!((col:database_name,opr:eq,value:ClickHouse)))", None)])[0]["result"][0]["id"]

      with subtest("12 async queries run on both worker hosts, each once, each with its own row"):
          started = time.monotonic()
          states = wait_for(batch(1, 12), bound=60)
          web.log(f"batch 1: 12 queries ended in {time.monotonic() - started:.1f} s")
          assert_own_rows(states, 1001)
          per_host = ran_on(1001, 12)
          web.log(f"batch 1 ran on: { {h: len(n) for h, n in per_host.items()} }")
          t.assertEqual(sorted(per_host), ["worker1", "worker2"], per_host)

      with subtest("worker1 powered off mid-batch: its running queries finish, worker2 runs the rest, none lost or stuck"):
          ids = batch(2, 12)
          # mid-run: worker1 is running queries of this batch
          for _ in range(100):
              if "worker1" in started_on(2001, 2012):
                  break
              time.sleep(0.1)
          else:
              raise AssertionError("worker1 never ran a query of batch 2")
          snapshot = api_all([(f"/query/{q}", None) for q in ids])
          waiting = sum(1 for s in snapshot if s["result"]["status"] == "pending")
          unacked = infra.succeed("REDISCLI_AUTH=$(cat /run/keys/shared-redis) ${redisCli} -n 0 hlen unacked").strip()
          web.log(f"at the stop: {waiting} of 12 still pending, {unacked} message(s) reserved unacknowledged by the workers")
          stop = time.monotonic()
          worker1.shutdown()  # poweroff: the worker's warm shutdown, its TimeoutStopSec from the settings
          web.log(f"worker1 powered off in {time.monotonic() - stop:.1f} s")
          states = wait_for(ids, bound=60)
          web.log(f"batch 2: the last query ended {time.monotonic() - stop:.1f} s after the stop")
          assert_own_rows(states, 2001)
          per_host = ran_on(2001, 12)
          web.log(f"batch 2 ran on: { {h: len(n) for h, n in per_host.items()} }")
          t.assertEqual(sorted(per_host), ["worker1", "worker2"], per_host)

      with subtest("verify on the web host passes with the one worker left"):
          web.succeed("superset-async-verify --json > /tmp/verify.json")
          check = next(c for c in json.loads(web.succeed("cat /tmp/verify.json"))["checks"] if c["key"] == "workers")
          t.assertEqual([w["name"] for w in check["details"]["workers"]], ["celery@worker2"], check["reason"])

      with subtest("a worker host crashed mid-query: the web's sweep ends that query failed, the next ones run on the other host"):
          worker1.start()  # a VM keeps its journal across boots: -b, this boot's "ready"
          worker1.wait_until_succeeds("journalctl -b -u superset-async-worker.service -o cat | grep -q 'celery@worker1 ready'", timeout=300)
          (lost,) = submit([(3000, "SELECT 3000 AS n, sleep(3) + sleep(3) AS slept")])
          for _ in range(100):
              if running := started_on(3000, 3000):
                  break
              time.sleep(0.1)
          else:
              raise AssertionError("the 6 s query never ran")
          (victim,) = running
          survivor = "worker2" if victim == "worker1" else "worker1"
          crash = time.monotonic()
          WORKERS[victim].crash()  # power cut: no warm shutdown, nothing reports
          # Redis still holds the dead host's last BRPOP (kombu's is 1 s long) and would hand it the
          # next task; the web's sweep fails such a query after its pending timeout ("lost on its way
          # to a worker", tests/python/test_sqllab_watchdog.py). This subtest is about the running one.
          time.sleep(2)
          states = wait_for(submit([(3000 + i, f"SELECT {3000 + i} AS n, sleep(1) AS slept") for i in range(1, 5)]), bound=60)
          assert_own_rows(states, 3001)
          t.assertEqual(sorted(ran_on(3001, 4)), [survivor])
          (state,) = wait_for([lost], bound=60).values()
          web.log(f"the crashed host's query ended {state['status']} {time.monotonic() - crash:.1f} s after the crash: {state['error_message']}")
          t.assertEqual(state["status"], "failed")
          t.assertIn("This query was still running after its time limit", state["error_message"])
    '';
}
