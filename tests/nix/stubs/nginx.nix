# services.nginx and security.acme as a module that consumes them sees them (nixpkgs'
# nixos/modules/services/web-servers/nginx/{default,vhost-options,location-options}.nix and
# nixos/modules/security/acme): the virtual host and location options a proxy in front of an app
# sets, NixOS' assertions on TLS (a forceSSL/addSSL/onlySSL host needs a certificate from ACME,
# useACMEHost or sslCertificate{,Key}; ACME needs acceptTerms and an e-mail), the ACME certificate
# an enableACME host requests, and a rendering of each virtual host's server blocks in NixOS' words
# (recommended proxy headers, the websocket upgrade lines) as `system.build.nginxVirtualHosts.<name>`,
# so a test can read the headers nginx would send. No nginx unit, no http block, no listen options.
{
  config,
  lib,
  ...
}:

let
  inherit (lib) mkOption types;
  cfg = config.services.nginx;
  opt = type: default: description: mkOption { inherit type default description; };

  # NixOS' recommendedProxyConfig (included by a location with recommendedProxySettings).
  recommendedProxyHeaders = ''
    proxy_set_header Host $host;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host $host;
    proxy_set_header X-Forwarded-Server $host;
  '';
  # What proxyWebsockets adds ($connection_upgrade is mapped in NixOS' http block).
  websocketLines = ''
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
  '';

  locationModule = {
    options = {
      proxyPass = opt (types.nullOr types.str) null "proxy_pass target.";
      proxyWebsockets = opt types.bool false "Upgrade/Connection headers for websockets.";
      recommendedProxySettings = opt types.bool cfg.recommendedProxySettings "Include the recommended proxy headers.";
      root = opt (types.nullOr types.path) null "root directive.";
      return = opt (types.nullOr (types.either types.str types.int)) null "return directive.";
      priority = opt types.int 1000 "Order of the location in the server block.";
      extraConfig = opt types.lines "" "Lines added to the location block.";
    };
  };

  vhostModule =
    { name, ... }:
    {
      options = {
        serverName = opt (types.nullOr types.str) null "server_name (default: the attribute name).";
        serverAliases = opt (types.listOf types.str) [ ] "Further server names.";
        forceSSL = opt types.bool false "Redirect HTTP to HTTPS.";
        addSSL = opt types.bool false "Serve HTTPS besides HTTP.";
        onlySSL = opt types.bool false "Serve HTTPS only.";
        enableACME = opt types.bool false "Obtain the certificate through security.acme.";
        useACMEHost = opt (types.nullOr types.str) null "Use another host's ACME certificate.";
        acmeRoot = opt (types.nullOr types.str) "/var/lib/acme/acme-challenge" "Webroot of the HTTP-01 challenge.";
        # NixOS gives these no default (reading one undefined fails); ACME hosts use the ACME directory.
        sslCertificate = opt (types.nullOr types.path) null "Certificate file.";
        sslCertificateKey = opt (types.nullOr types.path) null "Certificate key file.";
        http2 = opt types.bool true "HTTP/2 on the TLS listeners.";
        locations = opt (types.attrsOf (types.submodule locationModule)) { } "Location blocks.";
        extraConfig = opt types.lines "" "Lines added to the server block.";
      };
    };

  hasSSL = v: v.onlySSL || v.addSSL || v.forceSSL;
  acmeDir = name: v: "/var/lib/acme/${if v.useACMEHost != null then v.useACMEHost else name}";
  certOf = name: v: if v.enableACME || v.useACMEHost != null then "${acmeDir name v}/fullchain.pem" else v.sslCertificate;
  keyOf = name: v: if v.enableACME || v.useACMEHost != null then "${acmeDir name v}/key.pem" else v.sslCertificateKey;
  serverNameOf = name: v: if v.serverName != null then v.serverName else name;

  renderLocation = path: l: ''
    location ${path} {
    ${lib.optionalString (l.proxyPass != null) "proxy_pass ${l.proxyPass};\n"}${lib.optionalString l.recommendedProxySettings recommendedProxyHeaders}${lib.optionalString l.proxyWebsockets websocketLines}${lib.optionalString (l.return != null) "return ${toString l.return};\n"}${l.extraConfig}
    }
  '';
  renderVhost =
    name: v:
    let
      names = lib.concatStringsSep " " ([ (serverNameOf name v) ] ++ v.serverAliases);
      locations = lib.concatStrings (
        map (p: renderLocation p v.locations.${p}) (
          lib.sort (a: b: v.locations.${a}.priority < v.locations.${b}.priority || (v.locations.${a}.priority == v.locations.${b}.priority && a < b)) (lib.attrNames v.locations)
        )
      );
      redirect = ''
        server {
        listen 0.0.0.0:80;
        server_name ${names};
        location / {
        return 301 https://$host$request_uri;
        }
        }
      '';
      main = ''
        server {
        ${lib.optionalString (!v.onlySSL && !v.forceSSL) "listen 0.0.0.0:80;\n"}${lib.optionalString (hasSSL v) "listen 0.0.0.0:443 ssl;\n"}server_name ${names};
        ${lib.optionalString (hasSSL v) "ssl_certificate ${certOf name v};\nssl_certificate_key ${keyOf name v};\n"}${locations}${v.extraConfig}
        }
      '';
    in
    lib.optionalString v.forceSSL redirect + main;

  acmeHosts = lib.filterAttrs (_: v: v.enableACME) cfg.virtualHosts;
in
{
  options.services.nginx = {
    enable = lib.mkEnableOption "nginx";
    recommendedProxySettings = opt types.bool false "Recommended proxy settings (also each location's default).";
    recommendedTlsSettings = opt types.bool false "Recommended TLS settings.";
    recommendedOptimisation = opt types.bool false "Recommended optimisation settings.";
    recommendedGzipSettings = opt types.bool false "Recommended gzip settings.";
    clientMaxBodySize = opt types.str "10m" "client_max_body_size of the http block.";
    proxyTimeout = opt types.str "60s" "Proxy timeouts of the http block (with recommendedProxySettings).";
    virtualHosts = opt (types.attrsOf (types.submodule vhostModule)) { } "Virtual hosts.";
  };

  options.security.acme = {
    acceptTerms = opt types.bool false "Accept the CA's terms of service.";
    defaults.email = opt (types.nullOr types.str) null "Contact e-mail for the CA.";
    certs = opt (types.attrsOf (
      types.submodule {
        options = {
          domain = opt types.str "" "The certificate's main domain.";
          extraDomainNames = opt (types.listOf types.str) [ ] "Further domains.";
          webroot = opt (types.nullOr types.str) null "Webroot of the HTTP-01 challenge.";
          group = opt types.str "acme" "Group that can read the certificate.";
        };
      }
    )) { } "Certificates to obtain.";
  };

  config = lib.mkMerge [
    (lib.mkIf cfg.enable {
      # NixOS' nginx module: the wording of its assertions on TLS.
      assertions = lib.concatLists (
        lib.mapAttrsToList (name: v: [
          {
            assertion = lib.count lib.id [ v.addSSL v.onlySSL v.forceSSL ] <= 1;
            message = "Options services.nginx.service.virtualHosts.${name}.addSSL, services.nginx.virtualHosts.${name}.onlySSL and services.nginx.virtualHosts.${name}.forceSSL are mutually exclusive.";
          }
          {
            assertion = !(hasSSL v) || (certOf name v != null && keyOf name v != null);
            message = "The option `services.nginx.virtualHosts.${name}.sslCertificate' is used but not defined.";
          }
          {
            assertion = !(v.enableACME && v.useACMEHost != null);
            message = "Options services.nginx.service.virtualHosts.${name}.enableACME and services.nginx.virtualHosts.${name}.useACMEHost are mutually exclusive.";
          }
        ]) cfg.virtualHosts
      );
      security.acme.certs = lib.mapAttrs (name: v: {
        domain = lib.mkDefault (serverNameOf name v);
        extraDomainNames = v.serverAliases;
        webroot = lib.mkDefault v.acmeRoot;
        group = lib.mkDefault "nginx";
      }) acmeHosts;
      system.build.nginxVirtualHosts = lib.mapAttrs renderVhost cfg.virtualHosts;
    })
    (lib.mkIf (config.security.acme.certs != { }) {
      # NixOS' acme module.
      assertions = [
        {
          assertion = config.security.acme.acceptTerms;
          message = "You must accept the CA's terms of service before using the ACME module by setting `security.acme.acceptTerms` to `true`.";
        }
        {
          assertion = config.security.acme.defaults.email != null;
          message = "You must define `security.acme.certs.<name>.email` or `security.acme.defaults.email` to register with the CA.";
        }
      ];
    })
  ];
}
