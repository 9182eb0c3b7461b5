"""The per-node policies every runtime applies, outermost first (see `agent._pipeline`).

Each policy is a layer around the call of one node. Adding one means writing its class (in a
module of its own, with its test) and listing it here; nothing else in the pipeline changes.
Policies are made per run, from what the run's settings say about them (`PolicySettings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agent._pipeline import NodePolicy
from agent._retry import RetryPolicy
from genja._settings import RunnerRetrySettings, Settings


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """What the policies of a run are configured with: the client's settings, or what an
    agent's RunStart carries of them."""

    retry: RunnerRetrySettings = field(default_factory=RunnerRetrySettings)

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicySettings:
        return cls(retry=settings.runner.retry)


def default_policies(settings: PolicySettings) -> Sequence[NodePolicy]:
    """The policies of a run, outermost first. Retry is outermost: each attempt goes through
    every inner layer. Dry-run, idempotency checks and session verification will be listed
    here."""
    return (RetryPolicy(settings.retry),)
