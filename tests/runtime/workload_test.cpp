#include "jagged/workload.h"

#include <gtest/gtest.h>

#include <fstream>

#include "testing/ragged.h"

namespace jagged {
namespace {

TEST(Workload, StudyIsTheSharedWorkload) {
  const std::vector<int64_t>& lengths = study_lengths();
  ASSERT_EQ(lengths.size(), 32u);
  int64_t total = 0;
  for (const int64_t length : lengths) total += length;
  EXPECT_EQ(total, 3960);
  EXPECT_EQ(*std::max_element(lengths.begin(), lengths.end()), 250);
  const auto path = testing::shared_dir() / "workloads" / "study-32.txt";
  if (std::filesystem::exists(path)) {
    std::ifstream in(path);
    std::vector<int64_t> from_file;
    for (int64_t length; in >> length;) from_file.push_back(length);
    EXPECT_EQ(from_file, lengths);
  }
}

TEST(Workload, DistributionsHaveTheirShapes) {
  const WorkloadSpec base{"uniform", 50, 10, 256, 1};
  auto lengths_of = [&](const std::string& dist) {
    WorkloadSpec spec = base;
    spec.distribution = dist;
    return draw_workload(spec, 100).seqlens();
  };
  for (const int64_t length : lengths_of("uniform")) {
    EXPECT_GE(length, 10);
    EXPECT_LE(length, 256);
  }
  const auto equal = lengths_of("equal");
  EXPECT_EQ(std::count(equal.begin(), equal.end(), 133), 50);
  const auto one_long = lengths_of("one-long");
  EXPECT_EQ(one_long[0], 256);
  EXPECT_EQ(std::count(one_long.begin(), one_long.end(), 10), 49);
  const auto lognormal = lengths_of("lognormal");
  EXPECT_LT(*std::min_element(lognormal.begin(), lognormal.end()), 40);
  EXPECT_GT(*std::max_element(lognormal.begin(), lognormal.end()), 120);
  EXPECT_EQ(draw_workload(base, 100).seqlens(), draw_workload(base, 100).seqlens());  // reproducible
}

TEST(Workload, TokenIdsStayInTheVocabulary) {
  const NestedTensor batch = draw_workload({"study"}, 7);
  const int32_t* ids = batch.values().data<int32_t>();
  for (int64_t t = 0; t < batch.num_tokens(); ++t) {
    ASSERT_GE(ids[t], 0);
    ASSERT_LT(ids[t], 7);
  }
}

TEST(Workload, RejectsBadSpecs) {
  EXPECT_THROW(draw_workload({"zipf"}, 10), InvalidArgument);
  EXPECT_THROW(draw_workload({"uniform", 0, 10, 20, 1}, 10), InvalidArgument);
  EXPECT_THROW(draw_workload({"uniform", 5, 30, 20, 1}, 10), InvalidArgument);
  EXPECT_THROW(draw_workload({"lengths:/no/such/file"}, 10), FileError);
  EXPECT_THROW(draw_workload({"corpus:/no/such/file"}, 10), InvalidArgument);  // no tokenizer given
  EXPECT_THROW(draw_workload({"study"}, 0), InvalidArgument);
}

}  // namespace
}  // namespace jagged
