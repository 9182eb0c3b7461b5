"""The per-node policies every runtime applies, outermost first (see `agent._pipeline`).

Each policy is a layer around the call of one node. Adding one means writing its class (in a
module of its own, with its test) and listing it here; nothing else in the pipeline changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent._pipeline import NodePolicy


def default_policies() -> Sequence[NodePolicy]:
    """The policies of a run, outermost first. None yet: retry, dry-run, idempotency checks
    and session verification will be listed here."""
    return ()
