"""Who the caller is to this server, and which namespaces they may list."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from jobline import __version__
from jobline.server.parameters import Authorization, identities
from jobline.server.problems import ERRORS

router = APIRouter(prefix="/api/v1", responses=ERRORS)


@router.get("/session", tags=["session"])
def session(request: Request, authorization: Authorization = None) -> dict[str, Any]:
    """How the server acts for this caller: its credential mode, the caller's user name
    (as the apiserver sees it) and a namespace to start in."""
    found = identities(request)
    user = found.runs(authorization, found.default_namespace).whoami()
    return {
        "credentials": found.credentials.value,
        "tokenGiven": bool(authorization),
        "user": user,
        "namespace": found.default_namespace,
        "version": __version__,
    }


@router.get("/namespaces", tags=["namespaces"])
def namespaces(request: Request, authorization: Authorization = None) -> dict[str, Any]:
    """The namespaces the caller may list (403 if none: type one in instead)."""
    return {"items": identities(request).runs(authorization, "default").namespaces()}
