# A configuration whose files the runner BUILDS with the /bin/sh builders, then compares unit
# files line by line (`lines`: exact lines; `patterns`: Python regexes that must match a whole
# line). Keys are unit file names.
{ lib, pkgs, ... }:
{
  config = {
    services.redis.servers.sample.enable = true;
    users.users.sample = {
      isSystemUser = true;
      group = "sample";
    };
    users.groups.sample = { };
    environment.etc."sample/settings.json".source = (pkgs.formats.json { }).generate "settings.json" { mode = "offline"; };
    systemd.services.sample = {
      description = "Offline sample";
      wantedBy = [ "multi-user.target" ];
      after = [ "redis-sample.service" ];
      environment.SAMPLE_MODE = "offline";
      preStart = "mkdir -p /var/lib/sample/cache";
      script = ''exec ${pkgs.python3.interpreter} -c 'print("hello")' '';
      serviceConfig = {
        User = "sample";
        StateDirectory = "sample";
        LoadCredential = [ "db:/run/keys/db" "api:/run/keys/api" ];
        PrivateTmp = true;
        ProtectHome = false;
      };
    };
  };

  lines = {
    "sample.service" = [
      "[Unit]"
      "After=redis-sample.service"
      "Description=Offline sample"
      "[Service]"
      ''Environment="SAMPLE_MODE=offline"''
      "LoadCredential=db:/run/keys/db"
      "LoadCredential=api:/run/keys/api"
      "PrivateTmp=true"
      "ProtectHome=false"
      "StateDirectory=sample"
      "User=sample"
      "[Install]"
      "WantedBy=multi-user.target"
    ];
    "redis-sample.service" = [
      "RuntimeDirectory=redis-sample"
      "User=redis-sample"
      "Type=notify"
    ];
  };
  patterns = {
    "sample.service" = [
      "ExecStart=/nix/store/[0-9a-z]{32}-unit-script-sample-start/bin/sample-start"
      "ExecStartPre=/nix/store/[0-9a-z]{32}-unit-script-sample-preStart/bin/sample-preStart"
      ''Environment="PATH=/nix/store/[0-9a-z]{32}-coreutils/bin:.*"''
    ];
    "redis-sample.service" = [
      "ExecStart=/nix/store/[0-9a-z]{32}-redis/bin/redis-server /var/lib/redis-sample/redis.conf ?"
    ];
  };
}
