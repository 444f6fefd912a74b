"""Paper defaults of docs/model.md section 2, in one place.

Qwen3-1.7B drafting on an RTX 3090 class device, Qwen3-32B verifying on an A100-80GB
(Xu, Zhou, Niu, "DiP-SD", arXiv:2604.20919).  Latencies in ms, FLOP latency slopes in
ms per FLOP, memory in bytes.
"""

from __future__ import annotations

# target (verification) model on the edge server
TARGET_BLOCKS = 64
TARGET_HIDDEN = 5120
TARGET_FFN_HIDDEN = 25600
VERIFY_C_MS_PER_FLOP = 1.2077e-11
VERIFY_BETA_MS = 95.1074
VERIFY_BETA_FLOOR_MS = 1e-6
"""Smallest server intercept beta_v accepted: every batch costs at least beta_v, so the span is at
least this and throughputs stay finite (docs/model.md, "What the numbers promise")."""
MEMORY_CAP_BYTES = 8.0e10

# draft model on each device
DRAFT_BLOCKS = 28
DRAFT_HIDDEN = 2048
DRAFT_FFN_HIDDEN = 6144
DRAFT_C_MS_PER_FLOP = 4.0305e-11
DRAFT_BETA_MS = 33.8151

# users
ALPHA = 0.78
PREFIX_LEN = 512
COMM_LATENCY_MS = 3.0

# decisions
MAX_DRAFT_LENGTH = 20
INITIAL_DRAFT_LENGTH = 7
MIN_BATCHES = 2  # project choice; 1 when the scenario has a single user

# project limits (documented in the README)
MAX_DRAFT_LENGTH_CAP = 64
"""Largest ``max_draft_length`` a workbook may ask for (the MILP grows linearly in it)."""
