"""The Jobs API (`/api/v1/...`) and the dashboard (`/`): a thin layer over Pipelines and
PipelineJobs. Every apiserver call is made as the caller (see identity.py), so the
cluster's RBAC decides what each caller may see and do; the operator does the rest.

Routes are plain functions: FastAPI runs them in its thread pool, since the Kubernetes
client blocks.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from importlib import resources as package_files
from typing import Annotated, Any

import anyio
from fastapi import Body, FastAPI, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from jobline import __version__
from jobline.core.clock import parse_time
from jobline.models import VALUE_MAX, Phase
from jobline.run_logs import RunLog, log_line_json, read_log
from jobline.runs_api import Runs, UserError
from jobline.server import resources
from jobline.server.identity import Identities

log = logging.getLogger("jobline.server")
STATIC = package_files.files("jobline.server") / "static"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NDJSON_TYPES = ("application/x-ndjson", "application/stream+json")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

Namespace = Annotated[str, Path(description="The namespace: the platforms' workspace.")]
Name = Annotated[str, Path(description="The resource's name.")]
Authorization = Annotated[
    str | None, Header(description="`Bearer <token>`: the caller's Kubernetes token.")
]


class StartRequest(BaseModel, extra="forbid"):
    variables: dict[str, Annotated[str, Field(max_length=VALUE_MAX)]] = Field(
        default_factory=dict, description="Values for the Pipeline's declared variables."
    )
    priority: int = Field(0, description="Higher runs first when queued.")


class Problem(BaseModel):
    status: int
    reason: str
    message: str


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


class Followers:
    """Logs being followed. Each waits on the apiserver for as long as its run lasts, in a
    thread: those threads come from a pool of their own, so followers never starve the
    routes (which share a pool of 40) or the health probe; past `most`, a follow is
    refused (429) rather than queued."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.streaming = 0
        self.threads = anyio.CapacityLimiter(most)

    def admit(self) -> bool:
        if self.streaming >= self.most:
            return False
        self.streaming += 1
        return True

    def release(self, stop: threading.Event) -> None:
        stop.set()  # a thread still reading the log for a reader that has gone ends soon
        self.streaming -= 1


class FollowedLog(StreamingResponse):
    """A followed log: its slot is released however the stream ends, the reader leaving
    included (then the stream is cancelled, and the thread reading is left to end)."""

    def __init__(
        self,
        lines: Iterator[tuple[int, str]],
        encode: Callable[[int, str], bytes],
        followers: Followers,
        stop: threading.Event,
        **kwargs: Any,
    ) -> None:
        super().__init__(self._chunks(lines, encode, followers), **kwargs)
        self.followers, self.stop = followers, stop

    @staticmethod
    async def _chunks(
        lines: Iterator[tuple[int, str]],
        encode: Callable[[int, str], bytes],
        followers: Followers,
    ) -> AsyncIterator[bytes]:
        while True:
            line = await anyio.to_thread.run_sync(
                next, lines, None, abandon_on_cancel=True, limiter=followers.threads
            )
            if line is None:
                return
            yield encode(*line)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.followers.release(self.stop)


def create_app(
    identities: Identities,
    allowed_hosts: frozenset[str] | None,
    max_followers: int,
) -> FastAPI:
    """The server. With `allowed_hosts`, a request naming another Host is refused: a
    server that acts with the kubeconfig's identity must not answer a page that reached
    it through a DNS name rebound to 127.0.0.1. At most `max_followers` logs are followed
    at once."""
    app = FastAPI(
        title="Jobline Jobs API",
        version=__version__,
        description="Pipelines and their runs (jobs), with the caller's Kubernetes identity.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # the reference is docs/jobs-api.md; no page with CDN assets
        redoc_url=None,
    )

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        refusal = _refusal(request, allowed_hosts)
        response = refusal or await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        if request.url.scheme == "https":
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
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

    _routes(app, identities, Followers(max_followers))
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:  # on the event loop: busy threads cannot delay it
        return {"status": "ok"}  # the process serves; each caller's cluster access is theirs

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})

    return app


def _refusal(request: Request, allowed_hosts: frozenset[str] | None) -> Response | None:
    host = request.headers.get("host", "")
    if allowed_hosts is not None and host.rsplit(":", 1)[0].strip("[]") not in allowed_hosts:
        return problem(
            400, "BadRequest", f"host {host!r} is not one this server answers (--allowed-host)"
        )
    if request.method not in WRITE_METHODS:
        return None
    # A cross-site page can post a form or a "simple" request to this server, but never
    # with a JSON body or an Authorization header: those need a CORS preflight, and this
    # server grants none.
    origin = request.headers.get("origin")
    if request.headers.get("sec-fetch-site") == "cross-site" or (
        origin and origin.split("://", 1)[-1] != host
    ):
        return problem(403, "Forbidden", "cross-site writes are refused")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and "authorization" not in request.headers:
        return problem(
            403,
            "Forbidden",
            "writes need 'Content-Type: application/json' or an Authorization header",
        )
    return None


def _routes(app: FastAPI, identities: Identities, followers: Followers) -> None:
    def runs(authorization: str | None, namespace: str) -> Any:
        return identities.runs(authorization, namespace)

    @app.get("/api/v1/session", tags=["session"], responses=ERRORS)
    def session(authorization: Authorization = None) -> dict[str, Any]:
        """How the server acts for this caller: its credential mode, the caller's user name
        (as the apiserver sees it) and a namespace to start in."""
        user = runs(authorization, identities.default_namespace).whoami()
        return {
            "credentials": identities.credentials.value,
            "tokenGiven": bool(authorization),
            "user": user,
            "namespace": identities.default_namespace,
            "version": __version__,
        }

    @app.get("/api/v1/namespaces", tags=["namespaces"], responses=ERRORS)
    def namespaces(authorization: Authorization = None) -> dict[str, Any]:
        """The namespaces the caller may list (403 if none: type one in instead)."""
        return {"items": runs(authorization, "default").namespaces()}

    @app.get(
        "/api/v1/namespaces/{namespace}/pipelines",
        tags=["pipelines"],
        responses=ERRORS,
        response_model=resources.PipelineList,
    )
    def list_pipelines(namespace: Namespace, authorization: Authorization = None) -> dict[str, Any]:
        """Pipelines of the namespace with their status summary, by name."""
        found = runs(authorization, namespace).pipelines()
        return {"items": [resources.pipeline(p) for p in sorted(found, key=_name)]}

    @app.get(
        "/api/v1/namespaces/{namespace}/pipelines/{name}",
        tags=["pipelines"],
        responses=ERRORS,
        response_model=resources.Pipeline,
    )
    def get_pipeline(
        namespace: Namespace, name: Name, authorization: Authorization = None
    ) -> dict[str, Any]:
        """One Pipeline with its status summary."""
        return resources.pipeline(runs(authorization, namespace).pipeline(name))

    def list_jobs(
        authorization: str | None,
        namespace: str,
        pipeline: str | None,
        status: str | None,
        created_after: dt.datetime | None,
        limit: int,
        token: str | None,
    ) -> dict[str, Any]:
        wanted = _phases(status)
        try:
            after = resources.after_token(token) if token else None
        except ValueError as e:
            raise UserError(f"continue: {e}") from None
        client = runs(authorization, namespace)
        if pipeline:
            client.pipeline(pipeline)  # 404 for an unknown Pipeline
        found = client.runs(pipeline)
        if wanted:
            found = [r for r in found if resources.job(r)["status"] in wanted]
        if created_after:
            if created_after.tzinfo is None:
                created_after = created_after.replace(tzinfo=dt.UTC)
            found = [r for r in found if _created(r) > created_after]
        chosen, next_token = resources.page(found, limit, after)
        return {"items": [resources.job(r) for r in chosen], "continue": next_token}

    status_query = Query(
        None, description="Only runs in these statuses (comma-separated: RUNNING,QUEUED)."
    )
    created_query = Query(
        None, alias="createdAfter", description="Only runs created after this time (RFC 3339)."
    )
    limit_query = Query(100, ge=1, le=500, description="Runs per page.")
    continue_query = Query(
        None, alias="continue", description="The `continue` of the previous page."
    )

    @app.get(
        "/api/v1/namespaces/{namespace}/jobs",
        tags=["jobs"],
        responses=ERRORS,
        response_model=resources.JobList,
    )
    def jobs(
        namespace: Namespace,
        pipeline: str | None = Query(None, description="Only the runs of this Pipeline."),
        status: str | None = status_query,
        created_after: dt.datetime | None = created_query,
        limit: int = limit_query,
        token: str | None = continue_query,
        authorization: Authorization = None,
    ) -> dict[str, Any]:
        """Runs of the namespace, newest first, a page at a time."""
        return list_jobs(authorization, namespace, pipeline, status, created_after, limit, token)

    @app.get(
        "/api/v1/namespaces/{namespace}/pipelines/{name}/jobs",
        tags=["jobs"],
        responses=ERRORS,
        response_model=resources.JobList,
    )
    def pipeline_jobs(
        namespace: Namespace,
        name: Name,
        status: str | None = status_query,
        created_after: dt.datetime | None = created_query,
        limit: int = limit_query,
        token: str | None = continue_query,
        authorization: Authorization = None,
    ) -> dict[str, Any]:
        """Runs of one Pipeline, newest first (404 for an unknown Pipeline)."""
        return list_jobs(authorization, namespace, name, status, created_after, limit, token)

    @app.post(
        "/api/v1/namespaces/{namespace}/pipelines/{name}/jobs",
        tags=["jobs"],
        status_code=201,
        response_model=resources.Job,
        responses={
            **ERRORS,
            409: {"model": Problem, "description": "Forbid, and no slot is free"},
            422: {"model": Problem, "description": "Variables the Pipeline does not accept"},
        },
    )
    def start(
        namespace: Namespace,
        name: Name,
        response: Response,
        request: Annotated[StartRequest | None, Body()] = None,
        authorization: Authorization = None,
    ) -> dict[str, Any]:
        """Starts a run of the Pipeline. Its variables are checked first: nothing is
        created for variables the Pipeline does not declare, misses or rejects."""
        body = request or StartRequest()
        created = runs(authorization, namespace).start(name, body.variables, body.priority)
        shown = resources.job(created)
        response.headers["Location"] = shown["_links"]["self"]["href"]
        return shown

    @app.get(
        "/api/v1/namespaces/{namespace}/jobs/{name}",
        tags=["jobs"],
        responses=ERRORS,
        response_model=resources.Job,
    )
    def get_job(
        namespace: Namespace, name: Name, authorization: Authorization = None
    ) -> dict[str, Any]:
        """One run."""
        return resources.job(runs(authorization, namespace).get(name))

    @app.put(
        "/api/v1/namespaces/{namespace}/jobs/{name}/stopped",
        tags=["jobs"],
        status_code=202,
        response_model=resources.Job,
        responses={**ERRORS, 409: {"model": Problem, "description": "The run has ended"}},
    )
    def stop(namespace: Namespace, name: Name, authorization: Authorization = None) -> Any:
        """Asks the operator to stop the run (it goes STOPPING, then STOPPED)."""
        return resources.job(runs(authorization, namespace).stop(name))

    @app.delete(
        "/api/v1/namespaces/{namespace}/jobs/{name}",
        tags=["jobs"],
        status_code=204,
        responses=ERRORS,
    )
    def delete(namespace: Namespace, name: Name, authorization: Authorization = None) -> Response:
        """Deletes the run; its Job and pod go with it (which stops it)."""
        runs(authorization, namespace).delete(name)
        return Response(status_code=204)

    @app.get(
        "/api/v1/namespaces/{namespace}/jobs/{name}/logs",
        tags=["jobs"],
        responses={
            **ERRORS,
            200: {
                "description": "Lines from `sequence`; the header `Jobline-Lines-Gone` "
                "says which were lost with the pod",
                "content": {"text/plain": {}, "application/x-ndjson": {}},
            },
            204: {"description": "No line from `sequence`"},
            429: {"model": Problem, "description": "Too many logs followed at once"},
        },
    )
    async def logs(
        namespace: Namespace,
        name: Name,
        sequence: int = Query(0, ge=0, description="The number of the first line (from 0)."),
        follow: bool = Query(False, description="Stream until the run ends."),
        accept: str | None = Header(None),
        authorization: Authorization = None,
    ) -> Response:
        """The run's log from line `sequence`: from its pod while the pod exists, else from
        the tail kept in its status. As text (default) or NDJSON (`Accept:
        application/x-ndjson`), one `{"sequence", "line"}` per line."""
        media = next((t for t in NDJSON_TYPES if t in (accept or "")), "text/plain")
        encode = _ndjson if media != "text/plain" else _text
        media_type = media if media != "text/plain" else "text/plain; charset=utf-8"
        caller = runs(authorization, namespace)
        if follow:
            return await _follow(caller, name, sequence, encode, media_type)
        run_log = await run_in_threadpool(read_log, caller, name, sequence, False)
        headers = _gone(sequence, run_log)
        first = await run_in_threadpool(next, run_log.lines, None)
        if first is None:
            return Response(status_code=204, headers=headers)
        lines = _chain(first, run_log.lines)
        return StreamingResponse(
            (encode(n, line) for n, line in lines), media_type=media_type, headers=headers
        )

    async def _follow(
        caller: Runs,
        name: str,
        sequence: int,
        encode: Callable[[int, str], bytes],
        media_type: str,
    ) -> Response:
        if not followers.admit():
            return problem(
                429,
                "TooManyRequests",
                f"this server follows at most {followers.most} logs at once "
                "(jobline server --max-followers); read without follow=true, or try again "
                "later",
                {"Retry-After": "10"},
            )
        stop = threading.Event()
        try:
            run_log = await anyio.to_thread.run_sync(
                read_log, caller, name, sequence, True, stop, limiter=followers.threads
            )
        except BaseException:
            followers.release(stop)
            raise
        return FollowedLog(
            run_log.lines,
            encode,
            followers,
            stop,
            media_type=media_type,
            headers=_gone(sequence, run_log),
        )


def _gone(sequence: int, run_log: RunLog) -> dict[str, str]:
    """The header that says which lines from `sequence` are gone with the pod."""
    if run_log.gone_before is None:
        return {}
    return {"Jobline-Lines-Gone": f"{sequence}-{run_log.gone_before - 1}"}


def _chain(first: tuple[int, str], rest: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    yield first
    yield from rest


def _text(_: int, line: str) -> bytes:
    return f"{line}\n".encode()


def _ndjson(number: int, line: str) -> bytes:
    return (log_line_json(number, line) + "\n").encode()


def _name(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def _created(run: dict[str, Any]) -> dt.datetime:
    created = parse_time(run["metadata"]["creationTimestamp"])
    assert created is not None  # the apiserver sets it on every object
    return created


def _phases(given: str | None) -> set[str]:
    wanted = {p.strip().upper() for p in (given or "").split(",") if p.strip()}
    unknown = wanted - {p.value for p in Phase}
    if unknown:
        allowed = ", ".join(p.value for p in Phase)
        raise UserError(f"status: {', '.join(sorted(unknown))} is not one of {allowed}")
    return wanted
