"""A run's log from any line, as text or NDJSON, read once or followed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import anyio
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from jobline.archive import Archive
from jobline.client.run_logs import RunLog, log_line_json, read_log
from jobline.client.runs import Runs
from jobline.server.followers import FollowedLog, Followers
from jobline.server.parameters import Caller, Name
from jobline.server.problems import ERRORS, Problem, problem

router = APIRouter(prefix="/api/v1/namespaces/{namespace}", tags=["jobs"], responses=ERRORS)
NDJSON_TYPES = ("application/x-ndjson", "application/stream+json")


@router.get(
    "/jobs/{name}/logs",
    responses={
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
    request: Request,
    name: Name,
    caller: Caller,
    sequence: int = Query(0, ge=0, description="The number of the first line (from 0)."),
    follow: bool = Query(False, description="Stream until the run ends."),
    accept: str | None = Header(None),
) -> Response:
    """The run's log from line `sequence`: from its pod while the pod exists; once it is
    gone, from the log archive (for callers who may get pods/log) and the tail kept in
    its status. As text (default) or NDJSON (`Accept: application/x-ndjson`), one
    `{"sequence", "line"}` per line."""
    media = next((t for t in NDJSON_TYPES if t in (accept or "")), "text/plain")
    encode = _ndjson if media != "text/plain" else _text
    media_type = media if media != "text/plain" else "text/plain; charset=utf-8"
    if follow:
        followers: Followers = request.app.state.followers
        return await _follow(
            followers, caller, name, sequence, encode, media_type, request.app.state.archive
        )
    archive = request.app.state.archive
    run_log = await run_in_threadpool(read_log, caller, name, sequence, False, None, archive)
    headers = _gone(run_log)
    first = await run_in_threadpool(next, run_log.lines, None)
    if first is None:
        return Response(status_code=204, headers=headers)
    lines = _chain(first, run_log.lines)
    return StreamingResponse(
        (encode(n, line) for n, line in lines), media_type=media_type, headers=headers
    )


async def _follow(
    followers: Followers,
    caller: Runs,
    name: str,
    sequence: int,
    encode: Callable[[int, str], bytes],
    media_type: str,
    archive: Archive | None,
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
            read_log, caller, name, sequence, True, stop, archive, limiter=followers.threads
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
        headers=_gone(run_log),
    )


def _gone(run_log: RunLog) -> dict[str, str]:
    """The header that says which lines asked for are gone with the pod."""
    if run_log.gone is None:
        return {}
    return {"Jobline-Lines-Gone": f"{run_log.gone[0]}-{run_log.gone[1] - 1}"}


def _chain(first: tuple[int, str], rest: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    yield first
    yield from rest


def _text(_: int, line: str) -> bytes:
    return f"{line}\n".encode()


def _ndjson(number: int, line: str) -> bytes:
    return (log_line_json(number, line) + "\n").encode()
