# A worker host of a scaled-out stack: only the Celery worker (add as many such hosts as you need).
#
#   imports = [ inputs.superset-async.nixosModules.default ./scale-out-worker.nix ];
{
  imports = [ ./scale-out-common.nix ];
  services.superset-async = {
    web.enable = false;
    beat.enable = false;
    # Databases are declared on the web host only: bootstrap stores them (passwords encrypted with
    # the shared secret key) in the metadata database, which the worker reads.
    settings.worker.concurrency = 4;
  };
}
