# Secrets for the VM tests, generated at boot into /run/keys (root, 0600) before anything reads
# them: nothing secret enters the Nix store, as on a real host.
{ pkgs, ... }:

{
  systemd.services.test-secrets = {
    wantedBy = [ "multi-user.target" ];
    before = [
      "superset-async-init.service"
      "superset-async-web.service"
      "superset-async-worker.service"
      "superset-async-beat.service"
      "redis-superset-async.service"
      "redis-shared.service"
      "postgresql.service"
    ];
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
    };
    path = [ pkgs.openssl ];
    script = ''
      install -d -m 0755 /run/keys
      for name in secret-key gaq-jwt redis admin; do
        [ -e /run/keys/$name ] || (umask 077; openssl rand -base64 48 | tr -d '/+=' > /run/keys/$name)
      done
      # Fixed test passwords the other services of the test must share
      (umask 077; echo -n superset-pg > /run/keys/postgres; echo -n shared-redis > /run/keys/shared-redis)
    '';
  };
}
