"""Everything that speaks gRPC on the control side: converters, the coordinator, its agent
pool, and the runtimes the `Genja` facade runs on."""

from genja_rpc._cli import main as coordinator_main
from genja_rpc._runtime import EmbeddedRuntime, open_runtime

__all__ = ["EmbeddedRuntime", "coordinator_main", "open_runtime"]
