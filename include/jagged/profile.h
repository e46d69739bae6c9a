// Per-stage wall time of a forward pass (embedding, attention norm, QKV projection, RoPE, attention, ...),
// accumulated over layers. Stages keep the order in which they first ran.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace jagged {

class StageProfile {
 public:
  void add(const std::string& stage, double seconds);
  double seconds(const std::string& stage) const;  // 0 for a stage that never ran
  double total_seconds() const;
  const std::vector<std::pair<std::string, double>>& stages() const { return stages_; }
  void clear() { stages_.clear(); }

 private:
  std::vector<std::pair<std::string, double>> stages_;
};

// Times one stage into a profile (or does nothing when profile is null).
class StageTimer {
 public:
  StageTimer(StageProfile* profile, const char* stage)
      : profile_(profile), stage_(stage), start_(std::chrono::steady_clock::now()) {}
  ~StageTimer() {
    if (profile_ != nullptr) {
      profile_->add(stage_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
  }
  StageTimer(const StageTimer&) = delete;
  StageTimer& operator=(const StageTimer&) = delete;

 private:
  StageProfile* profile_;
  const char* stage_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace jagged
