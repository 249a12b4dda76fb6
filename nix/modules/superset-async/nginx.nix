# nginx.enable: NixOS' nginx as the TLS reverse proxy in front of the web, with its certificate from
# ACME (security.acme) or from files. Wired to the glue's proxy settings: `settings.web.public_url`
# becomes the virtual host's https:// address, which makes the rendered config mark the session and
# GAQ cookies Secure and trust exactly one proxy's X-Forwarded-* headers (ProxyFix, and with it HSTS);
# the web stays on loopback so nothing but this proxy can send those headers.
{
  config,
  lib,
  ...
}:

let
  inherit (lib) mkDefault mkIf mkOption types;
  cfg = config.services.superset-async;
  n = cfg.nginx;
  s = cfg.settings;
  opt = "services.superset-async";
  loopback = [
    "127.0.0.1"
    "::1"
    "localhost"
  ];
  # Where the proxy reaches the web; a wildcard bind means loopback (as web_address.py's web_host).
  upstreamHost =
    if lib.elem s.web.bind [ "0.0.0.0" "localhost" ] then
      "127.0.0.1"
    else if s.web.bind == "::" then
      "[::1]"
    else if lib.hasInfix ":" s.web.bind then
      "[${s.web.bind}]"
    else
      s.web.bind;
  certFiles = n.sslCertificate != null;
in
{
  options.services.superset-async.nginx = {
    enable = lib.mkEnableOption ''
      nginx as a TLS reverse proxy in front of the web (`services.nginx.virtualHosts.<virtualHostName>`).
      Sets `settings.web.public_url` to `https://<virtualHostName>/` and keeps the web on loopback
      (both as defaults)'';

    virtualHostName = mkOption {
      type = types.strMatching "[A-Za-z0-9][A-Za-z0-9.-]*";
      example = "superset.example.org";
      description = "The virtual host's name (its `server_name`, the ACME certificate's domain and the host of `settings.web.public_url`).";
    };

    enableACME = mkOption {
      type = types.bool;
      default = !certFiles;
      defaultText = lib.literalExpression "config.services.superset-async.nginx.sslCertificate == null";
      description = ''
        Obtain the certificate through NixOS' `security.acme` (HTTP-01 on port 80); set
        `security.acme.acceptTerms` and `security.acme.defaults.email`. Off when certificate files are given.
      '';
    };

    forceSSL = mkOption {
      type = types.bool;
      default = true;
      description = "Redirect HTTP to HTTPS. Superset's cookies are marked Secure (`settings.web.public_url`), so plain HTTP cannot log in anyway.";
    };

    sslCertificate = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/var/lib/certs/superset/fullchain.pem";
      description = "Certificate chain file, instead of ACME.";
    };

    sslCertificateKey = mkOption {
      # A string, never a Nix path: a path literal would copy the key into the world-readable store.
      type = types.nullOr (types.strMatching "/.*");
      default = null;
      example = "/var/lib/certs/superset/key.pem";
      description = "Private key of `sslCertificate`, readable by nginx; a path outside the Nix store (as a string).";
    };

    clientMaxBodySize = mkOption {
      type = types.strMatching "[0-9]+[kKmMgG]?";
      default = "100m";
      description = "nginx's `client_max_body_size` for the web: the largest CSV/Excel/columnar upload (nginx's own default, 1m, refuses most files with HTTP 413).";
    };

    virtualHost = mkOption {
      type = types.deferredModule;
      default = { };
      example = lib.literalExpression ''
        {
          serverAliases = [ "bi.example.org" ];
          locations."/".extraConfig = "allow 10.0.0.0/8; deny all;";
        }
      '';
      description = ''
        More of `services.nginx.virtualHosts.<virtualHostName>` (NixOS' virtual host options), merged
        with what this module sets; its values are defaults, so a plain definition here wins (use
        `lib.mkForce` for `locations."/".proxyPass`).
      '';
    };
  };

  config = mkIf (cfg.enable && n.enable) {
    assertions = [
      {
        assertion = cfg.web.enable;
        message = "${opt}.nginx.enable proxies to this host's web, but ${opt}.web.enable is false; enable the web here or run nginx on the web host.";
      }
      {
        assertion = (n.sslCertificate == null) == (n.sslCertificateKey == null);
        message = "${opt}.nginx.sslCertificate and ${opt}.nginx.sslCertificateKey go together; give both, or neither to use ACME.";
      }
      {
        assertion = n.sslCertificateKey == null || !(lib.hasPrefix builtins.storeDir n.sslCertificateKey);
        message = "${opt}.nginx.sslCertificateKey is in the Nix store, readable by every user of the host; give a path outside the store.";
      }
      {
        assertion = !(n.enableACME && certFiles);
        message = "${opt}.nginx.enableACME and ${opt}.nginx.sslCertificate are exclusive; drop one.";
      }
    ];
    # ProxyFix trusts one hop of X-Forwarded-*: whoever reaches gunicorn directly could claim any
    # client address (the login rate limit's key) or scheme.
    warnings = lib.optional (!lib.elem s.web.bind loopback) ''
      ${opt}.settings.web.bind is ${s.web.bind} while nginx is in front (${opt}.nginx.enable): clients that reach
      the web directly bypass the TLS proxy and can forge the X-Forwarded-* headers the web trusts from it. Leave
      settings.web.bind at its default (127.0.0.1 with nginx).'';

    services.superset-async.settings.web = {
      public_url = mkDefault "https://${n.virtualHostName}/";
      bind = mkDefault "127.0.0.1";
    };

    # With the proxy in front, openFirewall opens the proxy's ports; the web's stays closed (units.nix).
    networking.firewall.allowedTCPPorts = lib.optionals cfg.openFirewall [
      80
      443
    ];

    services.nginx = {
      enable = true;
      recommendedTlsSettings = mkDefault true;
      recommendedOptimisation = mkDefault true;
      recommendedGzipSettings = mkDefault true;
      # A function, so that it is read as a module with `imports` (an attribute set given to a
      # `types.submodule` is read as its config only).
      virtualHosts.${n.virtualHostName} = _: {
        imports = [ n.virtualHost ];
        forceSSL = mkDefault n.forceSSL;
        enableACME = mkDefault n.enableACME;
        sslCertificate = mkIf certFiles (mkDefault n.sslCertificate);
        sslCertificateKey = mkIf certFiles (mkDefault n.sslCertificateKey);
        locations."/" = {
          proxyPass = mkDefault "http://${upstreamHost}:${toString s.web.port}";
          # Host, X-Real-IP, X-Forwarded-For/-Proto/-Host: what the web's ProxyFix reads.
          recommendedProxySettings = mkDefault true;
          # Upgrade/Connection: GAQ's websocket transport is off here (polling), but nothing blocks it.
          proxyWebsockets = mkDefault true;
          # gunicorn ends a request after web.timeout_seconds; nginx waits a little longer, so the
          # web's own answer reaches the user instead of nginx's 504.
          extraConfig = ''
            client_max_body_size ${n.clientMaxBodySize};
            proxy_read_timeout ${toString (s.web.timeout_seconds + 10)}s;
            proxy_send_timeout ${toString (s.web.timeout_seconds + 10)}s;
          '';
        };
      };
    };
  };
}
