// Fuzzes load_tokenizer on arbitrary tokenizer.json files: it must load or throw jagged::Error, and a loaded
// tokenizer must encode and decode text without fault.
#include "tokenizer_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::filesystem::path path = jagged::fuzz::write_scratch("tokenizer.json", data, size);
  jagged::fuzz::load_and_exercise(path, "Hello, World! 12345 \xC3\xA4\xE4\xB8\xAD \xF0\x9F\xA6\x99 [CLS] <s>\n\t\xff");
  return 0;
}
