"""What routes take from a request: path parameters, the caller's token, and the API
client that acts as that caller (so the cluster's RBAC decides what each caller may see
and do)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Request

from jobline.client.runs import Runs
from jobline.server.identity import Identities

Namespace = Annotated[str, Path(description="The namespace: the platforms' workspace.")]
Name = Annotated[str, Path(description="The resource's name.")]
Authorization = Annotated[
    str | None, Header(description="`Bearer <token>`: the caller's Kubernetes token.")
]


def identities(request: Request) -> Identities:
    found: Identities = request.app.state.identities
    return found


def caller(request: Request, namespace: Namespace, authorization: Authorization = None) -> Runs:
    """The API client acting as the caller in the path's namespace."""
    return identities(request).runs(authorization, namespace)


Caller = Annotated[Runs, Depends(caller)]
