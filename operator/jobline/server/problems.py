"""Errors as the Jobs API answers them: `{"status", "reason", "message"}`, as the
apiserver's Status does."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel


class Problem(BaseModel):
    status: int
    reason: str
    message: str


# The answers every route may give, for the OpenAPI document.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": text}
    for code, text in {
        400: "A malformed parameter or body",
        401: "No token, or one the apiserver does not accept",
        403: "RBAC forbids it, or a cross-site write",
        404: "Not found",
    }.items()
}


def problem(
    status: int, reason: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(
        {"status": status, "reason": reason, "message": message},
        status_code=status,
        headers=headers,
    )
