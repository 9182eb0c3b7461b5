from __future__ import annotations

import pytest

from genja import TaskDefinitionError
from genja.task import TaskInfo, TaskSuccessResult, definition_of, is_task, task


def test_decorator_records_a_frozen_definition() -> None:
    @task(name="child")
    class Child:
        def start(self, task, host, context):  # type: ignore[no-untyped-def]
            return TaskSuccessResult()

    @task(
        name="parent",
        connection_plugin_name="ssh",
        processors=["audit"],
        sub_tasks=[Child],
        options={"a": 1},
    )
    class Parent:
        async def start_async(self, task, host, context):  # type: ignore[no-untyped-def]
            return TaskSuccessResult()

    definition = definition_of(Parent)
    assert definition.name == "parent"
    assert definition.is_async
    assert definition.processors == ("audit",)
    assert definition.sub_tasks == (Child,)
    assert is_task(Parent)
    assert is_task(Parent())
    info = TaskInfo.from_definition(definition)
    assert info == TaskInfo(
        name="parent",
        options={"a": 1},
        processors=("audit",),
        connection_plugin_name="ssh",
        sub_tasks=(TaskInfo(name="child"),),
    )
    with pytest.raises(AttributeError):
        definition.name = "other"  # type: ignore[misc]


def test_name_defaults_to_the_class_name() -> None:
    @task()
    class Unnamed:
        def start(self, task, host, context):  # type: ignore[no-untyped-def]
            return TaskSuccessResult()

    assert definition_of(Unnamed).name == "Unnamed"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("pass", "defines neither start nor start_async"),
        (
            "def start(self, t, h, c): pass\n    async def start_async(self, t, h, c): pass",
            "defines both start and start_async",
        ),
        ("async def start(self, t, h, c): pass", "start is async"),
        ("def start_async(self, t, h, c): pass", "must be defined with 'async def'"),
    ],
)
def test_entry_point_rules(body: str, message: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"class Bad:\n    {body}\n", namespace)
    with pytest.raises(TaskDefinitionError, match=message) as raised:
        task(name="bad")(namespace["Bad"])  # type: ignore[type-var]
    assert isinstance(raised.value, TypeError)
    assert "Bad" in str(raised.value)


def test_options_must_be_json() -> None:
    with pytest.raises(TaskDefinitionError, match="not JSON-serializable"):

        @task(name="x", options={"when": object()})
        class X:
            def start(self, task, host, context):  # type: ignore[no-untyped-def]
                return TaskSuccessResult()


def test_sub_tasks_must_be_task_classes_with_unique_names() -> None:
    class Plain:
        def start(self, task, host, context):  # type: ignore[no-untyped-def]
            return TaskSuccessResult()

    with pytest.raises(TaskDefinitionError, match="sub_tasks must be @task classes"):
        task(name="p", sub_tasks=[Plain])(Plain)

    @task(name="same")
    class A:
        def start(self, task, host, context):  # type: ignore[no-untyped-def]
            return TaskSuccessResult()

    @task(name="same")
    class B:
        def start(self, task, host, context):  # type: ignore[no-untyped-def]
            return TaskSuccessResult()

    with pytest.raises(TaskDefinitionError, match="two sub-tasks are named 'same'"):

        @task(name="root", sub_tasks=[A, B])
        class Root:
            def start(self, task, host, context):  # type: ignore[no-untyped-def]
                return TaskSuccessResult()


def test_processors_must_be_a_list_of_names() -> None:
    with pytest.raises(TaskDefinitionError, match="list of names"):

        @task(name="x", processors="audit")
        class X:
            def start(self, task, host, context):  # type: ignore[no-untyped-def]
                return TaskSuccessResult()


def test_a_class_without_decorator_is_not_a_task() -> None:
    class Plain:
        pass

    with pytest.raises(TaskDefinitionError, match="decorate its class with @task"):
        definition_of(Plain)
