import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FailureKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_KIND_UNSPECIFIED: _ClassVar[FailureKind]
    FAILURE_KIND_CONNECTION: _ClassVar[FailureKind]
    FAILURE_KIND_AUTHENTICATION: _ClassVar[FailureKind]
    FAILURE_KIND_VALIDATION: _ClassVar[FailureKind]
    FAILURE_KIND_TIMEOUT: _ClassVar[FailureKind]
    FAILURE_KIND_COMMAND: _ClassVar[FailureKind]
    FAILURE_KIND_UNSUPPORTED: _ClassVar[FailureKind]
    FAILURE_KIND_INTERNAL: _ClassVar[FailureKind]
    FAILURE_KIND_EXTERNAL: _ClassVar[FailureKind]

class NodeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_STATUS_UNSPECIFIED: _ClassVar[NodeStatus]
    NODE_STATUS_PASSED: _ClassVar[NodeStatus]
    NODE_STATUS_FAILED: _ClassVar[NodeStatus]
    NODE_STATUS_SKIPPED: _ClassVar[NodeStatus]

class MessageLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_LEVEL_UNSPECIFIED: _ClassVar[MessageLevel]
    MESSAGE_LEVEL_INFO: _ClassVar[MessageLevel]
    MESSAGE_LEVEL_WARNING: _ClassVar[MessageLevel]
    MESSAGE_LEVEL_ERROR: _ClassVar[MessageLevel]
    MESSAGE_LEVEL_DEBUG: _ClassVar[MessageLevel]
FAILURE_KIND_UNSPECIFIED: FailureKind
FAILURE_KIND_CONNECTION: FailureKind
FAILURE_KIND_AUTHENTICATION: FailureKind
FAILURE_KIND_VALIDATION: FailureKind
FAILURE_KIND_TIMEOUT: FailureKind
FAILURE_KIND_COMMAND: FailureKind
FAILURE_KIND_UNSUPPORTED: FailureKind
FAILURE_KIND_INTERNAL: FailureKind
FAILURE_KIND_EXTERNAL: FailureKind
NODE_STATUS_UNSPECIFIED: NodeStatus
NODE_STATUS_PASSED: NodeStatus
NODE_STATUS_FAILED: NodeStatus
NODE_STATUS_SKIPPED: NodeStatus
MESSAGE_LEVEL_UNSPECIFIED: MessageLevel
MESSAGE_LEVEL_INFO: MessageLevel
MESSAGE_LEVEL_WARNING: MessageLevel
MESSAGE_LEVEL_ERROR: MessageLevel
MESSAGE_LEVEL_DEBUG: MessageLevel

class ConnectionOptions(_message.Message):
    __slots__ = ("hostname", "port", "username", "password", "platform", "extras_json", "env_extras")
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    EXTRAS_JSON_FIELD_NUMBER: _ClassVar[int]
    ENV_EXTRAS_FIELD_NUMBER: _ClassVar[int]
    hostname: str
    port: int
    username: str
    password: str
    platform: str
    extras_json: str
    env_extras: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, hostname: _Optional[str] = ..., port: _Optional[int] = ..., username: _Optional[str] = ..., password: _Optional[str] = ..., platform: _Optional[str] = ..., extras_json: _Optional[str] = ..., env_extras: _Optional[_Iterable[str]] = ...) -> None: ...

class Host(_message.Message):
    __slots__ = ("id", "hostname", "port", "username", "password", "platform", "groups", "data_json", "connection_options", "all_groups", "sources_json", "agent_pool")
    class ConnectionOptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ConnectionOptions
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ConnectionOptions, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    ALL_GROUPS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_JSON_FIELD_NUMBER: _ClassVar[int]
    AGENT_POOL_FIELD_NUMBER: _ClassVar[int]
    id: str
    hostname: str
    port: int
    username: str
    password: str
    platform: str
    groups: _containers.RepeatedScalarFieldContainer[str]
    data_json: str
    connection_options: _containers.MessageMap[str, ConnectionOptions]
    all_groups: _containers.RepeatedScalarFieldContainer[str]
    sources_json: str
    agent_pool: str
    def __init__(self, id: _Optional[str] = ..., hostname: _Optional[str] = ..., port: _Optional[int] = ..., username: _Optional[str] = ..., password: _Optional[str] = ..., platform: _Optional[str] = ..., groups: _Optional[_Iterable[str]] = ..., data_json: _Optional[str] = ..., connection_options: _Optional[_Mapping[str, ConnectionOptions]] = ..., all_groups: _Optional[_Iterable[str]] = ..., sources_json: _Optional[str] = ..., agent_pool: _Optional[str] = ...) -> None: ...

class CodeRef(_message.Message):
    __slots__ = ("content_hash", "import_path")
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    IMPORT_PATH_FIELD_NUMBER: _ClassVar[int]
    content_hash: str
    import_path: str
    def __init__(self, content_hash: _Optional[str] = ..., import_path: _Optional[str] = ...) -> None: ...

class SourceModule(_message.Message):
    __slots__ = ("name", "source", "package", "filename")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    source: bytes
    package: bool
    filename: str
    def __init__(self, name: _Optional[str] = ..., source: _Optional[bytes] = ..., package: _Optional[bool] = ..., filename: _Optional[str] = ...) -> None: ...

class Requirement(_message.Message):
    __slots__ = ("distribution", "version")
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    distribution: str
    version: str
    def __init__(self, distribution: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class CodeBlob(_message.Message):
    __slots__ = ("content_hash", "payload", "modules", "requirements")
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    content_hash: str
    payload: bytes
    modules: _containers.RepeatedCompositeFieldContainer[SourceModule]
    requirements: _containers.RepeatedCompositeFieldContainer[Requirement]
    def __init__(self, content_hash: _Optional[str] = ..., payload: _Optional[bytes] = ..., modules: _Optional[_Iterable[_Union[SourceModule, _Mapping]]] = ..., requirements: _Optional[_Iterable[_Union[Requirement, _Mapping]]] = ...) -> None: ...

class TaskSpec(_message.Message):
    __slots__ = ("name", "options_json", "processors", "connection_plugin_name", "sub_tasks", "code")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    PROCESSORS_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_PLUGIN_NAME_FIELD_NUMBER: _ClassVar[int]
    SUB_TASKS_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    name: str
    options_json: str
    processors: _containers.RepeatedScalarFieldContainer[str]
    connection_plugin_name: str
    sub_tasks: _containers.RepeatedCompositeFieldContainer[TaskSpec]
    code: CodeRef
    def __init__(self, name: _Optional[str] = ..., options_json: _Optional[str] = ..., processors: _Optional[_Iterable[str]] = ..., connection_plugin_name: _Optional[str] = ..., sub_tasks: _Optional[_Iterable[_Union[TaskSpec, _Mapping]]] = ..., code: _Optional[_Union[CodeRef, _Mapping]] = ...) -> None: ...

class TaskMessage(_message.Message):
    __slots__ = ("level", "text", "code", "timestamp")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    level: MessageLevel
    text: str
    code: str
    timestamp: str
    def __init__(self, level: _Optional[_Union[MessageLevel, str]] = ..., text: _Optional[str] = ..., code: _Optional[str] = ..., timestamp: _Optional[str] = ...) -> None: ...

class Passed(_message.Message):
    __slots__ = ("result_json", "changed", "diff", "summary", "warnings", "metadata_json", "messages")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    DIFF_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    changed: bool
    diff: str
    summary: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    metadata_json: str
    messages: _containers.RepeatedCompositeFieldContainer[TaskMessage]
    def __init__(self, result_json: _Optional[str] = ..., changed: _Optional[bool] = ..., diff: _Optional[str] = ..., summary: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ..., metadata_json: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[TaskMessage, _Mapping]]] = ...) -> None: ...

class Failed(_message.Message):
    __slots__ = ("message", "kind", "retryable", "details_json", "warnings", "messages")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    message: str
    kind: FailureKind
    retryable: bool
    details_json: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    messages: _containers.RepeatedCompositeFieldContainer[TaskMessage]
    def __init__(self, message: _Optional[str] = ..., kind: _Optional[_Union[FailureKind, str]] = ..., retryable: _Optional[bool] = ..., details_json: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ..., messages: _Optional[_Iterable[_Union[TaskMessage, _Mapping]]] = ...) -> None: ...

class Skipped(_message.Message):
    __slots__ = ("reason", "message")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    message: str
    def __init__(self, reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class NodeResult(_message.Message):
    __slots__ = ("node", "passed", "failed", "skipped")
    NODE_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    node: int
    passed: Passed
    failed: Failed
    skipped: Skipped
    def __init__(self, node: _Optional[int] = ..., passed: _Optional[_Union[Passed, _Mapping]] = ..., failed: _Optional[_Union[Failed, _Mapping]] = ..., skipped: _Optional[_Union[Skipped, _Mapping]] = ...) -> None: ...

class NodeDetails(_message.Message):
    __slots__ = ("results", "started_at_ns", "duration_ns", "agent_id", "attempts", "retries_exhausted", "dry_run")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    DURATION_NS_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RETRIES_EXHAUSTED_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[NodeResult]
    started_at_ns: _containers.RepeatedScalarFieldContainer[int]
    duration_ns: _containers.RepeatedScalarFieldContainer[int]
    agent_id: str
    attempts: _containers.RepeatedScalarFieldContainer[int]
    retries_exhausted: _containers.RepeatedScalarFieldContainer[bool]
    dry_run: bool
    def __init__(self, results: _Optional[_Iterable[_Union[NodeResult, _Mapping]]] = ..., started_at_ns: _Optional[_Iterable[int]] = ..., duration_ns: _Optional[_Iterable[int]] = ..., agent_id: _Optional[str] = ..., attempts: _Optional[_Iterable[int]] = ..., retries_exhausted: _Optional[_Iterable[bool]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class HostRecord(_message.Message):
    __slots__ = ("host_id", "first_node", "statuses", "done", "details")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_NODE_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    first_node: int
    statuses: bytes
    done: bool
    details: bytes
    def __init__(self, host_id: _Optional[str] = ..., first_node: _Optional[int] = ..., statuses: _Optional[bytes] = ..., done: _Optional[bool] = ..., details: _Optional[bytes] = ...) -> None: ...

class RetryDefaults(_message.Message):
    __slots__ = ("allow", "max_attempts", "delay_ms")
    ALLOW_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    allow: bool
    max_attempts: int
    delay_ms: int
    def __init__(self, allow: _Optional[bool] = ..., max_attempts: _Optional[int] = ..., delay_ms: _Optional[int] = ...) -> None: ...

class RunStart(_message.Message):
    __slots__ = ("run_id", "root", "task_timeout", "deadline", "connection_settings_json", "login_limit", "stream_nodes", "retry", "max_connection_attempts", "dry_run", "confirm", "log_level", "max_result_size")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    TASK_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_SETTINGS_JSON_FIELD_NUMBER: _ClassVar[int]
    LOGIN_LIMIT_FIELD_NUMBER: _ClassVar[int]
    STREAM_NODES_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    MAX_CONNECTION_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    CONFIRM_FIELD_NUMBER: _ClassVar[int]
    LOG_LEVEL_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULT_SIZE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    root: TaskSpec
    task_timeout: _duration_pb2.Duration
    deadline: _timestamp_pb2.Timestamp
    connection_settings_json: str
    login_limit: int
    stream_nodes: bool
    retry: RetryDefaults
    max_connection_attempts: int
    dry_run: bool
    confirm: bool
    log_level: int
    max_result_size: int
    def __init__(self, run_id: _Optional[str] = ..., root: _Optional[_Union[TaskSpec, _Mapping]] = ..., task_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., connection_settings_json: _Optional[str] = ..., login_limit: _Optional[int] = ..., stream_nodes: _Optional[bool] = ..., retry: _Optional[_Union[RetryDefaults, _Mapping]] = ..., max_connection_attempts: _Optional[int] = ..., dry_run: _Optional[bool] = ..., confirm: _Optional[bool] = ..., log_level: _Optional[int] = ..., max_result_size: _Optional[int] = ...) -> None: ...

class WorkBatch(_message.Message):
    __slots__ = ("run_id", "hosts")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    hosts: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, run_id: _Optional[str] = ..., hosts: _Optional[_Iterable[bytes]] = ...) -> None: ...

class CancelRun(_message.Message):
    __slots__ = ("run_id", "reason")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    reason: str
    def __init__(self, run_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RunClosed(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class Shutdown(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class CloseConnections(_message.Message):
    __slots__ = ("reason", "host_ids")
    REASON_FIELD_NUMBER: _ClassVar[int]
    HOST_IDS_FIELD_NUMBER: _ClassVar[int]
    reason: str
    host_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, reason: _Optional[str] = ..., host_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class LoadQuery(_message.Message):
    __slots__ = ("query_id",)
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    query_id: int
    def __init__(self, query_id: _Optional[int] = ...) -> None: ...

class Liveness(_message.Message):
    __slots__ = ("heartbeat_interval", "timeout")
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    heartbeat_interval: _duration_pb2.Duration
    timeout: _duration_pb2.Duration
    def __init__(self, heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Drain(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class CoordinatorMessage(_message.Message):
    __slots__ = ("code", "run_start", "work", "cancel", "run_closed", "shutdown", "close_connections", "load_query", "liveness", "heartbeat", "drain")
    CODE_FIELD_NUMBER: _ClassVar[int]
    RUN_START_FIELD_NUMBER: _ClassVar[int]
    WORK_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    RUN_CLOSED_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_FIELD_NUMBER: _ClassVar[int]
    CLOSE_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    LOAD_QUERY_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    code: CodeBlob
    run_start: RunStart
    work: WorkBatch
    cancel: CancelRun
    run_closed: RunClosed
    shutdown: Shutdown
    close_connections: CloseConnections
    load_query: LoadQuery
    liveness: Liveness
    heartbeat: Heartbeat
    drain: Drain
    def __init__(self, code: _Optional[_Union[CodeBlob, _Mapping]] = ..., run_start: _Optional[_Union[RunStart, _Mapping]] = ..., work: _Optional[_Union[WorkBatch, _Mapping]] = ..., cancel: _Optional[_Union[CancelRun, _Mapping]] = ..., run_closed: _Optional[_Union[RunClosed, _Mapping]] = ..., shutdown: _Optional[_Union[Shutdown, _Mapping]] = ..., close_connections: _Optional[_Union[CloseConnections, _Mapping]] = ..., load_query: _Optional[_Union[LoadQuery, _Mapping]] = ..., liveness: _Optional[_Union[Liveness, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., drain: _Optional[_Union[Drain, _Mapping]] = ...) -> None: ...

class AgentHello(_message.Message):
    __slots__ = ("agent_id", "pool", "pid", "hostname", "version", "concurrency", "protocol")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    pool: str
    pid: int
    hostname: str
    version: str
    concurrency: int
    protocol: int
    def __init__(self, agent_id: _Optional[str] = ..., pool: _Optional[str] = ..., pid: _Optional[int] = ..., hostname: _Optional[str] = ..., version: _Optional[str] = ..., concurrency: _Optional[int] = ..., protocol: _Optional[int] = ...) -> None: ...

class ResultBatch(_message.Message):
    __slots__ = ("run_id", "records", "started_host_ids")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    STARTED_HOST_IDS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    records: _containers.RepeatedCompositeFieldContainer[HostRecord]
    started_host_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, run_id: _Optional[str] = ..., records: _Optional[_Iterable[_Union[HostRecord, _Mapping]]] = ..., started_host_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RunRejected(_message.Message):
    __slots__ = ("run_id", "message", "kind")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    message: str
    kind: FailureKind
    def __init__(self, run_id: _Optional[str] = ..., message: _Optional[str] = ..., kind: _Optional[_Union[FailureKind, str]] = ...) -> None: ...

class LogRecord(_message.Message):
    __slots__ = ("logger", "level", "message", "created", "pid", "thread", "run_id", "host_id", "agent_id")
    LOGGER_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    THREAD_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    logger: str
    level: int
    message: str
    created: float
    pid: int
    thread: str
    run_id: str
    host_id: str
    agent_id: str
    def __init__(self, logger: _Optional[str] = ..., level: _Optional[int] = ..., message: _Optional[str] = ..., created: _Optional[float] = ..., pid: _Optional[int] = ..., thread: _Optional[str] = ..., run_id: _Optional[str] = ..., host_id: _Optional[str] = ..., agent_id: _Optional[str] = ...) -> None: ...

class LogRecords(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[LogRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[LogRecord, _Mapping]]] = ...) -> None: ...

class AgentHeartbeat(_message.Message):
    __slots__ = ("stuck_workers", "stuck_host_ids")
    STUCK_WORKERS_FIELD_NUMBER: _ClassVar[int]
    STUCK_HOST_IDS_FIELD_NUMBER: _ClassVar[int]
    stuck_workers: int
    stuck_host_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, stuck_workers: _Optional[int] = ..., stuck_host_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RunAccepted(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class AgentLoad(_message.Message):
    __slots__ = ("query_id", "hosts_in_flight", "open_connections", "runs")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTS_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    OPEN_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    query_id: int
    hosts_in_flight: int
    open_connections: int
    runs: int
    def __init__(self, query_id: _Optional[int] = ..., hosts_in_flight: _Optional[int] = ..., open_connections: _Optional[int] = ..., runs: _Optional[int] = ...) -> None: ...

class AgentMessage(_message.Message):
    __slots__ = ("hello", "results", "rejected", "logs", "accepted", "load", "heartbeat")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    hello: AgentHello
    results: ResultBatch
    rejected: RunRejected
    logs: LogRecords
    accepted: RunAccepted
    load: AgentLoad
    heartbeat: AgentHeartbeat
    def __init__(self, hello: _Optional[_Union[AgentHello, _Mapping]] = ..., results: _Optional[_Union[ResultBatch, _Mapping]] = ..., rejected: _Optional[_Union[RunRejected, _Mapping]] = ..., logs: _Optional[_Union[LogRecords, _Mapping]] = ..., accepted: _Optional[_Union[RunAccepted, _Mapping]] = ..., load: _Optional[_Union[AgentLoad, _Mapping]] = ..., heartbeat: _Optional[_Union[AgentHeartbeat, _Mapping]] = ...) -> None: ...

class RunRequest(_message.Message):
    __slots__ = ("root", "code", "hosts", "task_timeout", "run_timeout", "connection_settings_json", "max_logins_per_agent", "max_logins", "run_id", "stream_nodes", "retry", "max_connection_attempts", "dry_run", "log_level", "max_result_size", "heartbeat_interval")
    ROOT_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    TASK_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RUN_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_SETTINGS_JSON_FIELD_NUMBER: _ClassVar[int]
    MAX_LOGINS_PER_AGENT_FIELD_NUMBER: _ClassVar[int]
    MAX_LOGINS_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_NODES_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    MAX_CONNECTION_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    LOG_LEVEL_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULT_SIZE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    root: TaskSpec
    code: _containers.RepeatedCompositeFieldContainer[CodeBlob]
    hosts: _containers.RepeatedScalarFieldContainer[bytes]
    task_timeout: _duration_pb2.Duration
    run_timeout: _duration_pb2.Duration
    connection_settings_json: str
    max_logins_per_agent: int
    max_logins: int
    run_id: str
    stream_nodes: bool
    retry: RetryDefaults
    max_connection_attempts: int
    dry_run: bool
    log_level: int
    max_result_size: int
    heartbeat_interval: _duration_pb2.Duration
    def __init__(self, root: _Optional[_Union[TaskSpec, _Mapping]] = ..., code: _Optional[_Iterable[_Union[CodeBlob, _Mapping]]] = ..., hosts: _Optional[_Iterable[bytes]] = ..., task_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., run_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., connection_settings_json: _Optional[str] = ..., max_logins_per_agent: _Optional[int] = ..., max_logins: _Optional[int] = ..., run_id: _Optional[str] = ..., stream_nodes: _Optional[bool] = ..., retry: _Optional[_Union[RetryDefaults, _Mapping]] = ..., max_connection_attempts: _Optional[int] = ..., dry_run: _Optional[bool] = ..., log_level: _Optional[int] = ..., max_result_size: _Optional[int] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RunFinished(_message.Message):
    __slots__ = ("run_id", "cancelled")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    cancelled: str
    def __init__(self, run_id: _Optional[str] = ..., cancelled: _Optional[str] = ...) -> None: ...

class RunAttached(_message.Message):
    __slots__ = ("run_id", "root", "host_ids", "dry_run")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    HOST_IDS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    root: TaskSpec
    host_ids: _containers.RepeatedScalarFieldContainer[str]
    dry_run: bool
    def __init__(self, run_id: _Optional[str] = ..., root: _Optional[_Union[TaskSpec, _Mapping]] = ..., host_ids: _Optional[_Iterable[str]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("results", "finished", "logs", "attached", "heartbeat")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    ATTACHED_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    results: ResultBatch
    finished: RunFinished
    logs: LogRecords
    attached: RunAttached
    heartbeat: Heartbeat
    def __init__(self, results: _Optional[_Union[ResultBatch, _Mapping]] = ..., finished: _Optional[_Union[RunFinished, _Mapping]] = ..., logs: _Optional[_Union[LogRecords, _Mapping]] = ..., attached: _Optional[_Union[RunAttached, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class AttachRequest(_message.Message):
    __slots__ = ("run_id", "heartbeat_interval")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    heartbeat_interval: _duration_pb2.Duration
    def __init__(self, run_id: _Optional[str] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class CancelRunRequest(_message.Message):
    __slots__ = ("run_id", "reason")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    reason: str
    def __init__(self, run_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelRunReply(_message.Message):
    __slots__ = ("was_running",)
    WAS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    was_running: bool
    def __init__(self, was_running: _Optional[bool] = ...) -> None: ...

class CloseConnectionsRequest(_message.Message):
    __slots__ = ("host_ids",)
    HOST_IDS_FIELD_NUMBER: _ClassVar[int]
    host_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, host_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CloseConnectionsReply(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: int
    def __init__(self, agents: _Optional[int] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentStatus(_message.Message):
    __slots__ = ("agent_id", "pool", "hostname", "version", "protocol", "pid", "connected_at", "concurrency", "answered", "hosts_in_flight", "open_connections", "runs")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_AT_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    HOSTS_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    OPEN_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    pool: str
    hostname: str
    version: str
    protocol: int
    pid: int
    connected_at: _timestamp_pb2.Timestamp
    concurrency: int
    answered: bool
    hosts_in_flight: int
    open_connections: int
    runs: int
    def __init__(self, agent_id: _Optional[str] = ..., pool: _Optional[str] = ..., hostname: _Optional[str] = ..., version: _Optional[str] = ..., protocol: _Optional[int] = ..., pid: _Optional[int] = ..., connected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., concurrency: _Optional[int] = ..., answered: _Optional[bool] = ..., hosts_in_flight: _Optional[int] = ..., open_connections: _Optional[int] = ..., runs: _Optional[int] = ...) -> None: ...

class StatusReply(_message.Message):
    __slots__ = ("version", "protocol", "pools", "agents", "runs")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    version: str
    protocol: int
    pools: _containers.RepeatedScalarFieldContainer[str]
    agents: _containers.RepeatedCompositeFieldContainer[AgentStatus]
    runs: int
    def __init__(self, version: _Optional[str] = ..., protocol: _Optional[int] = ..., pools: _Optional[_Iterable[str]] = ..., agents: _Optional[_Iterable[_Union[AgentStatus, _Mapping]]] = ..., runs: _Optional[int] = ...) -> None: ...
