"""What every answer of the server carries (security headers) and what it refuses before
any route runs: a Host it does not serve, and writes a page elsewhere could make."""

from __future__ import annotations

from fastapi import Request, Response

from jobline.server.problems import problem

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
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


def secure(request: Request, response: Response) -> None:
    response.headers.update(SECURITY_HEADERS)
    if request.url.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
    if request.url.scheme == "https":
        response.headers["Strict-Transport-Security"] = "max-age=31536000"


def refusal(request: Request, allowed_hosts: frozenset[str] | None) -> Response | None:
    """The answer to a request refused before any route, else None. With `allowed_hosts`,
    a request naming another Host is refused: a server that acts with the kubeconfig's
    identity must not answer a page that reached it through a DNS name rebound to
    127.0.0.1."""
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
