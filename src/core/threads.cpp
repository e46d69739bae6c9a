#include "core/threads.h"

#include <omp.h>

namespace jagged {

int num_threads() { return omp_get_max_threads(); }

void set_num_threads(int count) { omp_set_num_threads(count > 0 ? count : omp_get_num_procs()); }

int num_cores() { return omp_get_num_procs(); }

}  // namespace jagged
