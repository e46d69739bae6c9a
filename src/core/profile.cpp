#include "jagged/profile.h"

namespace jagged {

void StageProfile::add(const std::string& stage, double seconds) {
  for (auto& [name, total] : stages_) {
    if (name == stage) {
      total += seconds;
      return;
    }
  }
  stages_.emplace_back(stage, seconds);
}

double StageProfile::seconds(const std::string& stage) const {
  for (const auto& [name, total] : stages_) {
    if (name == stage) return total;
  }
  return 0.0;
}

double StageProfile::total_seconds() const {
  double sum = 0.0;
  for (const auto& stage : stages_) sum += stage.second;
  return sum;
}

}  // namespace jagged
