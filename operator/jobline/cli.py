"""The `jobline` command (also installed as `kubectl-jobline`, so `kubectl jobline` works)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import yaml

from jobline import __version__
from jobline.core.clock import parse_time
from jobline.models import TERMINAL_PHASES

F = TypeVar("F", bound=Callable[..., Any])


class Context:
    def __init__(self, namespace: str | None, kubeconfig: str | None, context: str | None) -> None:
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self.context = context

    def runs(self) -> Any:
        from jobline.client.runs import Runs, connect

        api, default_namespace = connect(self.kubeconfig, self.context)
        return Runs(api, self.namespace or default_namespace)


def user_errors(fn: F) -> F:
    """Turns a UserError into one line on stderr and exit status 1, never a traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from jobline.client.runs import UserError

        try:
            return fn(*args, **kwargs)
        except UserError as e:
            raise click.ClickException(str(e)) from None

    return wrapper  # type: ignore[return-value]


def log_archive() -> Any:
    """The log archive the environment configures (JOBLINE_ARCHIVE_*, as the operator's),
    for logs whose pods are gone; None without one."""
    from jobline.archive import Archive, ArchiveError

    try:
        return Archive.from_env()
    except ArchiveError as e:
        raise click.ClickException(str(e)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="jobline")
@click.option("-n", "--namespace", help="Namespace of the runs (default: the context's).")
@click.option("--kubeconfig", type=click.Path(), help="Path to the kubeconfig file.")
@click.option("--context", "kube_context", help="The kubeconfig context to use.")
@click.pass_context
def main(
    ctx: click.Context, namespace: str | None, kubeconfig: str | None, kube_context: str | None
) -> None:
    """Run batch data pipelines on Kubernetes.

    Pipelines say what to run and when; each run is a PipelineJob that
    Jobline turns into a Kubernetes Job.
    """
    ctx.obj = Context(namespace, kubeconfig, kube_context)


@main.command()
@click.option(
    "--namespace",
    "-n",
    "namespaces",
    multiple=True,
    help="Watch only this namespace (repeatable). Default: all namespaces.",
)
@click.option("--verbose", "-v", is_flag=True, help="Log debug messages too.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Human-readable lines, or one JSON object per line.",
)
@click.option(
    "--metrics-address",
    default="127.0.0.1:9090",
    show_default=True,
    help="Where to serve Prometheus metrics (/metrics); empty: nowhere.",
)
@click.option(
    "--health-address",
    default="127.0.0.1:8081",
    show_default=True,
    help="Where to serve the probes: /healthz (live: workers and watches make progress) "
    "and /readyz (ready: caches synced, or standing by); empty: nowhere.",
)
@click.option(
    "--leader-elect/--no-leader-elect",
    default=False,
    show_default=True,
    help="Act only while holding the jobline-operator Lease, so several replicas can run "
    "and one acts at a time (the chart turns this on).",
)
@click.option(
    "--leader-election-namespace",
    envvar="POD_NAMESPACE",
    default="default",
    show_default=True,
    help="Namespace of the Lease, and whose UID names this installation in the log archive "
    "(default: $POD_NAMESPACE, else default).",
)
def operator(
    namespaces: tuple[str, ...],
    verbose: bool,
    log_format: str,
    metrics_address: str,
    health_address: str,
    leader_elect: bool,
    leader_election_namespace: str,
) -> None:
    """Run the Jobline operator against the current kubeconfig's cluster."""
    import kopf
    from kubernetes.config import ConfigException
    from prometheus_client import start_http_server

    from jobline.controller import handlers  # registers the handlers

    try:
        handlers.kube_api_client().close()  # type: ignore[no-untyped-call]
    except ConfigException as e:
        raise click.ClickException(f"no cluster to run against: {e}") from None
    kopf.configure(
        verbose=verbose,
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL,
        log_prefix=log_format == "text",
    )
    for noisy in ("kubernetes", "urllib3", "aiohttp", "kopf.objects"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if metrics_address:
        host, _, port = metrics_address.rpartition(":")
        start_http_server(int(port), addr=host or "0.0.0.0")
    # Named here, not by kopf: kopf's own default asks the passwd database for the user,
    # which has no entry for an arbitrary UID (OpenShift's, a chart's runAsUser).
    identity = os.environ.get("POD_NAME") or f"{os.uname().nodename}-{os.getpid()}"
    kopf.run(
        standalone=True,  # no kopf peering: the Lease elects the replica that acts
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        # kopf's Identity is a NewType of str that kopf does not export.
        identity=identity,  # type: ignore[arg-type]
        memo=kopf.Memo(
            namespaces=list(namespaces),
            health_address=health_address,
            leader_election_namespace=leader_election_namespace if leader_elect else None,
            # Whose UID names this installation in the log archive.
            own_namespace=leader_election_namespace,
            identity=identity,
        ),
    )


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@main.command()
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0: every interface, as in a pod).",
)
@click.option("--port", type=int, default=8080, show_default=True, help="Port to listen on.")
@click.option(
    "--credentials",
    type=click.Choice(["token", "kubeconfig"]),
    default="token",
    show_default=True,
    help="token: every request must bring the caller's Kubernetes token "
    "(Authorization: Bearer ...), and the server acts only with it. kubeconfig: requests "
    "without a token act as the kubeconfig's user; for one person on their own machine.",
)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="TLS certificate.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Its private key.")
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="With --credentials kubeconfig: a host name the server answers besides localhost "
    "(repeatable); any other Host header is refused.",
)
@click.option(
    "--max-followers",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Logs followed at once (follow=true), each holding a thread and a connection to "
    "the apiserver; more are refused with 429.",
)
@click.option(
    "--run-index/--no-run-index",
    default=True,
    show_default=True,
    help="Keep one read-only watch of all runs (the server's own identity needs list and "
    "watch on pipelinejobs) and answer lists from it, each caller's right to list checked "
    "with the apiserver; without it, every list reads the namespace's runs whole.",
)
@click.option(
    "--index-namespace",
    "index_namespaces",
    multiple=True,
    help="Watch runs for the index only in this namespace (repeatable; default: all). "
    "Lists elsewhere read the namespace's runs whole.",
)
@click.pass_obj
@user_errors
def server(
    obj: Context,
    address: str,
    port: int,
    credentials: str,
    tls_cert: str | None,
    tls_key: str | None,
    allowed_hosts: tuple[str, ...],
    max_followers: int,
    run_index: bool,
    index_namespaces: tuple[str, ...],
) -> None:
    """Serve the Jobs API (/api/v1, OpenAPI at /api/v1/openapi.json) and the dashboard (/).

    Every call to the cluster is made with the caller's identity, so its RBAC decides what
    each caller may see and do. The server's own power, with --run-index, is to read runs
    for lists, which it shows only to callers who may list them.
    """
    import uvicorn

    from jobline.server.app import create_app
    from jobline.server.identity import Credentials, Identities
    from jobline.server.run_index import RunIndex

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    mode = Credentials(credentials)
    if mode == Credentials.KUBECONFIG and address not in LOOPBACK:
        click.echo(
            f"warning: --credentials kubeconfig on {address}: whoever reaches this address "
            "acts as the kubeconfig's user",
            err=True,
        )
    identities = Identities(mode, obj.kubeconfig, obj.context)
    hosts = LOOPBACK | set(allowed_hosts) if mode == Credentials.KUBECONFIG else None
    index = RunIndex(
        identities.own(obj.kubeconfig, obj.context) if run_index else None,
        list(index_namespaces) or None,
    )
    app = create_app(
        identities,
        frozenset(hosts) if hosts is not None else None,
        max_followers,
        index,
        log_archive(),
    )
    scheme = "https" if tls_cert else "http"
    shown = f"[{address}]" if ":" in address else address
    click.echo(f"Jobline dashboard and Jobs API on {scheme}://{shown}:{port}/", err=True)
    uvicorn.run(
        app,
        host=address,
        port=port,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        log_level="info",
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,  # followed logs would hold a stop up until their runs end
    )


@main.command()
def crds() -> None:
    """Print the CustomResourceDefinitions (pipe them to `kubectl apply -f -`)."""
    from jobline.crds import render_all

    click.echo(render_all(), nl=False)


def parse_vars(values: tuple[str, ...]) -> dict[str, str]:
    variables = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--var")
        variables[name] = value
    return variables


@main.command()
@click.argument("pipeline")
@click.option(
    "--var", "variables", multiple=True, metavar="NAME=VALUE", help="A variable (repeatable)."
)
@click.option(
    "--priority", type=int, default=0, show_default=True, help="Higher runs first when queued."
)
@click.option("--wait", is_flag=True, help="Wait for the run to end; exit with its exit code.")
@click.option("--follow", "-f", is_flag=True, help="Stream the run's log while it runs.")
@click.pass_obj
@user_errors
def start(
    obj: Context, pipeline: str, variables: tuple[str, ...], priority: int, wait: bool, follow: bool
) -> None:
    """Start a run of PIPELINE and print its name."""
    parsed = parse_vars(variables)
    runs = obj.runs()
    run = runs.start(pipeline, parsed, priority)
    name = run["metadata"]["name"]
    click.echo(name)
    if follow:
        stream_logs(runs, name, sequence=0, follow=True, ndjson=False)
    if wait or follow:
        final = wait_for_end(runs, name)
        status = final.get("status", {})
        click.echo(f"{name} {status.get('phase')}: {status.get('message', '')}", err=True)
        sys.exit(exit_status(status))


def wait_for_end(runs: Any, name: str) -> dict[str, Any]:
    while True:
        for run in runs.watch_run(name, timeout=300):
            if (run.get("status") or {}).get("phase") in TERMINAL_PHASES:
                return dict(run)


def exit_status(status: dict[str, Any]) -> int:
    """The run's exit code; 1 when it failed or stopped without one."""
    if status.get("exitCode") is not None:
        return int(status["exitCode"])
    return 0 if status.get("phase") == "COMPLETE" else 1


def age(stamp: str | None, now: dt.datetime) -> str:
    if not stamp:
        return ""
    seconds = int((now - (parse_time(stamp) or now)).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


RUN_COLUMNS = ["NAME", "PIPELINE", "STATUS", "REASON", "EXIT", "STARTED", "DURATION", "AGE"]


def run_row(run: dict[str, Any], now: dt.datetime, with_namespace: bool) -> list[str]:
    status = run.get("status") or {}
    exit_code = status.get("exitCode")
    row = [
        run["metadata"]["name"],
        run["spec"]["pipelineRef"]["name"],
        status.get("phase", ""),
        status.get("reason") or "",
        "" if exit_code is None else str(exit_code),
        age(status.get("startTime"), now),
        status.get("duration") or "",
        age(run["metadata"]["creationTimestamp"], now),
    ]
    return [run["metadata"]["namespace"], *row] if with_namespace else row


@main.command("list")
@click.option("--pipeline", "-p", help="Only the runs of this pipeline.")
@click.option("-A", "--all-namespaces", is_flag=True, help="Runs of every namespace.")
@click.pass_obj
@user_errors
def list_runs(obj: Context, pipeline: str | None, all_namespaces: bool) -> None:
    """List runs, newest first."""
    rows = obj.runs().list(all_namespaces, pipeline)
    if not rows:
        click.echo("No runs found.", err=True)
        return
    header = RUN_COLUMNS
    if all_namespaces:
        header = ["NAMESPACE", *header]
    now = dt.datetime.now(dt.UTC)
    click.echo(table([header] + [list_row(r, now, all_namespaces) for r in rows]))


def list_row(row: Any, now: dt.datetime, with_namespace: bool) -> list[str]:
    """A row of `list` from the server's table of the run's printer columns."""
    cells = row.cells
    exit_code = cells.get("exit")
    cells_out = [
        row.metadata["name"],
        str(cells.get("pipeline") or ""),
        str(cells.get("status") or ""),
        str(cells.get("reason") or ""),
        "" if exit_code is None else str(exit_code),
        str(cells.get("started") or ""),
        str(cells.get("duration") or ""),
        age(row.metadata["creationTimestamp"], now),
    ]
    return [row.metadata["namespace"], *cells_out] if with_namespace else cells_out


@main.command()
@click.argument("run")
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
@click.option(
    "--show-managed-fields",
    is_flag=True,
    help="Keep metadata.managedFields in -o json|yaml (hidden by default, as kubectl does).",
)
@click.pass_obj
@user_errors
def get(obj: Context, run: str, output: str, show_managed_fields: bool) -> None:
    """Show one run."""
    found = obj.runs().get(run)
    if not show_managed_fields:
        found["metadata"].pop("managedFields", None)
    if output == "json":
        click.echo(json.dumps(found, indent=2))
    elif output == "yaml":
        click.echo(yaml.safe_dump(found, sort_keys=False), nl=False)
    else:
        header = RUN_COLUMNS
        now = dt.datetime.now(dt.UTC)
        click.echo(table([header, run_row(found, now, False)]))
        message = (found.get("status") or {}).get("message")
        if message:
            click.echo(f"\n{(found.get('status') or {}).get('reason')}: {message}")


@main.command()
@click.argument("run")
@click.option(
    "--from",
    "--sequence",
    "sequence",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="First line number to show (from 0).",
)
@click.option("--follow", "-f", is_flag=True, help="Keep streaming until the run ends.")
@click.option("-o", "--output", type=click.Choice(["text", "ndjson"]), default="text")
@click.option(
    "--server",
    envvar="JOBLINE_SERVER",
    help="The Jobs API server (its URL) to read archived lines through, when the log "
    "store's settings are not in the environment ($JOBLINE_SERVER; `make run` prints it).",
)
@click.pass_obj
@user_errors
def logs(
    obj: Context, run: str, sequence: int, follow: bool, output: str, server: str | None
) -> None:
    """Print a run's log from line --from: from its pod while the pod exists; once it is
    gone, from the log archive and the tail kept in the run's status.

    The archive is read through the Jobs API server (--server), or directly with its
    settings in the environment, as the operator has them (JOBLINE_ARCHIVE_ENDPOINT,
    JOBLINE_ARCHIVE_BUCKET, the store's keys in AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY); either way it needs permission to get pods/log."""
    stream_logs(obj.runs(), run, sequence, follow, output == "ndjson", server)


def emit(number: int, line: str, ndjson: bool) -> None:
    if ndjson:
        from jobline.client.run_logs import log_line_json

        click.echo(log_line_json(number, line))
    else:
        click.echo(line)


def stream_logs(
    runs: Any, name: str, sequence: int, follow: bool, ndjson: bool, server: str | None = None
) -> None:
    from jobline.client.run_logs import read_log, through_server

    log = read_log(runs, name, sequence, follow, archive=log_archive())
    lines = log.lines
    if log.archived_at is not None and log.gone is not None and server:
        lines = through_server(server, runs, name, sequence)  # archived lines, then the tail
    elif log.archived_at is not None and log.gone is not None:
        click.echo(
            f"lines {log.gone[0]}-{log.gone[1] - 1} are in the log archive at "
            f"{log.archived_at}; give --server (the Jobs API server), or set "
            "JOBLINE_ARCHIVE_BUCKET with the endpoint and keys, to read them here. Showing "
            f"the kept tail from line {log.gone[1]}",
            err=True,
        )
    elif log.gone is not None:
        click.echo(
            f"lines {log.gone[0]}-{log.gone[1] - 1} are gone with the pod; showing what is "
            f"kept from line {log.gone[1]}",
            err=True,
        )
    shown = 0
    for number, line in lines:
        emit(number, line, ndjson)
        shown += 1
    if not shown and sequence and log.total is not None and sequence >= log.total:
        last = f" (lines 0-{log.total - 1})" if log.total else ""
        click.echo(
            f"run {name}'s log has {log.total} lines{last}: none from line {sequence}", err=True
        )


@main.command()
@click.argument("run")
@click.pass_obj
@user_errors
def stop(obj: Context, run: str) -> None:
    """Stop a run (it ends STOPPED; its log tail is kept)."""
    obj.runs().stop(run)
    click.echo(f"{run} stopping")


@main.command()
@click.argument("run")
@click.pass_obj
@user_errors
def delete(obj: Context, run: str) -> None:
    """Delete a run, stopping it first if it runs (its Job and pods go too)."""
    obj.runs().delete(run)
    click.echo(f"{run} deleted")


if __name__ == "__main__":
    main()
