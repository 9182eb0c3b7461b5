"""The runner's default limits, apart from the settings model (genja._settings) that declares
`runner.options` with them: agents use them at start, and importing the whole settings model
(its sections, checks and plugin declarations) is a good part of an agent's start-up time."""

DEFAULT_HOST_CONCURRENCY = 100
DEFAULT_MAX_RESULT_SIZE = 16 * 1024 * 1024
# Results travel in gRPC messages of at most 256 MiB (genja_rpc._channels): one result must
# fit in one with room to spare.
MAX_RESULT_SIZE_LIMIT = 128 * 1024 * 1024
# An agent's usual resident memory is ~50-100 MB: 2 GiB leaves tasks room while stopping one
# that would eat the machine.
DEFAULT_AGENT_MEMORY_LIMIT = 2 * 1024**3
DEFAULT_HEARTBEAT_TIMEOUT = 10.0
# 5,000 hosts should not open 5,000 handshakes at once.
DEFAULT_LOGINS_PER_AGENT = 20
