# The glue's tests that need no running stack, run inside the Nix-built environment: settings
# validation, rendering, and real Superset loading the rendered config against a real Redis.
{
  runCommand,
  python312,
  redis,
  superset-async,
}:

runCommand "superset-async-glue-pytest"
  {
    nativeBuildInputs = [
      superset-async
      redis
    ];
  }
  ''
    cp -r ${../../tests} tests
    chmod -R u+w tests
    export HOME=$TMPDIR
    export PYTHONPATH=${python312.pkgs.makePythonPath [ python312.pkgs.pytest ]}
    ${superset-async}/bin/python -m pytest -q -p no:cacheprovider \
      tests/python/test_settings.py tests/python/test_render.py tests/python/test_superset_config.py \
      -k "not clean_python"
    touch $out
  ''
