# Superset's StatsD metrics to Prometheus through nixpkgs' statsd_exporter
# (services.prometheus.exporters.statsd): the exporter listens for StatsD on loopback UDP and
# serves Prometheus' /metrics; the glue's `settings.metrics.statsd_*` point STATS_LOGGER at it.
# Celery's metrics come from Flower's /metrics (flower.nix). docs/metrics.md has the scrape config.
{
  config,
  lib,
  ...
}:

let
  inherit (lib) mkIf mkOption types;
  cfg = config.services.superset-async;
  m = cfg.metrics.statsdExporter;
in
{
  options.services.superset-async.metrics.statsdExporter = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Run nixpkgs' `services.prometheus.exporters.statsd` for Superset's own metrics and point
        `settings.metrics.statsd_host`/`statsd_port` at it (StatsD over UDP on 127.0.0.1:`udpPort`).
        Prometheus scrapes the exporter's `listenAddress`:`port` (docs/metrics.md).
      '';
    };
    udpPort = mkOption {
      type = types.port;
      default = 9125;
      description = "The loopback UDP port the exporter receives StatsD on (statsd_exporter's own default).";
    };
  };

  config = mkIf (cfg.enable && m.enable) {
    services.superset-async.settings.metrics = {
      statsd_host = "127.0.0.1";
      statsd_port = m.udpPort;
    };
    services.prometheus.exporters.statsd = {
      enable = true;
      # statsd_exporter listens on every address, UDP and TCP, by default: loopback UDP only here.
      extraFlags = [
        "--statsd.listen-udp=127.0.0.1:${toString m.udpPort}"
        "--statsd.listen-tcp="
      ];
    };
  };
}
