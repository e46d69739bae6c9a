// Options shared by every model's forward pass (decoders and encoders): the batch layout, and profiling.
#pragma once

#include "jagged/profile.h"

namespace jagged {

// How the batch is laid out in memory during the forward pass.
enum class BatchLayout {
  nested,  // packed real tokens + cu_seqlens: every op runs over real tokens only (jagged's native form)
  padded,  // [num_seqs, max_seqlen] with an attention mask: every op runs over all positions (the baseline)
};

struct ForwardOptions {
  BatchLayout layout = BatchLayout::nested;
  bool last_token_logits = false;  // decoders: LM head only on each sequence's last token (encoders ignore it)
  StageProfile* profile = nullptr; // per-stage wall time, accumulated, when set
};

}  // namespace jagged
