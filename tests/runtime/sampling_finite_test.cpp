// Non-finite logits are an error, never a token: NaN compares false, so argmax alone would pick token 0 forever.
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "jagged/error.h"
#include "jagged/sampling.h"

namespace jagged {
namespace {

TEST(SamplingFinite, NonFiniteLogitsAreAnErrorNamingTheToken) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (const float bad : {nan, inf, -inf}) {
    const std::vector<float> logits{0.5f, 2.0f, bad, 1.0f};
    try {
      check_finite_logits(logits);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const InvalidArgument& error) {
      EXPECT_NE(std::string(error.what()).find("non-finite logit"), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find("token 2"), std::string::npos) << error.what();
    }
    for (const float temperature : {0.0f, 0.8f}) {
      Sampler sampler({.temperature = temperature});
      EXPECT_THROW(sampler.sample(logits), InvalidArgument) << "temperature " << temperature << ", logit " << bad;
    }
  }
  const std::vector<float> finite{0.5f, 2.0f, -1e30f, 1.0f};
  check_finite_logits(finite);
  Sampler greedy({});
  EXPECT_EQ(greedy.sample(finite), 1);
}

}  // namespace
}  // namespace jagged
