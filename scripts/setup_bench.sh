#!/usr/bin/env bash
# Installs the extras that only `jagged bench --compare-onnx` needs, apart from scripts/setup.sh so that building
# and testing jagged never depends on them:
#   python3-onnx      Debian's ONNX, which torch.onnx.export (python3-torch 1.13) needs to write the model
#   onnxruntime-node  1.30.0 from npm (pinned in bench/onnxruntime/package.json) into build/bench-deps/, with
#                     --ignore-scripts: its install script would download a CUDA provider; the CPU binaries are
#                     inside the package.
# Safe to re-run. Set JAGGED_BENCH_DEPS to install elsewhere (jagged bench reads the same variable).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! dpkg-query -W -f='${Status}' python3-onnx 2>/dev/null | grep -q "install ok installed"; then
  echo "setup_bench: installing python3-onnx" >&2
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends python3-onnx </dev/null
fi

deps="${JAGGED_BENCH_DEPS:-build/bench-deps}"
mkdir -p "$deps"
cp bench/onnxruntime/package.json "$deps/package.json"
(cd "$deps" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
node --input-type=module -e "
  import { createRequire } from 'node:module';
  const ort = createRequire('$(realpath "$deps")/')('onnxruntime-node');
  console.error('setup_bench: onnxruntime-node', ort.env.versions?.common ?? '', 'ready in $deps');
"
