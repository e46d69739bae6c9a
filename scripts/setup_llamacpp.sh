#!/usr/bin/env bash
# Builds llama.cpp as a live peer for `jagged bench --compare-llamacpp` (and the llama-server / llama-quantize
# comparisons), from the source that npm `node-llama-cpp@3.21.1` bundles (llama/gitRelease.bundle, a git bundle of
# llama.cpp commit 80fb11a). Nothing is committed: the package, the clone and the build all live in build/llama.cpp/.
#   build/llama.cpp/src          the clone of the bundle
#   build/llama.cpp/build/bin    libllama, libggml*, llama-server, llama-quantize, llama-batched-bench, llama-cli,
#                                llama-simple
#   build/llama.cpp/llamacpp_driver   bench/llamacpp_driver.cpp built against that libllama (jagged runs it)
# Needs only what scripts/setup.sh installs (a C++ compiler, cmake, ninja, git, npm). Safe to re-run: every step is
# skipped when its output exists. JAGGED_LLAMACPP_DIR moves the whole tree (jagged reads the same variable);
# JAGGED_LLAMACPP_JOBS sets the build's parallelism (default 2, the machine this targets has 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

readonly PACKAGE="node-llama-cpp@3.21.1"
readonly COMMIT="80fb11ac73e66d89eae2c6a91d8a77428fa733ed"
root="${JAGGED_LLAMACPP_DIR:-build/llama.cpp}"
jobs="${JAGGED_LLAMACPP_JOBS:-2}"
mkdir -p "$root"
root="$(realpath "$root")"

for tool in git cmake ninja npm c++; do
  command -v "$tool" >/dev/null || { echo "setup_llamacpp: $tool is missing; run scripts/setup.sh first" >&2; exit 1; }
done

# 1. The bundle, out of the npm package (npm pack fetches the tarball without running its install scripts, which
#    would download prebuilt binaries).
bundle="$root/npm/package/llama/gitRelease.bundle"
if [ ! -f "$bundle" ]; then
  echo "setup_llamacpp: fetching $PACKAGE" >&2
  mkdir -p "$root/npm"
  tarball="$(cd "$root/npm" && npm pack "$PACKAGE" --silent --no-audit --no-fund | tail -n 1)"
  tar -xzf "$root/npm/$tarball" -C "$root/npm" package/llama/gitRelease.bundle
  rm -f "$root/npm/$tarball"
fi

# 2. The source, checked out at the bundled commit.
if [ "$(git -C "$root/src" rev-parse HEAD 2>/dev/null || true)" != "$COMMIT" ]; then
  rm -rf "$root/src"
  git clone --quiet "$bundle" "$root/src"
  git -C "$root/src" -c advice.detachedHead=false checkout --quiet "$COMMIT"
fi

# 3. The library, then jagged's driver against it (the main CMake build never needs llama.cpp), then the tools the
#    comparisons use. Tests and the app are off; examples stay on for llama-simple, but only the named targets are
#    built. No network at build time: no curl, no OpenSSL, no prebuilt web UI download.
#    libllama's ~170 sources (one per model architecture) all parse src/models/models.h: a hook precompiles it for
#    them, which on a 2-core machine saves most of the build (llama.cpp's sources are left as they are).
cat > "$root/precompile_models_h.cmake" <<'CMAKE'
function(jagged_precompile_models_h)
  get_target_property(sources llama SOURCES)
  foreach(source IN LISTS sources)
    if(NOT source MATCHES "models/[^/]*\\.cpp$")
      set_source_files_properties(${source} TARGET_DIRECTORY llama PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
    endif()
  endforeach()
  get_target_property(dir llama SOURCE_DIR)
  target_precompile_headers(llama PRIVATE "${dir}/models/models.h")
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL jagged_precompile_models_h)
CMAKE
build() { cmake --build "$root/build" --parallel "$jobs" --target "$@"; }
bin="$root/build/bin"
if [ ! -e "$bin/libllama.so" ] || [ ! -x "$bin/llama-server" ]; then
  echo "setup_llamacpp: building llama.cpp ${COMMIT:0:7} with $jobs jobs (10 minutes or more on 2 cores)" >&2
  cmake -S "$root/src" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=ON \
    "-DCMAKE_PROJECT_llama.cpp_INCLUDE=$root/precompile_models_h.cmake" >/dev/null
  build llama
fi

driver="$root/llamacpp_driver"
if [ ! -x "$driver" ] || [ bench/llamacpp_driver.cpp -nt "$driver" ]; then
  echo "setup_llamacpp: building $driver" >&2
  c++ -std=c++17 -O2 -Wall -Wextra -o "$driver" bench/llamacpp_driver.cpp \
    -I"$root/src/include" -I"$root/src/ggml/include" -L"$bin" -Wl,-rpath,"$bin" -lllama -lggml -lggml-base
fi

tools=(llama-batched-bench llama-simple llama-quantize llama-server llama-cli)
for tool in "${tools[@]}"; do
  [ -x "$bin/$tool" ] || build "$tool"
done
echo "setup_llamacpp: llama.cpp ${COMMIT:0:7} ready in $root (driver: $driver)" >&2
