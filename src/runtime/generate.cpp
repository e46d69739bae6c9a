#include "jagged/generate.h"

#include "jagged/engine.h"

namespace jagged {

// The batch form of the engine: every prompt as one request, run to completion by continuous batching.
std::vector<RequestResult> generate_results(const LlamaModel& model, const std::vector<std::vector<int32_t>>& prompts,
                                            const GenerateOptions& options) {
  if (prompts.empty()) throw InvalidArgument("generate: no prompts");
  if (options.steps < 0) throw InvalidArgument(concat("generate: steps must be >= 0, got ", options.steps));
  Engine engine(model, nullptr, options.engine);
  std::vector<GenerationRequest> requests;
  for (const auto& prompt : prompts) {
    GenerationRequest request;
    request.prompt = prompt;
    request.max_tokens = options.steps;
    request.sampling = options.sampling;
    request.ignore_eos = !options.stop_at_eos;
    requests.push_back(std::move(request));
  }
  return generate_all(engine, std::move(requests));
}

std::vector<std::vector<int32_t>> generate(const LlamaModel& model, const std::vector<std::vector<int32_t>>& prompts,
                                           const GenerateOptions& options) {
  std::vector<std::vector<int32_t>> generated;
  for (RequestResult& result : generate_results(model, prompts, options)) generated.push_back(std::move(result.tokens));
  return generated;
}

}  // namespace jagged
