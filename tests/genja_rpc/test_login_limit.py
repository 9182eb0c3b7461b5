"""How the coordinator splits the run's login caps between agents."""

from __future__ import annotations

import pytest

from genja_rpc._coordinator import RunOrder, login_limit
from genja_rpc._pb import pb


@pytest.mark.parametrize(
    ("per_agent", "overall", "agents", "expected"),
    [
        (0, 0, 4, 0),  # no caps at all
        (20, 0, 4, 20),
        (0, 10, 4, 3),  # ceil(10 / 4)
        (20, 10, 4, 3),
        (2, 100, 4, 2),
        (0, 1, 8, 1),  # never below one
    ],
)
def test_login_limit(per_agent: int, overall: int, agents: int, expected: int):
    order = RunOrder(
        "run", pb.TaskSpec(), (), (), max_logins_per_agent=per_agent, max_logins=overall
    )
    assert login_limit(order, agents) == expected
