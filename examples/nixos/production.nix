# One production host (docs/production.md): nginx in front with a certificate from Let's Encrypt
# (the web on loopback behind it; Secure cookies, ProxyFix, HSTS), PostgreSQL for Superset's metadata
# (created here), a local Redis with a password, Alerts & Reports by e-mail, more web and worker
# processes, and worker children recycled now and then. The same settings as
# examples/settings/production.json, except the metadata DB: here the module creates it and reaches
# it over the socket, so it needs no password.
#
#   imports = [ inputs.superset-async.nixosModules.default ./production.nix ];
#
# Secrets: root-owned 0600 files outside the store, as in single-host.nix; the SMTP password is
# your mail account's.
{ pkgs, ... }:
{
  # The TLS proxy: https://superset.example.org/ (the name must resolve to this host for ACME's
  # HTTP-01 challenge). It sets settings.web.public_url and keeps the web on 127.0.0.1.
  services.superset-async.nginx = {
    enable = true;
    virtualHostName = "superset.example.org";
  };
  security.acme = {
    acceptTerms = true;
    defaults.email = "ops@example.org";
  };
  services.superset-async.openFirewall = true; # with nginx: ports 80 and 443 only

  # PostgreSQL for the metadata on this host: a database and role named after the service user,
  # reached over the socket with peer authentication (no password to keep). Bootstrap dumps it
  # before each migration (docs/upgrades.md).
  services.superset-async.metadataDatabase.createLocally = true;

  services.superset-async = {
    enable = true;
    settings = {
      secret_key_file = "/run/keys/superset-async/secret_key";
      admin.password_file = "/run/keys/superset-async/admin_password";
      global_async_queries.jwt_secret_file = "/run/keys/superset-async/gaq_jwt_secret";
      redis.password_file = "/run/keys/superset-async/redis_password";
      web = {
        workers = 4;
        threads = 4;
      };
      worker = {
        concurrency = 4;
        max_tasks_per_child = 200;
      };
      databases."ClickHouse" = {
        uri = "clickhousedb://superset@127.0.0.1:8123/default";
        password_file = "/run/keys/superset-async/clickhouse_password";
      };
      # Alerts & Reports (docs/reports.md): beat schedules them, the worker takes the screenshots
      # with a headless Chromium and sends them; links in the mails point at the proxy's address.
      reports = {
        enabled = true;
        smtp = {
          host = "smtp.example.org";
          port = 587;
          starttls = true;
          user = "superset@example.org";
          password_file = "/run/keys/superset-async/smtp_password";
          mail_from = "superset@example.org";
        };
        webdriver = {
          chromium_path = "${pkgs.chromium}/bin/chromium";
          chromedriver_path = "${pkgs.chromedriver}/bin/chromedriver";
        };
      };
    };
  };
  fonts.packages = [ pkgs.dejavu_fonts ]; # text in the screenshots
}
