"""The reference's first example, run over a small in-memory inventory."""

import genja as genja_lib
from genja.task import Host, TaskInfo, TaskRuntimeContext, TaskSuccessResult, task


@task(name="collect_facts")
class CollectFacts:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        return TaskSuccessResult(
            summary=f"collected facts from {host.hostname}",
            metadata={
                "hostname": host.hostname,
                "platform": host.platform,
                "facts_collected": True,
            },
        )


if __name__ == "__main__":
    hosts = {
        "router1": {"hostname": "127.0.0.1", "platform": "ios"},
        "router2": {"hostname": "127.0.0.2", "platform": "eos"},
    }
    with genja_lib.Genja.from_hosts(hosts) as genja:
        results = genja.run_task(CollectFacts, max_depth=1)
        print(results.to_json(pretty=True))
        print(results.host_summary())
