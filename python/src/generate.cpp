// Model.generate: prompts through the generation engine (jagged/engine.h): one Engine per call, sized for exactly
// the requests given, generate_all for the whole batch, or step() events as an iterator with stream=True.
#include <pybind11/stl.h>

#include <mutex>

#include "bindings.h"
#include "jagged/engine.h"
#include "jagged/error.h"
#include "jagged/paged_kv.h"
#include "models.h"

namespace jagged::python {

namespace py = pybind11;

namespace {

struct Completion {
  std::string text;
  std::vector<int32_t> tokens;
  std::string finish_reason;
  int64_t prompt_tokens = 0;
};

struct GenerateArgs {
  int64_t max_tokens = 64;
  SamplingParams sampling;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  DType kv_dtype = DType::f32;
};

std::vector<GenerationRequest> make_requests(const LoadedModel& model, py::handle prompts, const GenerateArgs& args) {
  if (args.max_tokens < 0) throw InvalidArgument(concat("max_tokens must be >= 0, got ", args.max_tokens));
  std::vector<GenerationRequest> requests;
  for (std::vector<int32_t>& ids : prompt_ids(model, prompts)) {
    GenerationRequest request;
    request.prompt = std::move(ids);
    request.max_tokens = args.max_tokens;
    request.sampling = args.sampling;
    request.stop = args.stop;
    request.ignore_eos = args.ignore_eos;
    requests.push_back(std::move(request));
  }
  return requests;
}

// A cache that holds every request at once (prompt + max_tokens, bounded by the context), so no request waits or
// is preempted, and no more memory than the call needs.
EngineOptions engine_options(const LoadedModel& model, const std::vector<GenerationRequest>& requests, DType kv_dtype) {
  const int64_t context = model.llama->config().context_length;
  EngineOptions options;
  options.kv_dtype = kv_dtype;
  options.max_running = std::max<int64_t>(1, static_cast<int64_t>(requests.size()));
  options.kv_cache_tokens = 0;
  for (const GenerationRequest& request : requests) {
    const int64_t prompt = static_cast<int64_t>(request.prompt.size());
    options.kv_cache_tokens += std::min<int64_t>(context, prompt + request.max_tokens + 1);
  }
  options.kv_cache_tokens = std::max<int64_t>(options.kv_cache_tokens, 1);
  return options;
}

py::dict event_dict(const RequestEvent& event, int64_t index) {
  py::dict out;
  out["index"] = index;
  out["tokens"] = event.tokens;
  out["text"] = utf8_text(event.text);
  out["finish_reason"] = event.finish == FinishReason::none ? py::object(py::none())
                                                            : py::object(py::str(finish_reason_name(event.finish)));
  return out;
}

// stream=True: each next() returns one request's event, stepping the engine (without the GIL) when none is queued.
class GenerationStream {
 public:
  GenerationStream(std::shared_ptr<LoadedModel> model, std::vector<GenerationRequest> requests, DType kv_dtype)
      : model_(std::move(model)),
        engine_(std::make_unique<Engine>(*model_->llama, model_->tokenizer.get(),
                                         engine_options(*model_, requests, kv_dtype))) {
    for (size_t i = 0; i < requests.size(); ++i) {
      indices_.push_back(engine_->add_request(std::move(requests[i])));
    }
  }

  py::dict next() {
    std::lock_guard<std::mutex> lock(mutex_);
    while (queued_.empty()) {
      if (engine_ == nullptr || !engine_->has_work()) throw py::stop_iteration();
      std::vector<RequestEvent> events;
      {
        py::gil_scoped_release release;
        events = engine_->step();
      }
      for (RequestEvent& event : events) queued_.push_back(std::move(event));
    }
    RequestEvent event = std::move(queued_.front());
    queued_.erase(queued_.begin());
    return event_dict(event, index_of(event.id));
  }

  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    engine_.reset();
    queued_.clear();
  }

 private:
  int64_t index_of(RequestId id) const {
    for (size_t i = 0; i < indices_.size(); ++i) {
      if (indices_[i] == id) return static_cast<int64_t>(i);
    }
    return -1;
  }

  std::shared_ptr<LoadedModel> model_;  // outlives the engine
  std::unique_ptr<Engine> engine_;
  std::vector<RequestId> indices_;      // request ids in prompt order
  std::vector<RequestEvent> queued_;
  std::mutex mutex_;
};

py::object generate(const PyModel& self, py::handle prompts, int64_t max_tokens, float temperature, float top_p,
                    int top_k, float min_p, float repetition_penalty, float presence_penalty, float frequency_penalty,
                    uint64_t seed, const std::vector<std::string>& stop, bool ignore_eos, bool stream,
                    const std::string& kv_dtype) {
  std::shared_ptr<LoadedModel> model = self.get_decoder("generate");
  GenerateArgs args;
  args.max_tokens = max_tokens;
  args.sampling.temperature = temperature;
  args.sampling.top_p = top_p;
  args.sampling.top_k = top_k;
  args.sampling.min_p = min_p;
  args.sampling.repetition_penalty = repetition_penalty;
  args.sampling.presence_penalty = presence_penalty;
  args.sampling.frequency_penalty = frequency_penalty;
  args.sampling.seed = seed;
  args.stop = stop;
  args.ignore_eos = ignore_eos;
  args.kv_dtype = parse_kv_dtype(kv_dtype);
  std::vector<GenerationRequest> requests = make_requests(*model, prompts, args);
  if (stream) return py::cast(std::make_unique<GenerationStream>(model, std::move(requests), args.kv_dtype));
  std::vector<int64_t> prompt_lengths;
  for (const auto& request : requests) prompt_lengths.push_back(static_cast<int64_t>(request.prompt.size()));
  std::vector<RequestResult> results;
  {
    py::gil_scoped_release release;
    Engine engine(*model->llama, model->tokenizer.get(), engine_options(*model, requests, args.kv_dtype));
    results = generate_all(engine, std::move(requests));
  }
  std::vector<Completion> completions;
  for (size_t i = 0; i < results.size(); ++i) {
    completions.push_back({std::move(results[i].text), std::move(results[i].tokens),
                           finish_reason_name(results[i].finish), prompt_lengths[i]});
  }
  return py::cast(std::move(completions));
}

}  // namespace

void bind_generate(py::class_<PyModel>& model_class) {
  py::class_<Completion>(model_class, "Completion", "One prompt's continuation")
      .def_property_readonly("text", [](const Completion& c) { return utf8_text(c.text); })
      .def_readonly("tokens", &Completion::tokens)
      .def_readonly("finish_reason", &Completion::finish_reason, "'length', 'stop', 'context' or 'cancelled'")
      .def_readonly("prompt_tokens", &Completion::prompt_tokens)
      .def("__str__", [](const Completion& c) { return utf8_text(c.text); })
      .def("__repr__", [](const Completion& c) {
        return py::str("Completion(text={!r}, finish_reason={!r}, tokens={})")
            .format(utf8_text(c.text), c.finish_reason, c.tokens.size());
      });
  py::class_<GenerationStream>(model_class, "GenerationStream",
                               "Iterator of events: dicts with index (the prompt's position), tokens, text and "
                               "finish_reason (None until the request ends)")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &GenerationStream::next)
      .def("close", &GenerationStream::close, "Stops generating and frees the cache");
  model_class.def("generate", &generate, py::arg("prompts"), py::arg("max_tokens") = 64,
                  py::arg("temperature") = 0.0f, py::arg("top_p") = 1.0f, py::arg("top_k") = 0, py::arg("min_p") = 0.0f,
                  py::arg("repetition_penalty") = 1.0f, py::arg("presence_penalty") = 0.0f,
                  py::arg("frequency_penalty") = 0.0f, py::arg("seed") = 0,
                  py::arg("stop") = std::vector<std::string>{}, py::arg("ignore_eos") = false,
                  py::arg("stream") = false, py::arg("kv_dtype") = "f32",
                  R"(Decoders: continues each prompt (a string, encoded with BOS, or token ids; an empty prompt
starts from BOS) on the continuous-batching engine. temperature 0 is greedy; top_k, top_p, min_p and the
penalties as in jagged/sampling.h; each request samples with its own generator seeded by seed. kv_dtype 'f32' or
'bf16': the KV cache's elements (bf16: half the memory, K and V rounded once). Returns a list of Completion (text,
tokens, finish_reason), or with stream=True an iterator of per-request events.)");
}

}  // namespace jagged::python
