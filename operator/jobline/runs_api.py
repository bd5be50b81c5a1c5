"""What the `jobline` command asks of the cluster: Pipelines and runs of one namespace."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from jobline.core.jobs import short_name
from jobline.models import API_GROUP, API_VERSION, LABEL_PIPELINE

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
    """A mistake or a condition the user can act on: printed as one line, exit status 1."""


def connect(kubeconfig: str | None, context: str | None) -> tuple[client.ApiClient, str]:
    """An API client and the context's namespace (default: "default")."""
    try:
        contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        chosen = next((c for c in contexts if c["name"] == context), None) if context else current
        if context and chosen is None:
            raise UserError(f"context {context!r} is not in the kubeconfig")
        namespace = (chosen or {}).get("context", {}).get("namespace") or "default"
        api = config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
    except config.ConfigException as e:
        raise UserError(f"no usable kubeconfig: {e}") from None
    return api, namespace


def explain(error: ApiException, what: str) -> UserError:
    if error.status == 404:
        return UserError(f"{what} not found")
    if error.status in (401, 403):
        return UserError(f"permission denied for {what}: {_message(error)}")
    if error.status == 422:
        return UserError(f"the cluster rejected {what}: {_message(error)}")
    return UserError(f"{what}: {error.status} {_message(error)}")


def _message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "")["message"])
    except (ValueError, KeyError, TypeError):
        return str(error.reason)


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
            host = self.api.configuration.host
            reason = getattr(e, "reason", None) or e
            raise UserError(f"cannot reach the cluster at {host}: {reason}") from None

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
        # A clear error for an unknown pipeline, before creating anything.
        found = self.pipeline(pipeline)
        body = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "PipelineJob",
            "metadata": {
                "generateName": f"{pipeline}-",
                # What the operator would add otherwise, in one more write: the label that
                # `list --pipeline` selects on, and the owner that deletes runs with it.
                "labels": {LABEL_PIPELINE: short_name(pipeline)},
                "ownerReferences": [
                    {
                        "apiVersion": f"{API_GROUP}/{API_VERSION}",
                        "kind": "Pipeline",
                        "name": pipeline,
                        "uid": found["metadata"]["uid"],
                    }
                ],
            },
            "spec": {
                "pipelineRef": {"name": pipeline},
                "variables": variables,
                "priority": priority,
            },
        }
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
        request = self.api.param_serialize(
            method="GET",
            resource_path=path,
            query_params=list(query),
            header_params={"Accept": TABLE},
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request, _request_timeout=_request_timeout)
        if not 200 <= response.status <= 299:
            response.read()  # type: ignore[no-untyped-call]
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        table: Obj = json.loads(response.response.data)
        return table

    def stop(self, name: str) -> None:
        self.get(name)
        self._call(
            f"run {name!r}",
            self.custom.patch_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            self.namespace,
            "pipelinejobs",
            name,
            {"spec": {"stopped": True}},
        )

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

    def pod_log(self, pod: str, container: str, follow: bool) -> Any:
        """The pod's log as a stream of bytes, or None when the pod is gone."""
        try:
            return self.core.read_namespaced_pod_log(
                pod,
                self.namespace,
                container=container,
                follow=follow,
                _preload_content=False,
                # A quiet follow stream times out now and then, so the caller can check
                # whether the run has ended.
                _request_timeout=(10, 3) if follow else 60,
            )
        except ApiException as e:
            if e.status in (400, 404):
                return None
            raise explain(e, f"the log of pod {pod!r}") from None
