#include "core/compute_thread.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <stdexcept>
#include <thread>
#include <vector>

namespace jagged::core {
namespace {

TEST(ComputeThread, RunsEveryJobInOrderOnOneThreadWithItsThreadCount) {
  std::vector<int> order;
  std::vector<std::thread::id> ids;
  std::vector<int> thread_counts;
  {
    ComputeThread compute(3);
    std::vector<std::future<void>> done;
    for (int job = 0; job < 20; ++job) {
      done.push_back(compute.post([&, job] {
        order.push_back(job);
        ids.push_back(std::this_thread::get_id());
        thread_counts.push_back(omp_get_max_threads());
      }));
    }
    compute.run([&] { order.push_back(20); });
    for (auto& future : done) EXPECT_EQ(future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  }
  ASSERT_EQ(order.size(), 21u);
  for (int job = 0; job <= 20; ++job) EXPECT_EQ(order[static_cast<size_t>(job)], job);
  for (const auto& id : ids) {
    EXPECT_EQ(id, ids.front());  // one thread: one OpenMP pool for all of them
    EXPECT_NE(id, std::this_thread::get_id());
  }
  for (int count : thread_counts) EXPECT_EQ(count, 3);
}

TEST(ComputeThread, AJobsExceptionReachesItsCallerAndTheThreadGoesOn) {
  ComputeThread compute(1);
  EXPECT_THROW(compute.run([] { throw std::runtime_error("bad weights"); }), std::runtime_error);
  std::future<void> failed = compute.post([] { throw std::invalid_argument("bad request"); });
  EXPECT_THROW(failed.get(), std::invalid_argument);
  bool ran = false;
  compute.run([&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(ComputeThread, DestructionRunsWhatWasPosted) {
  int ran = 0;
  {
    ComputeThread compute(1);
    for (int job = 0; job < 5; ++job) compute.post([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      ++ran;
    });
  }
  EXPECT_EQ(ran, 5);
}

}  // namespace
}  // namespace jagged::core
