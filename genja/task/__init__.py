"""What task authors import: the decorator, the task inputs and the result types."""

from genja._host import ConnectionOptions, Host
from genja.task._context import TaskRuntimeContext
from genja.task._definition import TaskDefinition, TaskInfo, definition_of, is_task, task
from genja.task._errors import ParseError, TaskError
from genja.task._idempotency import IdempotencyCheckResult, IdempotencyMode
from genja.task._results import (
    ExecutionMetadata,
    HostTaskResult,
    TaskFailureKind,
    TaskFailureResult,
    TaskMessage,
    TaskMessageLevel,
    TaskSkipResult,
    TaskStatus,
    TaskSuccessResult,
)
from genja.task._retry import RetryConfig
from genja.task._session import SessionVerificationConfig

__all__ = [
    "ConnectionOptions",
    "ExecutionMetadata",
    "Host",
    "HostTaskResult",
    "IdempotencyCheckResult",
    "IdempotencyMode",
    "ParseError",
    "RetryConfig",
    "SessionVerificationConfig",
    "TaskDefinition",
    "TaskError",
    "TaskFailureKind",
    "TaskFailureResult",
    "TaskInfo",
    "TaskMessage",
    "TaskMessageLevel",
    "TaskRuntimeContext",
    "TaskSkipResult",
    "TaskStatus",
    "TaskSuccessResult",
    "definition_of",
    "is_task",
    "task",
]
