"""A PEP 517 build backend for `pip install .`: CMake builds the extension, this file packs the wheel.

The build directory is build/pip-<python tag> in the checkout (JAGGED_PIP_BUILD_DIR overrides it, e.g. with
scripts/setup.sh's build/ to reuse what it compiled), and a second `pip install .` is incremental. Only wheels are built (no sdist: the package is built from a
checkout)."""

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "jagged"


def _version():
    for line in (ROOT / "pyproject.toml").read_text().splitlines():
        if line.startswith("version"):
            return line.split("=", 1)[1].strip().strip('"')
    raise RuntimeError("pyproject.toml has no version")


def _tag():
    python = f"cp{sys.version_info.major}{sys.version_info.minor}"
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{python}-{python}-{platform}"


def _metadata():
    return (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {_version()}\n"
            "Summary: Transformer inference on nested (ragged) batches, no padding\nRequires-Dist: numpy\n")


def _build_package():
    build = Path(os.environ.get("JAGGED_PIP_BUILD_DIR") or ROOT / "build" / f"pip-{_tag()}")
    # The interpreter itself (a venv's python is a link to it): its headers and ABI are what the module needs.
    python = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    configure = ["cmake", "-S", str(ROOT), "-B", str(build), f"-DJAGGED_PYTHON_EXECUTABLE={python}"]
    if not (build / "CMakeCache.txt").exists():  # a new build folder: only what the module needs
        configure += ["-G", "Ninja"] if shutil.which("ninja") else []
        configure += ["-DCMAKE_BUILD_TYPE=Release", "-DBUILD_TESTING=OFF", "-DJAGGED_BUILD_BENCH=OFF"]
    subprocess.run(configure, check=True, stdout=sys.stderr)
    subprocess.run(["cmake", "--build", str(build), "--target", "_jagged"], check=True, stdout=sys.stderr)
    return build / "python" / NAME


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    info = Path(metadata_directory) / f"{NAME}-{_version()}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(_metadata())
    return info.name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    package = _build_package()
    info = f"{NAME}-{_version()}.dist-info"
    files = {f"{NAME}/{path.name}": path.read_bytes() for path in sorted(package.iterdir())
             if path.suffix in (".py", ".so")}
    files[f"{info}/METADATA"] = _metadata().encode()
    files[f"{info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: jagged build_backend\nRoot-Is-Purelib: false\n"
                              f"Tag: {_tag()}\n").encode()
    record = [_record_line(path, data) for path, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel_name = f"{NAME}-{_version()}-{_tag()}.whl"
    os.makedirs(wheel_directory, exist_ok=True)
    with zipfile.ZipFile(Path(wheel_directory) / wheel_name, "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return wheel_name
