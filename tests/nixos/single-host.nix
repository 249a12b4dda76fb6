# One host: the whole stack (local Redis, init, web, worker, beat) plus a ClickHouse registered with
# allow_run_async. Proves what an operator sees after `nixos-rebuild switch` and `nix run .#verify`.
# The host IS examples/nixos/single-host.nix (its secret files, Redis password, roles), with what a
# test needs on top: the demo ClickHouse (its `default` user, no password), PostgreSQL metadata
# created locally, and the web reachable from the test network.
{ module }:

{
  name = "superset-async-single-host";

  nodes.machine =
    { config, lib, pkgs, ... }:
    let
      # The test's own tools: an SMTP sink on loopback, and the client that makes a report and
      # reads its e-mail (./reports_by_mail.py).
      testPython = pkgs.python3.withPackages (ps: [ ps.aiosmtpd ps.celery ps.redis ps.requests ps.pillow ]);
    in
    {
      imports = [
        module
        ./test-secrets.nix
        ./clickhouse-demo.nix
        ../../examples/nixos/single-host.nix
      ];
      # The example's secret files, made at boot like the others (root, 0600, outside the store).
      systemd.services.test-secrets.script = lib.mkAfter ''
        install -d -m 0700 /run/keys/superset-async
        for name in secret_key admin_password gaq_jwt_secret redis_password clickhouse_password; do
          [ -e /run/keys/superset-async/$name ] || (umask 077; openssl rand -base64 48 | tr -d '/+=' > /run/keys/superset-async/$name)
        done
      '';
      virtualisation.memorySize = 4096;
      virtualisation.cores = 2;

      systemd.services.clickhouse-demo.before = [ "superset-async-init.service" ];

      fonts.packages = [ pkgs.dejavu_fonts ];
      systemd.services.smtp-sink = {
        description = "SMTP sink of the reports test (loopback; each mail a file in a Maildir)";
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          ExecStart = "${testPython}/bin/python3 -m aiosmtpd --nosetuid --listen 127.0.0.1:2525 --class aiosmtpd.handlers.Mailbox /var/lib/smtp-sink/Maildir";
          StateDirectory = "smtp-sink";
        };
      };
      environment.systemPackages = [
        (pkgs.writeShellScriptBin "reports-by-mail" ''exec ${testPython}/bin/python3 ${./reports_by_mail.py} "$@"'')
      ];

      services.superset-async = {
        openFirewall = true;
        # Flower on loopback (its own hardened unit; verify's check 10 then runs).
        flower.enable = true;
        # The metadata DB in this host's PostgreSQL, peer auth over its socket (no password).
        metadataDatabase.createLocally = true;
        settings = {
          # The demo ClickHouse (Debian's 18.16 here) has only its `default` user.
          databases."ClickHouse" = lib.mkForce {
            uri = "clickhousedb://default@127.0.0.1:8123/demo";
            allow_run_async = true;
          };
          # A SQL Lab lane (docs/nixos.md): the same ClickHouse registered a second time for
          # interactive work, its queries on a worker of their own (superset-async-worker-interactive).
          databases."ClickHouse (interactive)" = {
            uri = "clickhousedb://default@127.0.0.1:8123/demo";
            allow_run_async = true;
          };
          sql_lab.lanes.interactive = {
            databases = [ "ClickHouse (interactive)" ];
            concurrency = 1;
          };
          web.bind = "0.0.0.0";
          # Alerts & Reports delivered on this host: the worker's headless Chromium (the module's
          # default browser and driver, under the worker unit's hardening as the module sets it)
          # mails the screenshot to the sink below.
          reports = {
            enabled = true;
            smtp = {
              host = "127.0.0.1";
              port = 2525;
              mail_from = "superset@example.org";
            };
            webdriver.animation_seconds = 1;
          };
        };
      };
    };

  testScript =
    { nodes, ... }:
    let
      cfg = nodes.machine.services.superset-async;
      final = cfg.finalSettings; # what the host set; `or` gives the glue's defaults
      worker = nodes.machine.systemd.services.superset-async-worker.serviceConfig;
      yesNo = on: if on then "yes" else "no"; # how systemctl show prints a boolean
      psql = "${nodes.machine.services.postgresql.package}/bin/psql";
    in
    ''
      machine.wait_for_unit("superset-async-init.service")
      machine.wait_for_unit("superset-async-web.service")
      machine.wait_for_unit("superset-async-worker.service")
      machine.wait_for_unit("superset-async-worker-interactive.service")
      machine.wait_for_unit("superset-async-beat.service")
      machine.wait_until_succeeds("curl --fail --silent http://127.0.0.1:8088/health", timeout=300)

      with subtest("verify proves every piece, including an async SQL Lab query on ClickHouse"):
          machine.wait_until_succeeds("superset-async-verify --json > /tmp/verify.json", timeout=300)
          machine.log(machine.succeed("cat /tmp/verify.json"))

      with subtest("Flower runs as its own hardened unit, and verify's check 10 sees the worker through it"):
          machine.wait_for_unit("superset-async-flower.service")
          report = json.loads(machine.succeed("cat /tmp/verify.json"))
          flower = [c for c in report["checks"] if c["key"] == "flower"]
          t.assertEqual([c["status"] for c in flower], ["pass"], flower)
          machine.succeed("curl --fail --silent http://127.0.0.1:5555/metrics | grep -q '^flower_worker_online'")
          # the queue depth, asked from the broker (Redis with its password) by the hardened unit
          machine.succeed("curl --fail --silent http://127.0.0.1:5555/metrics | grep -q '^superset_async_celery_broker_up 1'")
          machine.succeed("curl --fail --silent http://127.0.0.1:5555/metrics | grep -q '^superset_async_celery_queue_length{queue=\"celery\"}'")

      with subtest("each role's main process is its program (superset-async exec replaced itself), with the settings' values"):
          # KillMode=mixed and the worker's warm shutdown rely on the MainPID being celery itself.
          for unit, words in [
              ("web", ["/gunicorn", "--bind=0.0.0.0:${toString cfg.settings.web.port}", "--timeout=${toString cfg.settings.web.timeout_seconds}", "superset.app:create_app()"]),
              ("worker", ["/celery", " worker ", "--pool=prefork", "--concurrency=${toString cfg.settings.worker.concurrency}"]),
              ("worker-interactive", ["/celery", " worker ", "--pool=prefork", "--concurrency=1", "--queues=sql_lab_lane_interactive", "--hostname=lane_interactive@"]),
              ("beat", ["/celery", " beat ", "--schedule=${cfg.settings.state_dir}/celerybeat-schedule"]),
          ]:
              pid = machine.succeed(f"systemctl show -p MainPID --value superset-async-{unit}.service").strip()
              cmdline = machine.succeed(f"tr '\\0' ' ' < /proc/{pid}/cmdline")
              for word in words:
                  t.assertIn(word, cmdline, unit)
              machine.succeed(f"tr '\\0' '\\n' < /proc/{pid}/environ | grep -qx SUPERSET_CONFIG_PATH=${cfg.configFile}")

      with subtest("bootstrap is idempotent across restarts"):
          machine.succeed("systemctl restart superset-async-init.service")
          machine.succeed("journalctl -u superset-async-init.service --since -1min | grep -q unchanged")

      with subtest("the metadata DB is this host's PostgreSQL, reached as the service user by peer authentication"):
          revision = machine.succeed("systemd-run --quiet --pipe --wait --uid=${cfg.user} ${psql} -h /run/postgresql -d ${cfg.user} -tAc 'SELECT version_num FROM alembic_version'")
          t.assertRegex(revision.strip(), r"^\w+$")
          machine.fail("test -e ${cfg.settings.state_dir}/superset.db")  # no SQLite beside it

      with subtest("the beat runs exactly once and the worker consumes the SQL Lab queue"):
          # "[c]elery" matches celery's command line but not the driver's own `bash -c '<this>'`.
          t.assertEqual(machine.succeed("pgrep -fc '[c]elery.* beat' || true").strip(), "1")

      with subtest("SQL Lab lane: its own worker unit, with the worker's credentials, ran the interactive database's queries"):
          lane = "superset-async-worker-interactive.service"
          t.assertEqual(
              machine.succeed(f"systemctl show -p LoadCredential --value {lane}"),
              machine.succeed("systemctl show -p LoadCredential --value superset-async-worker.service"),
          )
          machine.succeed(f"test -s /run/credentials/{lane}/secret_key -a -s /run/credentials/{lane}/redis_password")
          # verify (above) ran its query on each async database; the lane's worker consumes only its
          # queue, so a task there was routed by the query's database
          machine.succeed(f"journalctl -u {lane} -o cat | grep -q 'sql_lab.get_sql_results.*succeeded'")
          # ... and Celery names that worker lane_interactive@<host> (Flower, fed by the workers' events)
          machine.succeed(
              "curl --fail --silent http://127.0.0.1:5555/metrics | grep '^flower_events_total{' "
              "| grep 'worker=\"lane_interactive@' | grep 'task=\"sql_lab.get_sql_results\"' | grep -q 'type=\"task-succeeded\"'"
          )

      with subtest("an async SQL Lab query returns the seeded rows"):
          machine.succeed("superset-async-verify --json --sql 'SELECT name FROM demo.cities ORDER BY name' > /tmp/rows.json")
          machine.succeed("grep -q '2 row(s)' /tmp/rows.json")

      with subtest("hardening: exposure at most 1.5 per unit, and it holds while the worker runs queries"):
          # 1.4 with the module's list; dropping PrivateDevices= alone makes 1.6, SystemCallFilter= 2.9.
          for unit in ["web", "worker", "worker-interactive", "beat", "init"]:
              line = machine.succeed(f"systemd-analyze security --no-pager superset-async-{unit}.service | tail -n 1")
              machine.log(line)
              exposure = float(line.split(":")[1].split()[0])
              t.assertLessEqual(exposure, 1.5, line)
          worker = "superset-async-worker.service"
          t.assertEqual(machine.succeed(f"systemctl show -p MemoryDenyWriteExecute --value {worker}").strip(), "yes")
          machine.succeed(f"systemctl show -p SystemCallFilter --value {worker} | grep -q .")
          # the prefork children ran the ClickHouse queries above with numpy and pyarrow loaded ...
          machine.succeed(
              f"for c in $(cat /proc/$(systemctl show -p MainPID --value {worker})/task/*/children); do "
              "grep -q pyarrow /proc/$c/maps || exit 1; done"
          )
          # ... and none of them was killed for it
          t.assertEqual(machine.succeed(f"systemctl show -p NRestarts --value {worker}").strip(), "0")
          machine.fail(f"journalctl -u {worker} | grep -E 'SIGSYS|Bad system call|signal 31|WorkerLostError'")

      with subtest("a PNG report runs in the hardened worker (Chromium, jitless) and arrives by e-mail with the chart"):
          worker = "superset-async-worker.service"
          # the running unit's sandbox is the module's, with reports on (docs/reports.md)
          shown = machine.succeed(
              f"systemctl show {worker} -p MemoryDenyWriteExecute -p SystemCallErrorNumber -p SystemCallFilter "
              "-p NoNewPrivileges -p RestrictNamespaces -p PrivateDevices -p ProcSubset -p RestrictAddressFamilies"
          )
          machine.log(shown)
          props = dict(line.split("=", 1) for line in shown.splitlines())
          t.assertEqual(
              [props[k] for k in ["MemoryDenyWriteExecute", "NoNewPrivileges", "RestrictNamespaces", "PrivateDevices", "ProcSubset"]],
              ${builtins.toJSON [
                (yesNo worker.MemoryDenyWriteExecute) (yesNo worker.NoNewPrivileges) (yesNo worker.RestrictNamespaces)
                (yesNo worker.PrivateDevices) worker.ProcSubset
              ]},
          )
          t.assertIn(props["SystemCallErrorNumber"], ["1", "${worker.SystemCallErrorNumber}"])  # 1 is EPERM
          # ${toString worker.SystemCallFilter}: the set is expanded, @privileged's calls stay out
          allowed = props["SystemCallFilter"].split()
          t.assertIn("read", allowed)
          t.assertNotIn("fchown", allowed)
          # verify's check 11 started the browser and looked the executor up as the worker's user,
          # from its interpreter and environment (peer authentication knows that user, not root)
          check = [c for c in json.loads(machine.succeed("cat /tmp/verify.json"))["checks"] if c["key"] == "reports"]
          t.assertEqual([c["status"] for c in check], ["pass"], check)
          t.assertIn("browser started", json.dumps(check))
          name, to = "Cities by mail", "reports-test@example.org"
          created = machine.succeed(
              "reports-by-mail create --web http://127.0.0.1:${toString final.web.port} "
              "--user ${final.admin.username or "admin"} --password-file ${final.admin.password_file} --database ClickHouse "
              "--broker 'redis+socket://${final.redis.unix_socket}?virtual_host=${toString (final.redis.dbs.broker or 0)}' "
              f"--broker-password-file ${final.redis.password_file} --name '{name}' --to {to}"
          )
          machine.log(created)
          mail = json.loads(machine.succeed(f"reports-by-mail check --maildir /var/lib/smtp-sink/Maildir --name '{name}' --to {to} --timeout 120"))
          machine.log(f"report e-mail: {mail}")
          t.assertEqual(mail["from"], "${final.reports.smtp.mail_from}")
          # the worker's own child ran it, and nothing in the unit was killed for it
          machine.log(machine.succeed(f"journalctl -u {worker} -o cat | grep -E 'Screenshot capture took|reports.execute.*succeeded'"))
          t.assertEqual(machine.succeed(f"systemctl show -p NRestarts --value {worker}").strip(), "0")
          machine.fail(f"journalctl -u {worker} | grep -E 'SIGSYS|Bad system call|signal 31|WorkerLostError|Chrome instance exited'")

      with subtest("a query whose prefork child is killed mid-run ends failed, not running forever"):
          received = "journalctl -u {} -o cat | grep -c 'sql_lab.get_sql_results.*received' || true"
          # verify runs the query on each async database in turn: ClickHouse on the worker, then
          # ClickHouse (interactive) on the SQL Lab lane's worker; each one's child is killed mid-run
          workers = ["superset-async-worker.service", "superset-async-worker-interactive.service"]
          before = [int(machine.succeed(received.format(unit)).strip()) for unit in workers]
          # verify as a transient unit: it submits a 6 s query and follows it to its end
          machine.succeed(
              "systemd-run --unit=lost-query --property=Type=exec "
              "$(command -v superset-async-verify) --json --sql 'SELECT sleep(3) + sleep(3) AS slept'"
          )
          for unit, count in zip(workers, before):
              machine.wait_until_succeeds(f"test $({received.format(unit)}) -gt {count}", timeout=60)
              machine.succeed(f"sleep 1; pkill -KILL -P $(systemctl show -p MainPID --value {unit})")
          for name in ["ClickHouse", "ClickHouse (interactive)"]:
              machine.wait_until_succeeds(
                  f"journalctl -u lost-query -o cat | grep -q \"'{name}': query [0-9]* failed: The worker process running this query was lost\"",
                  timeout=60,
              )
          # the workers' main processes survived and replaced their children: queries run again
          for unit in workers:
              t.assertEqual(machine.succeed(f"systemctl show -p NRestarts --value {unit}").strip(), "0")
          machine.wait_until_succeeds("superset-async-verify --json > /tmp/verify.json", timeout=120)

      with subtest("a killed worker is restarted by systemd, and new queries run"):
          machine.succeed("systemctl kill -s KILL superset-async-worker.service")
          machine.wait_until_succeeds("test $(systemctl show -p NRestarts --value superset-async-worker.service) -ge 1", timeout=60)
          machine.wait_for_unit("superset-async-worker.service")
          machine.wait_until_succeeds("superset-async-verify --json > /tmp/verify.json", timeout=120)

      with subtest("Redis stopped: verify names it; started again: queries run, nothing else restarted"):
          pids = machine.succeed("systemctl show -p MainPID --value superset-async-web superset-async-worker superset-async-beat")
          machine.succeed("systemctl stop redis-superset-async.service")
          machine.fail("superset-async-verify --json > /tmp/redis-down.json")
          machine.succeed("grep -q broker-unreachable /tmp/redis-down.json")
          # once the web could not publish the first database's query, the lane's is not submitted
          # (each would wait out the web's publish retries, about 10 s)
          machine.succeed("grep -q \"'ClickHouse (interactive)': not tried: the web could not publish\" /tmp/redis-down.json")
          machine.succeed("systemctl is-active superset-async-web superset-async-worker superset-async-beat")
          machine.succeed("systemctl start redis-superset-async.service")
          machine.wait_until_succeeds("superset-async-verify --json > /tmp/verify.json", timeout=120)
          t.assertEqual(machine.succeed("systemctl show -p MainPID --value superset-async-web superset-async-worker superset-async-beat"), pids)

      with subtest("init failing on an unreachable datasource does not keep web and worker down; it tries again"):
          machine.succeed("systemctl stop superset-async-web superset-async-worker superset-async-beat superset-async-init clickhouse")
          # a full bootstrap, so that init really reaches ClickHouse: without its record of the last
          # full run (bootstrap's fast path skips every step when nothing it reads changed)
          machine.succeed("rm -f ${cfg.settings.state_dir}/superset-async-bootstrap.json")
          # what boot does: the roles pull init in and order after its (here failing) attempt
          machine.succeed("systemctl start superset-async-web superset-async-worker superset-async-beat")
          t.assertEqual(machine.succeed("systemctl show -p Result --value superset-async-init").strip(), "exit-code")
          machine.succeed("systemctl is-active superset-async-web superset-async-worker superset-async-beat")
          machine.succeed("journalctl -u superset-async-init | grep -q \"database 'ClickHouse': failed (cannot connect\"")
          machine.succeed("systemctl start clickhouse")
          machine.wait_for_unit("superset-async-init.service", timeout=120)  # Restart=on-failure, 30 s later
          machine.wait_until_succeeds("superset-async-verify --json > /tmp/verify.json", timeout=120)

      with subtest("each secret is only in its file and the credentials: not in units, store config, state, journal, /proc or verify's output"):
          # The patterns come from the secret files themselves (grep -f), so no secret is ever on a
          # command line here. redis-superset-async's runtime config (under /run) holds requirepass by
          # design, like the runner's redis.conf; /run/keys and /run/credentials are where secrets live.
          machine.succeed(
              "for f in /run/keys/superset-async/secret_key /run/keys/superset-async/gaq_jwt_secret /run/keys/superset-async/redis_password /run/keys/superset-async/admin_password; do "
              "  test $(wc -c < $f) -ge 32 || exit 2; "
              "  ! grep -RqsF -f $f /etc/systemd/system /etc/superset-async ${cfg.configFile} ${cfg.settingsFile} "
              "      ${cfg.settings.state_dir} /tmp/verify.json /tmp/rows.json || { echo leak of $f in files; exit 1; }; "
              "  ! journalctl --no-pager -o cat | grep -qF -f $f || { echo leak of $f in the journal; exit 1; }; "
              "  for p in /proc/[0-9]*; do "
              "    ! cat $p/cmdline $p/environ 2>/dev/null | tr '\\0' '\\n' | grep -qF -f $f || { echo leak of $f in $p; exit 1; }; "
              "  done; "
              "done"
          )
    '';
}
