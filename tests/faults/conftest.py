from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The fault suite (`pytest -m faults`) kills, freezes and starves the control plane
    # and the operator: it runs in its own session, after the cluster tests.
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.faults)


from tests.cluster.jobline_fixtures import jl, operator  # noqa: E402, F401  (fixtures)
