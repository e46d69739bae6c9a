// One thread for all of a long-lived object's parallel work (the server's model loading, engine steps and
// encoder batches). libgomp keeps a pool of OpenMP workers for every thread that starts a parallel region, and
// once it manages more workers than the machine has CPUs it cuts each worker's spin-wait between regions to a
// few microseconds: the workers then sleep and are woken through the kernel for every one of a decode step's
// ~170 regions. Loading a model on one thread and stepping it on another did exactly that (measured with 2
// threads on 2 cores: jagged serve's 32-request decode step 45.5 ms against 36 ms in `jagged bench --decode`).
// Jobs run one at a time, in the order posted.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

namespace jagged::core {

class ComputeThread {
 public:
  // threads: the OpenMP thread count of the thread's parallel regions (it is per thread).
  explicit ComputeThread(int threads);
  ~ComputeThread();  // runs the jobs already posted, then joins
  ComputeThread(const ComputeThread&) = delete;
  ComputeThread& operator=(const ComputeThread&) = delete;

  // Queues job; the future is ready when it has run, and rethrows what it threw.
  std::future<void> post(std::function<void()> job);
  // Runs job on the thread and waits for it; what it throws is rethrown here.
  void run(std::function<void()> job) { post(std::move(job)).get(); }

 private:
  void serve_jobs(int threads);

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::packaged_task<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace jagged::core
