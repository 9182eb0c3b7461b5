"""Everything that speaks gRPC on the control side: converters, the coordinator, its agent
pool, and the `agents` runner (`genja_rpc._runtime`). Its modules are imported where they are
used, so an agent that needs only the converters does not load the coordinator."""
