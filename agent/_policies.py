"""The per-node policies every runtime applies, outermost first (see `agent._pipeline`).

Each policy is a layer around the call of one node. Adding one means writing its class (in a
module of its own, with its test) and listing it here; nothing else in the pipeline changes.
Policies are made per run, from what the run's settings say about them (`PolicySettings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent._dry_run import DryRunPolicy
from agent._idempotency import IdempotencyPolicy
from agent._pipeline import NodePolicy
from agent._retry import RetryPolicy
from agent._session_verification import SessionVerificationPolicy

if TYPE_CHECKING:
    from genja._settings import RunnerRetrySettings


def _runner_retry_defaults() -> RunnerRetrySettings:
    # Imported when a run starts, not when the agent does: the settings model is a good part
    # of an agent's start-up time, and an agent gets a run's retry defaults in its RunStart.
    from genja._settings import RunnerRetrySettings

    return RunnerRetrySettings()


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """What the policies of a run are configured with: the client's settings and the run's
    options (`dry_run`), or what an agent's RunStart carries of them."""

    retry: RunnerRetrySettings = field(default_factory=_runner_retry_defaults)
    dry_run: bool = False


def default_policies(settings: PolicySettings) -> Sequence[NodePolicy]:
    """The policies of a run, outermost first.

    Retry is outermost: each attempt goes through every inner layer (so an idempotent task's
    pre-check runs again before a retry). A dry run has the dry-run layer; any other run the
    idempotency check around session verification, so a `CHECK_AND_VERIFY` post-check runs
    through the session verification opened."""
    dry_run = settings.dry_run
    return (
        RetryPolicy(settings.retry),
        DryRunPolicy(dry_run),
        IdempotencyPolicy(dry_run),
        SessionVerificationPolicy(dry_run),
    )
