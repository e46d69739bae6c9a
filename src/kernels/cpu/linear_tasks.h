// The work split shared by the packed-weight GEMMs (f32 and bf16 panels): tasks of task_rows rows x a group of
// up to max_task_panels panels (a task brings its x block into L2 once per depth block and reuses it across its
// panels); with too few row blocks to keep every thread busy (decode), the panels are spread over more groups.
// The split changes which thread computes an element, never how.
#pragma once

#include <algorithm>
#include <cstdint>

namespace jagged::kernels::cpu {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

struct TaskGrid {
  int64_t row_tasks;
  int64_t panels_per_task;
  int64_t tasks;
};

// tasks_per_thread: how many tasks a thread should get when the panels are spread (few row tasks).
inline TaskGrid task_grid(int64_t rows, int64_t out_features, int64_t panel_cols, int64_t task_rows,
                          int64_t max_task_panels, int threads, int64_t tasks_per_thread = 4) {
  const int64_t row_tasks = ceil_div(rows, task_rows);
  const int64_t panels = ceil_div(out_features, panel_cols);
  const int64_t wanted_tasks = tasks_per_thread * static_cast<int64_t>(threads);
  const int64_t panel_groups = threads == 1 ? 1 : std::min(panels, ceil_div(wanted_tasks, row_tasks));
  int64_t panels_per_task = std::min(max_task_panels, ceil_div(panels, panel_groups));
  // With few tasks, a count the threads cannot share evenly leaves one thread a task longer than the others (a
  // 576 -> 960 QKV projection's 20 panels in 7 tasks of 3: 12 panels against 8). Narrower tasks until they share.
  while (panel_groups > 1 && panels_per_task > 1 && (row_tasks * ceil_div(panels, panels_per_task)) % threads != 0) {
    --panels_per_task;
  }
  return {row_tasks, panels_per_task, row_tasks * ceil_div(panels, panels_per_task)};
}

}  // namespace jagged::kernels::cpu
