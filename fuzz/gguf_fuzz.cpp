// libFuzzer target: the GGUF reader and the GGUF model loaders on arbitrary bytes. Any jagged::Error is an
// accepted outcome; a crash, a sanitizer report or any other exception (bad_alloc included) is a bug.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "io/gguf.h"
#include "io/gguf_model.h"
#include "jagged/error.h"

namespace {

// Reads every value through the accessors the loaders use, so a wrong variant access would show up here.
void touch_metadata(const jagged::io::GgufFile& gguf) {
  for (const auto& [key, value] : gguf.metadata()) {
    try { (void)value.as_int(key); } catch (const jagged::Error&) {}
    try { (void)value.as_float(key); } catch (const jagged::Error&) {}
    try { (void)value.as_strings(key); } catch (const jagged::Error&) {}
    try { (void)value.as_ints(key); } catch (const jagged::Error&) {}
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = jagged::io::MappedFile::from_bytes({reinterpret_cast<const std::byte*>(data), size}, "fuzz.gguf");
  try {
    const auto gguf = std::make_shared<const jagged::io::GgufFile>(jagged::io::GgufFile::parse(file));
    touch_metadata(*gguf);
    float sink = 0.0f;
    for (const auto& info : gguf->tensors()) {
      try {
        const jagged::Tensor tensor = gguf->read_f32(info);
        if (tensor.numel() > 0) sink += tensor.data<float>()[tensor.numel() - 1];
      } catch (const jagged::Error&) {
      }
    }
    (void)sink;
    try {
      if (jagged::io::gguf_family(*gguf) == "llama") {
        (void)jagged::io::load_llama_gguf(gguf);
      } else {
        (void)jagged::io::load_bert_gguf(gguf);
      }
    } catch (const jagged::Error&) {
    }
  } catch (const jagged::Error&) {
  }
  return 0;
}
