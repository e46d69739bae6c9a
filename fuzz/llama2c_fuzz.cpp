// libFuzzer target: the llama2.c checkpoint loader (header checks, exact size, tensor layout) on arbitrary bytes.
// Any jagged::Error is an accepted outcome; anything else is a bug.
#include <cstddef>
#include <cstdint>

#include "io/llama2c.h"
#include "jagged/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = jagged::io::MappedFile::from_bytes({reinterpret_cast<const std::byte*>(data), size}, "fuzz.bin");
  try {
    const jagged::io::LoadedLlama loaded = jagged::io::load_llama2c(file);
    float sink = 0.0f;
    for (const auto& [name, tensor] : loaded.weights) {
      if (tensor.numel() > 0) sink += tensor.data<float>()[tensor.numel() - 1];
    }
    (void)sink;
  } catch (const jagged::Error&) {
  }
  return 0;
}
