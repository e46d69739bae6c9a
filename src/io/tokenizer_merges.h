// Hugging Face's BPE merge loop over token ids, shared by the byte-level and the SentencePiece-converted BPE
// tokenizers: repeatedly merge the adjacent pair with the lowest rank (leftmost on ties) until none applies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace jagged::io {

class RankedMerges {
 public:
  void reserve(size_t count) { merges_.reserve(count); }
  // The pair (left, right) merges into `merged` with priority `rank` (lower first). A pair listed twice keeps its
  // first rank.
  void add(int32_t left, int32_t right, int32_t merged, int32_t rank);
  // Merges `ids` in place. Negative ids (a byte the vocabulary lacks) never merge and stay where they are.
  void apply(std::vector<int32_t>& ids) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t merged_id;
  };
  static uint64_t key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  const Merge* find(int32_t left, int32_t right) const;

  std::unordered_map<uint64_t, Merge> merges_;  // (left id, right id) -> rank, merged id
};

}  // namespace jagged::io
