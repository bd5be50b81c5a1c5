"""The Jobs API (`/api/v1/...`) and the dashboard (`/`): a thin layer over Pipelines and
PipelineJobs. Every apiserver call is made as the caller (see identity.py), so the
cluster's RBAC decides what each caller may see and do; the operator does the rest.
Lists of runs come from the server's own read-only watch (run_index.py), shown only to
callers the apiserver says may list them.

The routes (routes/) are plain functions: FastAPI runs them in its thread pool, since
the Kubernetes client blocks. Followed logs have threads of their own (followers.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources as package_files

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from jobline import __version__
from jobline.archive import Archive
from jobline.client.runs import UserError
from jobline.server.followers import Followers
from jobline.server.identity import Credentials, Identities
from jobline.server.limits import BodyLimit
from jobline.server.problems import problem
from jobline.server.routes import jobs, logs, pipelines, session
from jobline.server.run_index import RunIndex
from jobline.server.security import refusal, secure

log = logging.getLogger("jobline.server")
STATIC = package_files.files("jobline.server") / "static"


def create_app(
    identities: Identities,
    allowed_hosts: frozenset[str] | None,
    max_followers: int,
    run_index: RunIndex | None = None,
    archive: Archive | None = None,
) -> FastAPI:
    """The server. With `allowed_hosts`, a request naming another Host is refused (see
    security.py). At most `max_followers` logs are followed at once. Without `run_index`,
    runs are listed from the apiserver on each request. With `archive`, the logs of runs
    whose pods are gone are read from it, for callers who may read pods' logs."""
    index = run_index or RunIndex(None)

    @asynccontextmanager
    async def watching(_: FastAPI) -> AsyncIterator[None]:
        index.start()
        yield
        index.stop()

    app = FastAPI(
        lifespan=watching,
        title="Jobline Jobs API",
        version=__version__,
        description="Pipelines and their runs (jobs), with the caller's Kubernetes identity.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # the reference is docs/jobs-api.md; no page with CDN assets
        redoc_url=None,
    )
    app.state.identities = identities
    app.state.run_index = index
    app.state.followers = Followers(max_followers)
    app.state.archive = archive

    # Inside the guard below (added later, so it runs first): a foreign Host or a
    # cross-site write is refused before this reads any body.
    app.add_middleware(
        BodyLimit, token_required=lambda: identities.credentials == Credentials.TOKEN
    )

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = refusal(request, allowed_hosts) or await call_next(request)
        secure(request, response)
        return response

    @app.exception_handler(UserError)
    async def user_error(_: Request, error: UserError) -> JSONResponse:
        return problem(error.status, error.reason, str(error))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return problem(400, "BadRequest", f"{where}: {first.get('msg')}")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        reason = {404: "NotFound", 405: "MethodNotAllowed"}.get(error.status_code, "Error")
        return problem(error.status_code, reason, str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return problem(500, "InternalError", "the server failed; its log says why")

    for module in (session, pipelines, jobs, logs):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:  # on the event loop: busy threads cannot delay it
        return {"status": "ok"}  # the process serves; each caller's cluster access is theirs

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})

    return app
