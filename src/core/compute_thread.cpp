#include "core/compute_thread.h"

#include "jagged/threads.h"

namespace jagged::core {

ComputeThread::ComputeThread(int threads) : thread_([this, threads] { serve_jobs(threads); }) {}

ComputeThread::~ComputeThread() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::future<void> ComputeThread::post(std::function<void()> job) {
  std::packaged_task<void()> task(std::move(job));
  std::future<void> done = task.get_future();
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(task));
  }
  wake_.notify_all();
  return done;
}

void ComputeThread::serve_jobs(int threads) {
  set_num_threads(threads);
  for (;;) {
    std::packaged_task<void()> task;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and nothing left
      task = std::move(jobs_.front());
      jobs_.pop_front();
    }
    task();  // an exception goes to the job's future
  }
}

}  // namespace jagged::core
