# The glue alone (render, check, schema, settings-doc) on nixpkgs' Python packages: enough to
# validate settings and render superset_config.py without building Superset's environment.
{
  lib,
  python312Packages,
}:

python312Packages.buildPythonApplication {
  pname = "superset-async-glue";
  version = (lib.importTOML ../../python/pyproject.toml).project.version;
  pyproject = true;
  src = ../../python;
  build-system = [ python312Packages.setuptools ];
  dependencies = with python312Packages; [
    click
    pydantic
    redis
    requests
  ];
  # The full test suite needs Superset, Redis and ClickHouse: see checks.glue-pytest.
  doCheck = false;
  pythonImportsCheck = [ "superset_async_glue.render" ];
  meta = {
    description = "superset-async glue: typed settings and the superset_config.py renderer";
    mainProgram = "superset-async";
    license = lib.licenses.asl20;
  };
}
