"""Validated, immutable inputs: a :class:`Scenario` and its :class:`User` s.

Objects here are plain frozen dataclasses of Python numbers; they are what every solver
receives.  The workbook loader builds them; tests and generators may build them
directly (the constructors check the invariants that the rest of dipsd relies on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from . import defaults as D


@dataclass(frozen=True)
class TargetModel:
    """The verifying (target) model and the server's latency model ``G_v(b,F) = c*b*F + beta``."""

    blocks: int = D.TARGET_BLOCKS
    hidden: int = D.TARGET_HIDDEN
    ffn_hidden: int = D.TARGET_FFN_HIDDEN
    c_ms_per_flop: float = D.VERIFY_C_MS_PER_FLOP
    beta_ms: float = D.VERIFY_BETA_MS

    def __post_init__(self) -> None:
        if not (self.c_ms_per_flop > 0 and math.isfinite(self.c_ms_per_flop)):
            raise ValueError(f"target model: c_ms_per_flop must be a finite number > 0, got {self.c_ms_per_flop}")
        if not (D.VERIFY_BETA_FLOOR_MS <= self.beta_ms < math.inf):
            raise ValueError(f"target model: beta_ms must be >= {D.VERIFY_BETA_FLOOR_MS:g} ms (every batch costs at "
                             f"least beta_v, so the span stays positive), got {self.beta_ms}")

    @property
    def parameter_bytes(self) -> float:
        """``Gamma_p = J_v * (8 h1^2 + 4 h1 h2)``."""
        h1, h2 = self.hidden, self.ffn_hidden
        return float(self.blocks * (8 * h1 * h1 + 4 * h1 * h2))

    def kv_bytes(self, batch_size: int, prefix_len: int) -> float:
        """``Gamma_kv = 4 J_v h1 b I`` for a batch of ``batch_size`` padded to ``prefix_len``."""
        return float(4 * self.blocks * self.hidden * batch_size * prefix_len)

    def flops(self, length: int, prefix_len: int) -> float:
        """``F_v(L, I) = 4 J_v h1 L (2 h1 + I + L + h2)``: verification FLOPs of one sequence."""
        h1 = self.hidden
        return float(4 * self.blocks * h1 * length * (2 * h1 + prefix_len + length + self.ffn_hidden))

    def verify_ms(self, batch_size: int, length: int, prefix_len: int) -> float:
        """``t_v = c_v * b * F_v(L, I) + beta_v`` in ms."""
        return self.c_ms_per_flop * batch_size * self.flops(length, prefix_len) + self.beta_ms


@dataclass(frozen=True)
class DraftModel:
    """A device's draft model and its latency model ``G_m(b,F) = c*b*F + beta``."""

    blocks: int = D.DRAFT_BLOCKS
    hidden: int = D.DRAFT_HIDDEN
    ffn_hidden: int = D.DRAFT_FFN_HIDDEN
    c_ms_per_flop: float = D.DRAFT_C_MS_PER_FLOP
    beta_ms: float = D.DRAFT_BETA_MS

    def flops_per_token(self, prefix_len: int) -> float:
        """``F_d(i) = 4 J_d h1 (2 h1 + i + 1 + h2)``."""
        h1 = self.hidden
        return float(4 * self.blocks * h1 * (2 * h1 + prefix_len + 1 + self.ffn_hidden))

    def token_ms(self, prefix_len: int) -> float:
        """``G_m(1, F_d(i))``: time to draft one token, in ms."""
        return self.c_ms_per_flop * self.flops_per_token(prefix_len) + self.beta_ms


@dataclass(frozen=True)
class User:
    """One device/user.  ``acceptance`` (optional) is the measured table ``u(k)``, k = 1..L_ub."""

    name: str
    alpha: float = D.ALPHA
    prefix_len: int = D.PREFIX_LEN
    comm_latency_ms: float = D.COMM_LATENCY_MS
    draft: DraftModel = field(default_factory=DraftModel)
    acceptance: tuple[float, ...] | None = None
    max_draft_length: int | None = field(default=None, repr=False)
    """The longest draft this device may send (None: the scenario's ``max_draft_length``).  Left
    out of ``repr`` (which fingerprints workbooks) so that 0.3 checkpoints still resume; the
    fingerprint adds the limits where a user has one."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0 or math.isnan(self.alpha):
            raise ValueError(f"user {self.name!r}: alpha must be in [0, 1], got {self.alpha}")
        if self.max_draft_length is not None and not (isinstance(self.max_draft_length, int) and self.max_draft_length >= 1):
            raise ValueError(f"user {self.name!r}: max_draft_length must be a whole number >= 1, got {self.max_draft_length!r}")
        if self.prefix_len < 1:
            raise ValueError(f"user {self.name!r}: prefix_len must be >= 1")
        if not self.comm_latency_ms > 0:
            raise ValueError(f"user {self.name!r}: comm_latency_ms must be > 0")

    def expected_tokens(self, length: int) -> float:
        """``u(l)``: the table value if given, else ``(1 - alpha^(l+1)) / (1 - alpha)`` (``l+1`` at alpha 1)."""
        if self.acceptance is not None:
            return float(self.acceptance[length - 1])
        if self.alpha == 1.0:
            return float(length + 1)
        return (1.0 - self.alpha ** (length + 1)) / (1.0 - self.alpha)

    def draft_ms(self, length: int) -> float:
        """``tau_d(l) = l * G_m(1, F_d(i))`` in ms."""
        return length * self.draft.token_ms(self.prefix_len)

    def ready_ms(self, length: int) -> float:
        """Drafting plus communication: ``tau_d(l) + tau_c``."""
        return self.draft_ms(length) + self.comm_latency_ms


@dataclass(frozen=True)
class Scenario:
    """One instance of problem P (docs/model.md section 4)."""

    name: str
    users: tuple[User, ...]
    target: TargetModel = field(default_factory=TargetModel)
    memory_cap_bytes: float = D.MEMORY_CAP_BYTES
    max_draft_length: int = D.MAX_DRAFT_LENGTH
    min_batches: int = 0  # 0: the paper default (2, or 1 for a single user)
    max_batches: int = 0  # 0: the number of users
    initial_draft_length: int = D.INITIAL_DRAFT_LENGTH

    def __post_init__(self) -> None:
        m = len(self.users)
        if m == 0:
            raise ValueError(f"scenario {self.name!r} has no users")
        if self.min_batches == 0:
            object.__setattr__(self, "min_batches", 1 if m == 1 else min(D.MIN_BATCHES, m))
        if self.max_batches == 0:
            object.__setattr__(self, "max_batches", m)
        if not 1 <= self.min_batches <= self.max_batches <= m:
            raise ValueError(
                f"scenario {self.name!r}: need 1 <= min_batches <= max_batches <= {m} (its number of users), "
                f"got {self.min_batches}..{self.max_batches}"
            )
        if not 1 <= self.max_draft_length <= D.MAX_DRAFT_LENGTH_CAP:
            raise ValueError(f"scenario {self.name!r}: max_draft_length must be in 1..{D.MAX_DRAFT_LENGTH_CAP}")
        if self.initial_draft_length < 1:
            raise ValueError(f"scenario {self.name!r}: initial_draft_length must be >= 1")
        names = [u.name for u in self.users]
        if len(set(names)) != len(names):
            raise ValueError(f"scenario {self.name!r}: duplicate user names")
        for u in self.users:
            if u.max_draft_length is not None and u.max_draft_length > self.max_draft_length:
                raise ValueError(f"user {u.name!r}: max_draft_length {u.max_draft_length} is above the scenario's "
                                 f"{self.max_draft_length}")
            limit = self.max_draft_length if u.max_draft_length is None else u.max_draft_length
            if u.acceptance is not None and len(u.acceptance) != limit:
                raise ValueError(f"user {u.name!r}: acceptance table must have {limit} entries (1..its max_draft_length)")

    @property
    def num_users(self) -> int:
        return len(self.users)

    @cached_property
    def limits(self) -> tuple[int, ...]:
        """Each user's longest allowed draft length: its own ``max_draft_length``, else the scenario's.
        (Cached in the instance's ``__dict__``, not a field: the repr, equality and fingerprints stay as
        they were.)"""
        return tuple(self.max_draft_length if u.max_draft_length is None else u.max_draft_length for u in self.users)

    def clipped(self, length: int) -> tuple[int, ...]:
        """Every user at ``length``, or at its own limit where that is shorter."""
        return tuple(min(length, limit) for limit in self.limits)

    @property
    def batch_range(self) -> range:
        """The allowed numbers of batches, ``N_min..N_max``."""
        return range(self.min_batches, self.max_batches + 1)

    @property
    def start_length(self) -> int:
        """``initial_draft_length`` clipped to ``[1, L_ub]``."""
        return max(1, min(self.initial_draft_length, self.max_draft_length))

    def memory_ok(self, batch_size: int, prefix_len: int) -> bool:
        """``Gamma_p + Gamma_kv <= Gamma_max`` for a batch of that size padded to that prefix."""
        return self.target.parameter_bytes + self.target.kv_bytes(batch_size, prefix_len) <= self.memory_cap_bytes

    def max_batch_size(self, prefix_len: int) -> int:
        """Largest batch the memory cap allows when the batch's longest prefix is ``prefix_len``."""
        free = self.memory_cap_bytes - self.target.parameter_bytes
        per_user = 4.0 * self.target.blocks * self.target.hidden * prefix_len
        if free < per_user:
            return 0
        b = int(free // per_user)
        # guard the float division against the exact feasibility test used everywhere else
        while b > 0 and not self.memory_ok(b, prefix_len):
            b -= 1
        while self.memory_ok(b + 1, prefix_len) and b < self.num_users:
            b += 1
        return min(b, self.num_users)

    def with_(self, **changes: Any) -> Scenario:
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)


def paper_scenario(num_users: int, *, name: str | None = None, alpha: float = D.ALPHA, **changes: Any) -> Scenario:
    """The paper's homogeneous setting with ``num_users`` identical users."""
    users = tuple(User(name=f"u{i + 1}", alpha=alpha) for i in range(num_users))
    return Scenario(name=name or f"paper-M{num_users}", users=users, **changes)
