import pytest

from jobline.core.variables import InvalidVariables, resolve_variables
from jobline.models import Variable

DECLARED = [
    Variable(name="START_DATE", default="2024-01-01"),
    Variable(name="FULL_REFRESH", default="false", enum=["true", "false"]),
    Variable(name="TARGET_SCHEMA", required=True),
    Variable(name="OPTIONAL"),
]


def test_defaults_merge_with_overrides() -> None:
    got = resolve_variables(DECLARED, {"TARGET_SCHEMA": "raw", "FULL_REFRESH": "true"})
    assert got == {"START_DATE": "2024-01-01", "FULL_REFRESH": "true", "TARGET_SCHEMA": "raw"}


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"TARGET_SCHEMA": "raw", "NOPE": "1"}, "NOPE is not declared"),
        ({}, "TARGET_SCHEMA is required"),
        ({"TARGET_SCHEMA": "raw", "FULL_REFRESH": "maybe"}, "FULL_REFRESH='maybe' is not one of"),
    ],
)
def test_invalid_variables_name_the_variable(given: dict[str, str], named: str) -> None:
    with pytest.raises(InvalidVariables, match=named):
        resolve_variables(DECLARED, given)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidVariables) as err:
        resolve_variables(DECLARED, {"X": "1", "FULL_REFRESH": "no"})
    assert "X is not declared" in str(err.value)
    assert "TARGET_SCHEMA is required" in str(err.value)
    assert "FULL_REFRESH='no'" in str(err.value)
