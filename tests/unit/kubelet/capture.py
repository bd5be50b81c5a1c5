"""Captures pods as a real kubelet reports them, for the unit tables of run_status.

Each scenario is a bare pod on the local plane's real node that breaks the way a
pipeline's pod breaks (an init container that fails, a program that is not there, a
Secret that is missing, an eviction, ...). Once the pod shows what the scenario is
about, its JSON and its Events are written to tests/unit/kubelet/<scenario>.json.

    .venv/bin/python -m tests.unit.kubelet.capture KUBECONFIG [SCENARIO...]

The unit tests read those files only; this script is how they were made, and how to
make them again when the kubelet changes (its pinned version is in versions.env).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config

HERE = Path(__file__).parent
NAMESPACE = "jobline-capture"
BUSYBOX = "busybox:1.35"
HOLD = "jobline.dev/capture"  # keeps a failed or deleted pod readable until captured
Obj = dict[str, Any]


def container(name: str, script: str, **extra: Any) -> Obj:
    return {
        "name": name,
        "image": BUSYBOX,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", script],
        **extra,
    }


def waiting(reason: str) -> Callable[[Obj, list[Obj]], bool]:
    def seen(pod: Obj, events: list[Obj]) -> bool:
        statuses = [
            *(pod["status"].get("initContainerStatuses") or []),
            *(pod["status"].get("containerStatuses") or []),
        ]
        return any(
            (s.get("state", {}).get("waiting") or {}).get("reason") == reason for s in statuses
        )

    return seen


def phase(wanted: str) -> Callable[[Obj, list[Obj]], bool]:
    return lambda pod, events: pod["status"].get("phase") == wanted


def event(reason: str) -> Callable[[Obj, list[Obj]], bool]:
    return lambda pod, events: any(e.get("reason") == reason for e in events)


SIDECAR_IMAGE_ABSENT = {
    "name": "proxy",
    "image": "registry.jobline.invalid/warehouse-proxy:1.0",
    "imagePullPolicy": "Never",  # no pull is tried: nothing leaves the node
    "restartPolicy": "Always",
}

# name: (pod spec, when the capture is taken, what to do once the pod exists)
SCENARIOS: dict[str, tuple[Obj, Callable[[Obj, list[Obj]], bool], str | None]] = {
    "init_failed": (
        {
            "initContainers": [container("prep", "echo preparing data; exit 4")],
            "containers": [container("main", "echo loading")],
        },
        phase("Failed"),
        None,
    ),
    "start_error": (
        {"containers": [{**container("main", ""), "command": ["/no/such/program"]}]},
        phase("Failed"),
        None,
    ),
    "termination_message": (
        {
            "containers": [
                container(
                    "main",
                    "echo loading; echo 'the warehouse refused the load: quota exceeded' "
                    "> /dev/termination-log; exit 3",
                )
            ]
        },
        phase("Failed"),
        None,
    ),
    "fallback_to_logs": (
        {
            "containers": [
                container(
                    "main",
                    "echo extracting; echo 'connection refused: warehouse:5432'; exit 2",
                    terminationMessagePolicy="FallbackToLogsOnError",
                )
            ]
        },
        phase("Failed"),
        None,
    ),
    "missing_secret": (
        {
            "containers": [
                container(
                    "main",
                    "echo loading",
                    env=[
                        {
                            "name": "PASSWORD",
                            "valueFrom": {
                                "secretKeyRef": {"name": "warehouse-creds", "key": "password"}
                            },
                        }
                    ],
                )
            ]
        },
        waiting("CreateContainerConfigError"),
        None,
    ),
    "missing_configmap_volume": (
        {
            "containers": [
                container(
                    "main",
                    "cat /config/tap.json",
                    volumeMounts=[{"name": "c", "mountPath": "/config"}],
                )
            ],
            "volumes": [{"name": "c", "configMap": {"name": "tap-config"}}],
        },
        event("FailedMount"),
        None,
    ),
    "sidecar_image_absent": (
        {
            "initContainers": [SIDECAR_IMAGE_ABSENT],
            "containers": [container("main", "echo loading")],
        },
        waiting("ErrImageNeverPull"),
        None,
    ),
    "invalid_image_name": (
        {"containers": [{**container("main", "echo loading"), "image": "Busybox:1.35"}]},
        waiting("InvalidImageName"),
        None,
    ),
    "sidecar_running_main_failed": (
        {
            "initContainers": [
                {**container("proxy", "echo proxy up; sleep 3600"), "restartPolicy": "Always"}
            ],
            "containers": [container("main", "echo loading; exit 1")],
            "terminationGracePeriodSeconds": 2,
        },
        phase("Failed"),
        None,
    ),
    "init_running": (
        {
            "initContainers": [
                container("fetch", "echo fetched the inputs"),
                container("wait-for-db", "echo waiting for the warehouse; sleep 3600"),
            ],
            "containers": [container("main", "echo loading")],
            "terminationGracePeriodSeconds": 1,
        },
        lambda pod, events: any(
            s["name"] == "wait-for-db" and "running" in s.get("state", {})
            for s in pod["status"].get("initContainerStatuses") or []
        ),
        None,
    ),
    "evicted": (
        {
            "containers": [container("main", "echo loading; sleep 3600")],
            "terminationGracePeriodSeconds": 1,
        },
        phase("Failed"),
        "evict",
    ),
    "preempted": (
        {
            "containers": [
                {
                    **container("main", "echo loading; sleep 3600"),
                    "resources": {"requests": {"cpu": "@most"}},
                }
            ],
            "priorityClassName": "jobline-capture-low",
            "terminationGracePeriodSeconds": 1,
        },
        phase("Failed"),
        "preempt",
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kubeconfig")
    parser.add_argument("scenarios", nargs="*", help="only these (default: all)")
    args = parser.parse_args()
    api = config.new_client_from_config(args.kubeconfig)
    core = client.CoreV1Api(api)
    node = next(
        n
        for n in core.list_node(label_selector="jobline.dev/node=real").items
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
    )
    _ensure_namespace(core)
    _ensure_priorities(client.SchedulingV1Api(api))
    for name in args.scenarios or list(SCENARIOS):
        spec, ready, then = SCENARIOS[name]
        print(f"==> {name}", flush=True)
        captured = _capture(api, core, node, name, spec, ready, then)
        (HERE / f"{name}.json").write_text(json.dumps(captured, indent=1, sort_keys=True) + "\n")
    return 0


def _ensure_namespace(core: client.CoreV1Api) -> None:
    try:
        core.create_namespace({"metadata": {"name": NAMESPACE}})
    except client.ApiException as e:
        if e.status != 409:
            raise


def _ensure_priorities(scheduling: client.SchedulingV1Api) -> None:
    for name, value in (("jobline-capture-low", 10), ("jobline-capture-high", 1000)):
        try:
            scheduling.create_priority_class({"metadata": {"name": name}, "value": value})
        except client.ApiException as e:
            if e.status != 409:
                raise


def _capture(
    api: client.ApiClient,
    core: client.CoreV1Api,
    node: Any,
    name: str,
    spec: Obj,
    ready: Callable[[Obj, list[Obj]], bool],
    then: str | None,
) -> Obj:
    pod_name = name.replace("_", "-")
    most = f"{int(_millicores(node.status.allocatable['cpu']) * 0.7)}m"
    body = json.loads(json.dumps(spec).replace('"@most"', json.dumps(most)))
    body.update(
        restartPolicy="Never",
        nodeSelector={"jobline.dev/node": "real"},
        tolerations=[{"key": "jobline.dev/node", "operator": "Exists", "effect": "NoSchedule"}],
    )
    _delete(core, pod_name)
    core.create_namespaced_pod(
        NAMESPACE,
        {
            "metadata": {"name": pod_name, "finalizers": [HOLD], "labels": {"capture": name}},
            "spec": body,
        },
    )
    if then is not None:
        _wait(core, pod_name, lambda pod, events: pod["status"].get("phase") == "Running")
        if then == "evict":
            core.create_namespaced_pod_eviction(
                pod_name, NAMESPACE, {"metadata": {"name": pod_name, "namespace": NAMESPACE}}
            )
        else:
            high = {**body, "priorityClassName": "jobline-capture-high"}
            core.create_namespaced_pod(
                NAMESPACE, {"metadata": {"name": f"{pod_name}-by"}, "spec": high}
            )
    pod, events = _wait(core, pod_name, ready)
    if then == "preempt":
        _delete(core, f"{pod_name}-by")
    _delete(core, pod_name)
    return {"pod": pod, "events": events}


def _millicores(quantity: str) -> float:
    return float(quantity[:-1]) if quantity.endswith("m") else float(quantity) * 1000


def _read(core: client.CoreV1Api, name: str) -> tuple[Obj, list[Obj]]:
    api = core.api_client
    pod = api.sanitize_for_serialization(core.read_namespaced_pod(name, NAMESPACE))
    pod["metadata"].pop("managedFields", None)
    listed = core.list_namespaced_event(
        NAMESPACE, field_selector=f"involvedObject.kind=Pod,involvedObject.name={name}"
    )
    events = [api.sanitize_for_serialization(e) for e in listed.items]
    for captured in events:
        captured["metadata"].pop("managedFields", None)
    return pod, events


def _wait(
    core: client.CoreV1Api, name: str, ready: Callable[[Obj, list[Obj]], bool], timeout: float = 180
) -> tuple[Obj, list[Obj]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod, events = _read(core, name)
        if ready(pod, events):
            return pod, events
        time.sleep(0.5)
    raise SystemExit(f"pod {name}: not as wanted after {timeout} s: {json.dumps(pod['status'])}")


def _delete(core: client.CoreV1Api, name: str) -> None:
    try:
        core.patch_namespaced_pod(name, NAMESPACE, {"metadata": {"finalizers": None}})
        core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
    except client.ApiException as e:
        if e.status != 404:
            raise


if __name__ == "__main__":
    sys.exit(main())
