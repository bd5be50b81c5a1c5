"""A run's effective variables: the Pipeline's declared defaults merged with the run's values."""

from __future__ import annotations

from jobline.models import Variable


class InvalidVariables(ValueError):
    """A run's variables do not fit the Pipeline's declarations; the message names them."""


def resolve_variables(declared: list[Variable], given: dict[str, str]) -> dict[str, str]:
    by_name = {v.name: v for v in declared}
    problems = []
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        known = ", ".join(sorted(by_name)) or "none"
        problems.append(
            f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not declared by the "
            f"Pipeline (declared: {known})"
        )
    values: dict[str, str] = {}
    for var in declared:
        value = given.get(var.name, var.default)
        if value is None:
            if var.required:
                problems.append(f"{var.name} is required and has no default")
            continue
        if var.enum is not None and value not in var.enum:
            allowed = ", ".join(repr(v) for v in var.enum)
            problems.append(f"{var.name}={value!r} is not one of {allowed}")
        values[var.name] = value
    if problems:
        raise InvalidVariables("; ".join(problems))
    return values
