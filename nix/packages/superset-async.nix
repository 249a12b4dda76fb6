# Superset 6.1 with the fixes that make its async stack work, plus the superset-async glue, as one
# Python environment built from python/lock/wheels.json: the very files (names and sha256) that
# `pip install --require-hashes -r python/lock/requirements.txt` installs elsewhere.
{
  lib,
  stdenv,
  fetchPypi,
  python312,
  autoPatchelfHook,
  zlib,
}:

let
  python = python312;
  lock = lib.importJSON ../../python/lock/wheels.json;
  target = "cp${lib.versions.major python.version}${lib.versions.minor python.version}-${stdenv.hostPlatform.parsed.cpu.name}-linux";
  files =
    lock.targets.${target}
      or (throw "superset-async: python/lock/wheels.json has no files for ${target}; add the target to tools/relock.py and relock");

  # name-version[-build]-python-abi-platform.whl (PEP 427)
  wheelParts =
    filename:
    let
      m = builtins.match "([^-]+)-([^-]+)(-[0-9][^-]*)?-([^-]+)-([^-]+)-([^-]+)\\.whl" filename;
    in
    if m == null then
      null
    else
      {
        pname = builtins.elemAt m 0;
        python = builtins.elemAt m 3;
        abi = builtins.elemAt m 4;
        platform = builtins.elemAt m 5;
      };

  fetchLocked =
    file:
    let
      wheel = wheelParts file.filename;
    in
    if wheel != null then
      fetchPypi {
        inherit (wheel) pname python abi platform;
        inherit (file) version sha256;
        format = "wheel";
        dist = wheel.python;
      }
    else
      fetchPypi {
        pname = lib.removeSuffix "-${file.version}.tar.gz" file.filename;
        inherit (file) version sha256;
      };

  distributions = map fetchLocked files;
  buildPython = python.withPackages (ps: [
    ps.pip
    ps.setuptools
    ps.wheel
  ]);
in
stdenv.mkDerivation {
  pname = "superset-async";
  version = (lib.importTOML ../../python/pyproject.toml).project.version;
  src = ../../python;

  nativeBuildInputs = [
    buildPython
    autoPatchelfHook
  ];
  # manylinux wheels link against these; autoPatchelfHook points them at the store. Keep in sync with
  # LIBRARIES in tests/python/test_package_libs.py, which checks every wheel's DT_NEEDED against both.
  buildInputs = [
    stdenv.cc.cc.lib
    zlib
  ];

  dontConfigure = true;
  buildPhase = ''
    runHook preBuild
    mkdir dist
    # sdists in the lock (pure Python) and the glue itself become wheels with the build Python
    for dist in ${lib.concatMapStringsSep " " toString distributions}; do
      case "$dist" in
        *.whl) cp "$dist" dist/"$(stripHash "$dist")" ;;
        *) python -m pip wheel --no-deps --no-build-isolation --no-index --wheel-dir dist "$dist" ;;
      esac
    done
    python -m pip wheel --no-deps --no-build-isolation --no-index --wheel-dir dist .
    runHook postBuild
  '';

  installPhase = ''
    runHook preInstall
    ${python.interpreter} -m venv --without-pip $out
    python -m pip --python $out/bin/python install --no-deps --no-index --no-cache-dir dist/*.whl
    runHook postInstall
  '';

  # The stack's programs: superset-async, superset, gunicorn, celery.
  meta = {
    description = "Apache Superset 6.1 with its asynchronous query stack, and the superset-async glue";
    mainProgram = "superset-async";
    license = lib.licenses.asl20;
    platforms = [
      "x86_64-linux"
      "aarch64-linux"
    ];
  };
}
