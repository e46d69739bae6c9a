// libFuzzer target: the safetensors reader (header JSON, offsets, dtypes) and the Hugging Face name mapping on
// arbitrary bytes. Any jagged::Error is an accepted outcome; anything else is a bug.
#include <cstddef>
#include <cstdint>

#include "io/hf_config.h"
#include "io/safetensors.h"
#include "jagged/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file =
      jagged::io::MappedFile::from_bytes({reinterpret_cast<const std::byte*>(data), size}, "fuzz.safetensors");
  try {
    const jagged::io::SafetensorsFile safetensors = jagged::io::SafetensorsFile::parse(file);
    float sink = 0.0f;
    for (const auto& info : safetensors.tensors()) {
      (void)jagged::io::hf_llama_tensor_name(info.name);
      (void)jagged::io::hf_bert_tensor_name(info.name);
      try {
        const jagged::Tensor tensor = safetensors.read_f32(info);
        if (tensor.numel() > 0) sink += tensor.data<float>()[tensor.numel() - 1];
      } catch (const jagged::Error&) {
      }
    }
    (void)sink;
  } catch (const jagged::Error&) {
  }
  return 0;
}
