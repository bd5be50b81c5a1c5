from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything under tests/cluster/ needs a cluster: `pytest -m "not cluster"` skips it.
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.cluster)


from tests.cluster.jobline_fixtures import jl, operator  # noqa: E402, F401  (fixtures)
from tests.cluster.server_fixtures import local_server, server  # noqa: E402, F401  (fixtures)
