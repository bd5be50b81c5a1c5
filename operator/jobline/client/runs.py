"""The client of the CLI and the server: Pipelines and runs of one namespace, as the
`jobline` command and the Jobs API ask for them (reading a run's log is `run_logs`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError
from urllib3.exceptions import HTTPError, ReadTimeoutError

from jobline import __version__
from jobline.core.admission import Candidate, candidate_of, forbidden_by, unknown_jobs
from jobline.core.jobs import build_run, short_name
from jobline.core.variables import InvalidVariables, resolve_variables
from jobline.core.workload import JOB_KIND, RUN_KIND, OwnerKey, controller_key, owner_key
from jobline.kube import config as kube_config
from jobline.kube.request import call, status_field
from jobline.models import API_GROUP, API_VERSION, LABEL_PIPELINE, TERMINAL_PHASES, Variable

Obj = dict[str, Any]
PAGE_SIZE = 500
TIMEOUT = (10, 60)
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@dataclass(frozen=True)
class Row:
    """A run as a list shows it: its metadata and the cells of its printer columns."""

    metadata: Obj
    cells: dict[str, Any]


class UserError(Exception):
    """A mistake or a condition the user can act on: one line on stderr and exit status 1
    for the CLI; for the Jobs API, the HTTP status and reason to answer with."""

    def __init__(self, message: str, status: int = 400, reason: str = "BadRequest") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def connect(kubeconfig: str | None, context: str | None) -> tuple[client.ApiClient, str]:
    """An API client and the context's namespace (default: "default")."""
    try:
        configuration, namespace = kube_config.load(kubeconfig, context)
    except kube_config.ConfigError as e:
        raise UserError(str(e)) from None
    return kube_config.api_client(configuration, f"jobline/{__version__}"), namespace


def explain(error: ApiException, what: str) -> UserError:
    status, reason = int(error.status or 500), status_field(error, "reason") or str(error.reason)
    message = status_field(error, "message") or str(error.reason)
    if status == 404:
        return UserError(f"{what} not found", status, "NotFound")
    if status in (401, 403):
        return UserError(f"permission denied for {what}: {message}", status, reason)
    if status == 422:
        return UserError(f"the cluster rejected {what}: {message}", status, reason)
    return UserError(f"{what}: {status} {message}", status, reason)


def check_variables(pipeline: Obj, variables: dict[str, str]) -> None:
    """Refuses variables the Pipeline does not declare, misses or rejects (422): the
    operator would end the run at once."""
    name, spec = pipeline["metadata"]["name"], pipeline.get("spec") or {}
    try:
        declared = [Variable.model_validate(v) for v in spec.get("variables") or []]
    except ValidationError:
        declared = None  # the operator ends the run with InvalidTemplate, naming the field
    if declared is not None:
        try:
            resolve_variables(declared, variables)
        except InvalidVariables as e:
            raise UserError(
                f"invalid variables for Pipeline {name!r}: {e}", 422, "InvalidVariables"
            ) from None


def check_slots(pipeline: Obj, runs: list[Obj], jobs: list[Obj] | None, pods: list[Obj]) -> None:
    """Refuses a run of a Forbid Pipeline whose slots are all taken (409), as admission
    counts slots from the Pipeline's runs, Jobs and pods. When the caller may not read
    Jobs and pods (`jobs` is None), a run that has a Job and has not ended holds its slot,
    as its status says. The operator still decides: a slot may be taken between this
    check and the run."""
    name, spec = pipeline["metadata"]["name"], pipeline.get("spec") or {}
    if spec.get("concurrencyPolicy") != "Forbid":
        return
    if jobs is None:
        candidates = [
            candidate_of(run, None, [], admitted=bool((run.get("status") or {}).get("jobName")))
            for run in runs
        ]
        unknown = 0
    else:
        candidates, unknown = _candidates(runs, jobs, pods)
    slots = int(spec.get("maxConcurrentRuns", 1))
    holding = forbidden_by(slots, candidates, unknown)
    if holding is not None:
        raise UserError(
            f"Pipeline {name!r} allows {slots} run(s) at once and its concurrencyPolicy is "
            f"Forbid; running now: {', '.join(holding) or 'runs being deleted'}",
            409,
            "Conflict",
        )


def _candidates(runs: list[Obj], jobs: list[Obj], pods: list[Obj]) -> tuple[list[Candidate], int]:
    """The runs as admission sees them, and how many Jobs hold a slot with no run listed
    (`unknown_jobs`: counted as the operator counts them)."""
    job_of = {controller_key(j): j for j in jobs}
    pods_of: dict[OwnerKey | None, list[Obj]] = {}
    for pod in pods:
        pods_of.setdefault(controller_key(pod), []).append(pod)
    listed = {owner_key(run, RUN_KIND) for run in runs}
    candidates = []
    for run in runs:
        job = job_of.get(owner_key(run, RUN_KIND))
        pods_of_job = pods_of.get(owner_key(job, JOB_KIND), []) if job else []
        candidates.append(candidate_of(run, job, pods_of_job, admitted=False))
    return candidates, unknown_jobs(jobs, lambda job: controller_key(job) in listed)


class Runs:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("_request_timeout", TIMEOUT)
        try:
            return fn(*args, **kwargs)
        except ApiException as e:
            raise explain(e, what) from None
        except (OSError, HTTPError) as e:  # connection refused, DNS, TLS, timeouts
            raise self._unreachable(e) from None

    def _unreachable(self, error: Exception) -> UserError:
        reason = getattr(error, "reason", None) or error
        return UserError(
            f"cannot reach the cluster at {self.api.configuration.host}: {reason}",
            503,
            "ServiceUnavailable",
        )

    def pipeline(self, name: str) -> Obj:
        what = f"Pipeline {name!r} in namespace {self.namespace!r}"
        found: Obj = self._call(
            what,
            self.custom.get_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            self.namespace,
            "pipelines",
            name,
        )
        return found

    def start(self, pipeline: str, variables: dict[str, str], priority: int) -> Obj:
        # A clear error for an unknown pipeline, for variables it does not accept, and for
        # a Forbid pipeline without a free slot, before creating anything: a typo never
        # leaves an ERROR run behind.
        found = self.pipeline(pipeline)
        check_variables(found, variables)
        if (found.get("spec") or {}).get("concurrencyPolicy") == "Forbid":
            self._check_slots(found)
        # The label and owner, which the operator would add otherwise in one more write.
        body = build_run(
            pipeline,
            found["metadata"]["uid"],
            {"generateName": f"{pipeline}-"},
            {"variables": variables, "priority": priority},
        )
        created: Obj = self._call(
            f"a run of {pipeline!r}",
            self.custom.create_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            self.namespace,
            "pipelinejobs",
            body,
        )
        return created

    def _check_slots(self, pipeline: Obj) -> None:
        """`check_slots` on the Pipeline's runs, Jobs and pods (on its runs alone when the
        caller may not list Jobs or pods)."""
        name = pipeline["metadata"]["name"]
        selector = [("labelSelector", f"{LABEL_PIPELINE}={short_name(name)}")]
        try:
            jobs, pods = (
                self._request(
                    "GET", f"{prefix}/namespaces/{self.namespace}/{plural}", selector, None,
                    "application/json", TIMEOUT,
                )["items"]
                for prefix, plural in (("/apis/batch/v1", "jobs"), ("/api/v1", "pods"))
            )  # fmt: skip
        except ApiException as e:
            if e.status not in (401, 403):
                raise explain(e, f"the Jobs of Pipeline {name!r}") from None
            jobs, pods = None, []
        check_slots(pipeline, self.runs(name), jobs, pods)

    def pipelines(self) -> list[Obj]:
        return self._list_all("pipelines", f"Pipelines in namespace {self.namespace!r}", None)

    def runs(self, pipeline: str | None) -> list[Obj]:
        """Runs of the namespace (of one Pipeline), whole objects, in the apiserver's order."""
        selector = f"{LABEL_PIPELINE}={short_name(pipeline)}" if pipeline else None
        found = self._list_all("pipelinejobs", f"runs in namespace {self.namespace!r}", selector)
        if pipeline:  # the label holds a shortened name for long ones
            found = [r for r in found if r["spec"]["pipelineRef"]["name"] == pipeline]
        return found

    def _list_all(self, plural: str, what: str, selector: str | None) -> list[Obj]:
        items: list[Obj] = []
        token = None
        while True:
            page = self._call(
                what,
                self.custom.list_namespaced_custom_object,
                API_GROUP,
                API_VERSION,
                self.namespace,
                plural,
                limit=PAGE_SIZE,
                label_selector=selector,
                _continue=token,
            )
            items += page.get("items", [])
            token = page.get("metadata", {}).get("continue")
            if not token:
                return items

    def namespaces(self) -> list[str]:
        found = self._call("namespaces", self.core.list_namespace, _preload_content=False)
        return sorted(n["metadata"]["name"] for n in json.loads(found.data)["items"])

    def get(self, name: str) -> Obj:
        found: Obj = self._call(
            f"run {name!r} in namespace {self.namespace!r}",
            self.custom.get_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            self.namespace,
            "pipelinejobs",
            name,
        )
        return found

    def list(self, all_namespaces: bool, pipeline: str | None) -> list[Row]:
        """Runs, newest first, as the server's table of their printer columns: the
        apiserver selects by Pipeline label and pages, and never sends the log tails."""
        path = f"/apis/{API_GROUP}/{API_VERSION}/pipelinejobs"
        where = "runs"
        if not all_namespaces:
            path = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{self.namespace}/pipelinejobs"
            where = f"runs in namespace {self.namespace!r}"
        query = [("limit", str(PAGE_SIZE))]
        if pipeline:
            query.append(("labelSelector", f"{LABEL_PIPELINE}={short_name(pipeline)}"))
        rows: list[Row] = []
        token = None
        while True:
            page = self._call(
                where, self._table, path, [*query, *([("continue", token)] if token else [])]
            )
            columns = [c["name"].lower() for c in page.get("columnDefinitions", [])]
            for row in page.get("rows", []):
                cells = dict(zip(columns, row["cells"], strict=False))
                rows.append(Row(row["object"]["metadata"], cells))
            token = page.get("metadata", {}).get("continue")
            if not token:
                break
        return sorted(rows, key=lambda r: r.metadata["creationTimestamp"], reverse=True)

    def _table(self, path: str, query: Sequence[tuple[str, str]], _request_timeout: Any) -> Obj:
        return self._request("GET", path, query, None, TABLE, _request_timeout)

    def whoami(self) -> str:
        """The caller's user name, as the apiserver authenticates it."""
        review = self._call(
            "who you are",
            self._request,
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            [],
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            "application/json",
        )
        return str(review["status"]["userInfo"].get("username", ""))

    def may(self, verb: str, plural: str, group: str = API_GROUP, subresource: str = "") -> bool:
        """Whether the caller may `verb` `plural` (Jobline's, unless `group` says) in this
        namespace, as the apiserver's authorizer answers it (a SelfSubjectAccessReview)."""
        attributes = {"namespace": self.namespace, "verb": verb, "group": group}
        if subresource:
            attributes["subresource"] = subresource
        review = self._call(
            "your permissions",
            self._request,
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            [],
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {**attributes, "resource": plural}},
            },
            "application/json",
        )
        return bool((review.get("status") or {}).get("allowed"))

    def _request(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        body: Obj | None,
        accept: str,
        _request_timeout: Any,
    ) -> Obj:
        data = call(
            self.api, method, path, query=list(query), body=body, accept=accept,
            timeout=_request_timeout,
        )  # fmt: skip
        answer: Obj = json.loads(data)
        return answer

    def stop(self, name: str) -> Obj:
        """Asks the operator to stop the run; a run that has ended cannot be stopped."""
        run = self.get(name)
        phase = (run.get("status") or {}).get("phase")
        if phase in TERMINAL_PHASES:
            raise UserError(f"run {name!r} has already ended ({phase})", 409, "Conflict")
        stopped: Obj = self._call(
            f"run {name!r}",
            self.custom.patch_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            self.namespace,
            "pipelinejobs",
            name,
            {"spec": {"stopped": True}},
        )
        return stopped

    def delete(self, name: str) -> None:
        self._call(
            f"run {name!r} in namespace {self.namespace!r}",
            self.custom.delete_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            self.namespace,
            "pipelinejobs",
            name,
        )

    def watch_run(self, name: str, timeout: int) -> Iterator[Obj]:
        """The run now and at each change, until `timeout` seconds pass."""
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            self.custom.list_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            self.namespace,
            "pipelinejobs",
            field_selector=f"metadata.name={name}",
            timeout_seconds=timeout,
            _request_timeout=(10, timeout + 30),
        )
        try:
            for event in stream:
                yield event["raw_object"]
        except ApiException as e:
            raise explain(e, f"run {name!r}") from None

    def pod_log(
        self, pod: str, container: str | None, follow: bool, since_time: str | None = None
    ) -> Any:
        """The pod's log as a stream of bytes, each line prefixed by its time, from
        `since_time` (whole seconds) on; None when the pod is gone. A followed log that
        sends nothing within the read timeout is an empty stream: the reader checks on the
        run, then asks again from where it was."""
        query = [("timestamps", "true")]
        query += [("container", container)] if container else []
        query += [("follow", "true")] if follow else []
        query += [("sinceTime", since_time)] if since_time else []  # the client has no such
        try:
            return call(
                self.api,
                "GET",
                "/api/v1/namespaces/{namespace}/pods/{name}/log",
                params={"namespace": self.namespace, "name": pod},
                query=query,
                accept="*/*",
                # A quiet follow stream times out now and then, so the caller can check
                # whether the run has ended.
                timeout=(10, 3) if follow else 60,
                stream=True,
            )
        except ApiException as e:
            if e.status in (400, 404):
                return None
            raise explain(e, f"the log of pod {pod!r}") from None
        except (OSError, HTTPError) as e:
            timed_out = isinstance(e, ReadTimeoutError) or isinstance(
                getattr(e, "reason", None), ReadTimeoutError
            )
            if follow and timed_out:
                return _NoLinesYet()
            raise self._unreachable(e) from None


class _NoLinesYet:
    """A followed log that has sent nothing yet, as a stream with nothing in it."""

    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        return iter(())

    def release_conn(self) -> None:
        """No connection is held."""
