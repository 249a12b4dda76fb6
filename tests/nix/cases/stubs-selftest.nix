# Cases for the stubs themselves, through a tiny module written here: if these fail, a failure in
# another case file says nothing about the module it tests.
{ lib, pkgs, utils, ... }:

let
  # A small service module of the same shape as ours: a Redis instance, a system user, a
  # hardened unit whose lists other modules extend, a config file in /etc.
  hello =
    { config, lib, pkgs, utils, ... }:
    let
      cfg = config.services.hello;
      json = pkgs.formats.json { };
    in
    {
      options.services.hello = {
        enable = lib.mkEnableOption "hello";
        port = lib.mkOption { type = lib.types.port; default = 8088; };
        openFirewall = lib.mkOption { type = lib.types.bool; default = false; };
        settings = lib.mkOption { type = json.type; default = { }; };
      };
      config = lib.mkIf cfg.enable {
        assertions = [
          {
            assertion = cfg.port != 22;
            message = "services.hello.port must not be 22 (services.openssh uses it)";
          }
        ];
        meta.maintainers = [ "nobody" ];
        services.redis.servers.hello.enable = true;
        users.users.hello = {
          isSystemUser = true;
          group = "hello";
          extraGroups = [ config.services.redis.servers.hello.group ];
        };
        users.groups.hello = { };
        networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [ cfg.port ];
        environment.etc."hello/settings.json".source = json.generate "hello-settings.json" cfg.settings;
        systemd.tmpfiles.settings.hello."/var/lib/hello/uploads".d = {
          mode = "0750";
          user = "hello";
          group = "hello";
        };
        systemd.services.hello = {
          description = "Hello service";
          wantedBy = [ "multi-user.target" ];
          after = [ "network.target" "redis-hello.service" ];
          requires = [ "redis-hello.service" ];
          environment = {
            GREETING = "hi there";
            UNSET = null;
          };
          path = [ pkgs.python3 ];
          script = ''
            exec python3 -m http.server ${toString cfg.port}
          '';
          serviceConfig = {
            User = "hello";
            Group = "hello";
            StateDirectory = "hello";
            LoadCredential = [ "secret:/run/keys/hello-secret" ];
            SystemCallFilter = [ "@system-service" ];
            NoNewPrivileges = true;
            CapabilityBoundingSet = "";
            ExecStartPre = utils.escapeSystemdExecArgs [ "${pkgs.coreutils}/bin/true" "50%" ];
          };
        };
      };
    };

  on = extra: [ hello { services.hello.enable = true; } ] ++ lib.toList extra;
  unitText = cfg: n: cfg.system.build.units.${n}.text;
in
[
  # ---- accepted ---------------------------------------------------------------------------
  {
    name = "script becomes ExecStart; environment, [Unit] and [Install] render";
    expect = "ok";
    config = on [ ];
    check = cfg: [
      {
        name = "ExecStart is the job script";
        cond = lib.hasSuffix "/bin/hello-start" cfg.systemd.services.hello.serviceConfig.ExecStart;
      }
      {
        name = "unit text";
        got = unitText cfg "hello.service";
        contains = [
          "[Unit]\nAfter=network.target redis-hello.service\n"
          "Description=Hello service\n"
          "Requires=redis-hello.service\n"
          "[Service]\nEnvironment=\"GREETING=hi there\"\n"
          "NoNewPrivileges=true\n"
          "CapabilityBoundingSet=\n"
          "User=hello\n"
          "\n[Install]\nWantedBy=multi-user.target\n"
        ];
      }
      {
        name = "null environment entries are dropped";
        cond = !lib.hasInfix "UNSET" (unitText cfg "hello.service");
      }
      {
        name = "PATH has the service's path first, then NixOS' default path";
        cond = lib.hasPrefix "${pkgs.python3}/bin:${pkgs.coreutils}/bin:" cfg.systemd.services.hello.environment.PATH;
      }
      {
        name = "escapeSystemdExecArgs quotes and doubles %";
        expected = [ ''"${pkgs.coreutils}/bin/true" "50%%"'' ];
        got = lib.toList cfg.systemd.services.hello.serviceConfig.ExecStartPre;
      }
    ];
  }
  {
    name = "serviceConfig lists from several modules concatenate";
    expect = "ok";
    config = on {
      systemd.services.hello.serviceConfig = {
        SystemCallFilter = [ "~@privileged" ];
        LoadCredential = [ "other:/run/keys/other" ];
      };
    };
    check = cfg: [
      {
        name = "SystemCallFilter";
        expected = [ "@system-service" "~@privileged" ];
        got = cfg.systemd.services.hello.serviceConfig.SystemCallFilter;
      }
      {
        name = "LoadCredential is a repeated key";
        got = unitText cfg "hello.service";
        contains = "LoadCredential=secret:/run/keys/hello-secret\nLoadCredential=other:/run/keys/other\n";
      }
    ];
  }
  {
    name = "a list added to a string setting is appended (redis SystemCallFilter)";
    expect = "ok";
    config = on { systemd.services.redis-hello.serviceConfig.SystemCallFilter = [ "@system-service" ]; };
    check = cfg: [
      {
        name = "two entries, nixpkgs' string first";
        expected = [
          "~@cpu-emulation @debug @keyring @memlock @mount @obsolete @privileged @resources @setuid"
          "@system-service"
        ];
        got = cfg.systemd.services.redis-hello.serviceConfig.SystemCallFilter;
      }
    ];
  }
  {
    name = "mkForce settles a scalar conflict";
    expect = "ok";
    config = on [
      { systemd.services.hello.serviceConfig.User = lib.mkForce "root"; }
      { systemd.services.hello.serviceConfig.Group = lib.mkDefault "ignored"; }
    ];
    check = cfg: [
      {
        name = "User";
        expected = "root";
        got = cfg.systemd.services.hello.serviceConfig.User;
      }
      {
        name = "Group keeps the normal-priority value";
        expected = "hello";
        got = cfg.systemd.services.hello.serviceConfig.Group;
      }
    ];
  }
  {
    name = "redis server defaults follow nixpkgs";
    expect = "ok";
    config = on [ ];
    check =
      cfg:
      let
        r = cfg.services.redis.servers.hello;
        sc = cfg.systemd.services.redis-hello.serviceConfig;
      in
      [
        { name = "socket"; expected = "/run/redis-hello/redis.sock"; got = r.unixSocket; }
        { name = "socket mode"; expected = 660; got = r.unixSocketPerm; }
        { name = "no TCP"; expected = 0; got = r.port; }
        { name = "user"; expected = "redis-hello"; got = r.user; }
        { name = "unit user"; expected = "redis-hello"; got = sc.User; }
        { name = "runtime dir"; expected = "redis-hello"; got = sc.RuntimeDirectory; }
        { name = "system user created"; cond = cfg.users.users.redis-hello.isSystemUser; }
        { name = "group created"; cond = cfg.users.groups ? redis-hello; }
        { name = "redis.conf has the socket"; cond = r.settings.unixsocket == "/run/redis-hello/redis.sock"; }
      ];
  }
  {
    name = "firewall ports are sorted and unique";
    expect = "ok";
    config = on [
      { services.hello.openFirewall = true; }
      { networking.firewall.allowedTCPPorts = [ 8088 80 ]; }
    ];
    check = cfg: [
      {
        name = "allowedTCPPorts";
        expected = [ 80 8088 ];
        got = cfg.networking.firewall.allowedTCPPorts;
      }
    ];
  }
  {
    name = "etc, tmpfiles, formats.json and meta";
    expect = "ok";
    config = on [
      { services.hello.settings.greeting = "hi"; }
      { environment.etc."hello/motd".text = "hello\n"; }
    ];
    check = cfg: [
      {
        name = "etc text becomes a store file";
        cond = lib.isDerivation cfg.environment.etc."hello/motd".source;
      }
      {
        name = "JSON settings";
        expected = ''{"greeting":"hi"}'';
        got = cfg.environment.etc."hello/settings.json".source.text;
      }
      {
        name = "tmpfiles line";
        got = cfg.system.build.tmpfiles.text;
        contains = "d /var/lib/hello/uploads 0750 hello hello -\n";
      }
      {
        name = "meta.maintainers";
        expected = [ "nobody" ];
        got = cfg.meta.maintainers;
      }
    ];
  }
  {
    name = "a user whose group is not declared is refused, as on NixOS";
    expect = "fail";
    config = {
      users.users.lonely = {
        isSystemUser = true;
        group = "nowhere";
      };
    };
    message = ''users.users.lonely.group is "nowhere", which no users.groups entry declares.'';
  }
  {
    name = "a case may extend pkgs";
    expect = "ok";
    pkgs = pkgs // {
      redis = pkgs.writeShellScriptBin "redis-server" "exit 0";
    };
    config = on [ ];
    check = cfg: [
      {
        name = "redis-hello runs the replacement";
        cond = lib.hasInfix "-redis-server/bin/redis-server " cfg.systemd.services.redis-hello.serviceConfig.ExecStart;
      }
    ];
  }

  # ---- rejected ---------------------------------------------------------------------------
  {
    name = "invalid unit name";
    expect = "fail";
    config = {
      systemd.services."hello world".script = "true";
    };
    message = ''"hello world.service" is not a valid unit name'';
  }
  {
    name = "dependency on something that is not a unit name";
    expect = "fail";
    config = on { systemd.services.hello.after = [ "network" ]; };
    # The module system numbers definitions ("[definition 2-entry 1]"); match around that.
    message = [
      "A definition for option `systemd.services.hello.after."
      "is not of type `string matching the pattern"
      ''case "dependency on something that is not a unit name"': "network"''
    ];
  }
  {
    name = "two different scalar values conflict";
    expect = "fail";
    config = on { systemd.services.hello.serviceConfig.User = "root"; };
    message = "The option `systemd.services.hello.serviceConfig.User' has conflicting definition values";
  }
  {
    name = "a module's failed assertion";
    expect = "fail";
    config = on { services.hello.port = 22; };
    message = "Failed assertions:\n- services.hello.port must not be 22 (services.openssh uses it)";
  }
  {
    name = "system user without a group";
    expect = "fail";
    config = {
      users.users.hello.isSystemUser = true;
    };
    message = "users.users.hello.group is unset";
  }
  {
    name = "user that is neither system nor normal";
    expect = "fail";
    config = {
      users.users.hello.group = "hello";
      users.groups.hello = { };
    };
    message = "Exactly one of users.users.hello.isSystemUser and users.users.hello.isNormalUser must be set.";
  }
  {
    name = "option of the wrong type";
    expect = "fail";
    config = on { services.hello.port = "http"; };
    message = "A definition for option `services.hello.port' is not of type `16 bit unsigned integer";
  }
  {
    name = "option that does not exist";
    expect = "fail";
    config = on { services.hello.listen = "0.0.0.0"; };
    message = "The option `services.hello.listen' does not exist.";
  }
  {
    name = "unknown service Type";
    expect = "fail";
    config = on { systemd.services.hello.serviceConfig.Type = "forky"; };
    message = ''systemd.services.hello.serviceConfig.Type is "forky"'';
  }
  {
    name = "service without ExecStart";
    expect = "fail";
    config = {
      systemd.services.empty.description = "does nothing";
    };
    message = "systemd.services.empty has no ExecStart=";
  }
  {
    name = "redis password given twice";
    expect = "fail";
    config = on {
      services.redis.servers.hello = {
        requirePass = "x";
        requirePassFile = "/run/keys/redis";
      };
    };
    message = "You can only set one of services.redis.servers.hello.requirePass or services.redis.servers.hello.requirePassFile";
  }
]
