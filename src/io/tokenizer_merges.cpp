// The merge loop: a linked list of symbols and a priority queue of candidate pairs; a candidate whose sides
// changed since it was queued is stale and skipped (as Hugging Face tokenizers' Word::merge_all).
#include "io/tokenizer_merges.h"

#include <queue>

namespace jagged::io {

void RankedMerges::add(int32_t left, int32_t right, int32_t merged, int32_t rank) {
  merges_.emplace(key(left, right), Merge{rank, merged});
}

const RankedMerges::Merge* RankedMerges::find(int32_t left, int32_t right) const {
  if (left < 0 || right < 0) return nullptr;
  const auto found = merges_.find(key(left, right));
  return found == merges_.end() ? nullptr : &found->second;
}

void RankedMerges::apply(std::vector<int32_t>& ids) const {
  if (ids.size() < 2) return;
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool absorbed;
  };
  struct Candidate {
    int32_t rank;
    int32_t left;  // symbol index
    int32_t left_id;
    int32_t right_id;
    bool operator>(const Candidate& other) const {  // the queue's top: lowest rank, then leftmost
      return rank != other.rank ? rank > other.rank : left > other.left;
    }
  };
  std::vector<Symbol> symbols(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    symbols[i] = {ids[i], static_cast<int32_t>(i) - 1, static_cast<int32_t>(i) + 1, false};
  }
  symbols.back().next = -1;
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  const auto try_add = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = symbols[static_cast<size_t>(left)].next;
    if (right < 0) return;
    const int32_t left_id = symbols[static_cast<size_t>(left)].id;
    const int32_t right_id = symbols[static_cast<size_t>(right)].id;
    if (const Merge* merge = find(left_id, right_id)) queue.push({merge->rank, left, left_id, right_id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) try_add(i);
  while (!queue.empty()) {
    const Candidate candidate = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(candidate.left)];
    if (left.absorbed || left.id != candidate.left_id || left.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    if (right.id != candidate.right_id) continue;  // stale: a side was merged since
    left.id = find(candidate.left_id, candidate.right_id)->merged_id;
    right.absorbed = true;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = candidate.left;
    try_add(left.prev);
    try_add(candidate.left);
  }
  size_t count = 0;
  for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) ids[count++] = symbols[static_cast<size_t>(i)].id;
  ids.resize(count);
}

}  // namespace jagged::io
