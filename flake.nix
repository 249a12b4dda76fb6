{
  description = "Apache Superset 6.1 with its asynchronous query stack (Redis, gunicorn, Celery worker and beat) as a NixOS module";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    # The library alone: what the offline evaluation tests use where nixpkgs cannot be fetched.
    nixpkgs-lib.url = "github:nix-community/nixpkgs.lib";
  };

  outputs =
    {
      self,
      nixpkgs,
      nixpkgs-lib,
    }:
    let
      inherit (nixpkgs-lib) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      eachSystem = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      public = {
        nixosModules.superset-async = {
          imports = [ ./nix/modules/superset-async ];
        };
        nixosModules.default = self.nixosModules.superset-async;

        # `nix flake init -t <this flake>`: a NixOS host flake using nixosModules.default.
        templates.default = {
          path = ./templates/default;
          description = "A NixOS host running Superset's async query stack (secrets as files, *_file settings)";
          welcomeText = "Read README.md: hardware-configuration.nix, the secret files, then nixos-rebuild switch.";
        };

        packages = eachSystem (pkgs: {
          superset-async = pkgs.callPackage ./nix/packages/superset-async.nix { };
          superset-async-glue = pkgs.callPackage ./nix/packages/superset-async-glue.nix { };
          default = self.packages.${pkgs.stdenv.hostPlatform.system}.superset-async;
        });

        # `nix run .#verify` on a NixOS host running the module: reads /etc/superset-async/*.
        apps = eachSystem (pkgs: {
          verify = {
            type = "app";
            program = "${pkgs.writeShellScript "superset-async-verify" ''
              exec ${self.packages.${pkgs.stdenv.hostPlatform.system}.superset-async}/bin/superset-async verify \
                --settings /etc/superset-async/settings.json --config /etc/superset-async/superset_config.py "$@"
            ''}";
          };
        });
      };

      dev = {
        checks = eachSystem (
          pkgs:
          let
            system = pkgs.stdenv.hostPlatform.system;
          in
          {
            offline-eval = import ./tests/nix/flake-check.nix {
              inherit pkgs lib;
              module = self.nixosModules.superset-async;
            };
            glue-pytest = pkgs.callPackage ./nix/packages/glue-tests.nix {
              superset-async = self.packages.${system}.superset-async;
            };
          }
          // import ./tests/nixos {
            inherit lib;
            inherit (pkgs) testers;
            module = self.nixosModules.superset-async;
          }
        );

        devShells = eachSystem (pkgs: {
          default = pkgs.mkShell {
            packages = [
              pkgs.python312
              pkgs.redis
              pkgs.clickhouse
              pkgs.nixfmt
            ];
            shellHook = ''
              echo "superset-async: scripts/setup builds .venv from python/lock; scripts/test runs every test"
            '';
          };
        });

        formatter = eachSystem (pkgs: pkgs.nixfmt);
      };
    in
    public // dev;
}
