"""The cluster under the tests is real: Jobs, logs, garbage collection, RBAC, CRDs.

These run on any cluster; the ones using sim.jobline.dev annotations (the
`sim` fixture) need the local control plane's simulated pods.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.conftest import Cluster, wait_for

IMAGE = "busybox:1.36"


def job_body(name: str, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            **spec,
            "template": {
                "metadata": {"annotations": annotations or {}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": IMAGE, "command": ["true"]}],
                },
            },
        },
    }


def create_job(cluster: Cluster, namespace: str, body: dict[str, Any]) -> None:
    client.BatchV1Api(cluster.api).create_namespaced_job(namespace, body)


def finished_job(cluster: Cluster, namespace: str, name: str, timeout: float = 60) -> Any:
    """Waits for the Job's Complete or Failed condition and returns the Job."""

    def done() -> Any:
        job = client.BatchV1Api(cluster.api).read_namespaced_job(name, namespace)
        for cond in job.status.conditions or []:
            if cond.type in ("Complete", "Failed") and cond.status == "True":
                return job
        return None

    return wait_for(f"Job {name} to finish", done, timeout)


def job_pods(cluster: Cluster, namespace: str, name: str) -> list[Any]:
    pods = client.CoreV1Api(cluster.api).list_namespaced_pod(
        namespace, label_selector=f"job-name={name}"
    )
    return sorted(pods.items, key=lambda p: p.metadata.creation_timestamp)


def condition(job: Any, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in job.status.conditions or [])


def main_state(pod: Any) -> Any:
    return pod.status.container_statuses[0].state


def test_plain_job_completes(cluster: Cluster, namespace: str) -> None:
    create_job(cluster, namespace, job_body("plain"))
    job = finished_job(cluster, namespace, "plain", timeout=180)
    assert condition(job, "Complete")
    [pod] = job_pods(cluster, namespace, "plain")
    assert pod.status.phase == "Succeeded"
    assert main_state(pod).terminated.exit_code == 0


def test_exit_code_fails_the_pod_and_retries_count(
    cluster: Cluster, namespace: str, sim: None
) -> None:
    create_job(
        cluster,
        namespace,
        job_body("fails", {"sim.jobline.dev/exit-code": "3"}, backoffLimit=1),
    )
    # The Job controller waits ~10 s before the retry.
    job = finished_job(cluster, namespace, "fails", timeout=90)
    assert condition(job, "Failed")
    assert job.status.failed == 2  # the first pod and one retry
    pods = job_pods(cluster, namespace, "fails")
    assert [p.status.phase for p in pods] == ["Failed", "Failed"]
    assert [main_state(p).terminated.exit_code for p in pods] == [3, 3]


def test_duration_keeps_the_pod_running(cluster: Cluster, namespace: str, sim: None) -> None:
    create_job(cluster, namespace, job_body("slow", {"sim.jobline.dev/duration": "4s"}))
    pod = wait_for(
        "the pod to run",
        lambda: next(
            (p for p in job_pods(cluster, namespace, "slow") if p.status.phase == "Running"), None
        ),
    )
    job = finished_job(cluster, namespace, "slow")
    terminated = main_state(job_pods(cluster, namespace, "slow")[0]).terminated
    ran_for = (terminated.finished_at - main_state(pod).running.started_at).total_seconds()
    assert 4 <= ran_for <= 10
    assert condition(job, "Complete")


def test_oom_kill(cluster: Cluster, namespace: str, sim: None) -> None:
    create_job(cluster, namespace, job_body("oom", {"sim.jobline.dev/oom": "true"}))
    assert condition(finished_job(cluster, namespace, "oom"), "Failed")
    terminated = main_state(job_pods(cluster, namespace, "oom")[0]).terminated
    assert (terminated.reason, terminated.exit_code) == ("OOMKilled", 137)


def test_termination_message(cluster: Cluster, namespace: str, sim: None) -> None:
    message = '{"outputs": [{"name": "orders", "records": 12}]}'
    create_job(
        cluster, namespace, job_body("msg", {"sim.jobline.dev/termination-message": message})
    )
    finished_job(cluster, namespace, "msg")
    assert main_state(job_pods(cluster, namespace, "msg")[0]).terminated.message == message


def test_image_pull_error_keeps_the_pod_waiting(
    cluster: Cluster, namespace: str, sim: None
) -> None:
    create_job(cluster, namespace, job_body("pull", {"sim.jobline.dev/image-pull-error": "true"}))

    seen: set[str] = set()

    def both_reasons_seen() -> bool:
        for pod in job_pods(cluster, namespace, "pull"):
            assert pod.status.phase == "Pending"
            for status in pod.status.container_statuses or []:
                if status.state.waiting:
                    seen.add(status.state.waiting.reason)
        return seen >= {"ErrImagePull", "ImagePullBackOff"}

    # Like a kubelet, the reason alternates between the two while the pod stays Pending.
    assert wait_for("both image pull reasons", both_reasons_seen, timeout=20)


def pod_log(cluster: Cluster, namespace: str, pod: str, **options: Any) -> str:
    text: str = client.CoreV1Api(cluster.api).read_namespaced_pod_log(pod, namespace, **options)
    return text


def started_pod(cluster: Cluster, namespace: str, job: str) -> str:
    pod = wait_for(
        f"a pod of {job} to start",
        lambda: next(
            (
                p
                for p in job_pods(cluster, namespace, job)
                if p.status.phase in ("Running", "Succeeded")
            ),
            None,
        ),
    )
    return str(pod.metadata.name)


def test_kubectl_logs_returns_the_annotated_lines(
    cluster: Cluster, namespace: str, sim: None
) -> None:
    annotations = {
        "sim.jobline.dev/log": "line one\nline two\nline three",
        "sim.jobline.dev/duration": "30s",
    }
    create_job(cluster, namespace, job_body("logs", annotations))
    pod = started_pod(cluster, namespace, "logs")
    logs = wait_for(
        "kubectl logs to answer",
        lambda: cluster.kubectl("logs", "-n", namespace, pod),
        timeout=20,
    )
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == "line one\nline two\nline three\n"
    assert pod_log(cluster, namespace, pod, tail_lines=2) == "line two\nline three\n"
    assert pod_log(cluster, namespace, pod, limit_bytes=6) == "line o"
    # follow streams the whole log (kwok then keeps the stream open; we close it).
    stream = client.CoreV1Api(cluster.api).read_namespaced_pod_log(
        pod, namespace, follow=True, _preload_content=False, _request_timeout=10
    )
    try:
        got = b""
        while got.count(b"\n") < 3:
            got += stream.read(1)  # byte by byte: a larger read would wait for more
        assert got == b"line one\nline two\nline three\n"
    finally:
        stream.close()  # kwok never ends a follow stream: drop the connection


def test_generated_and_binary_logs(cluster: Cluster, namespace: str, sim: None) -> None:
    raw = b"valid\n\xff\xfe not utf-8\n" + b"x" * 100_000 + b"\n"
    create_job(cluster, namespace, job_body("many", {"sim.jobline.dev/log-lines": "5000"}))
    create_job(
        cluster,
        namespace,
        job_body("raw", {"sim.jobline.dev/log-base64": base64.b64encode(raw).decode()}),
    )
    many = started_pod(cluster, namespace, "many")
    text = wait_for("the generated log", lambda: pod_log(cluster, namespace, many))
    assert text.splitlines() == [f"line {i}" for i in range(5000)]
    assert pod_log(cluster, namespace, many, tail_lines=1) == "line 4999\n"

    raw_pod = started_pod(cluster, namespace, "raw")
    stream = client.CoreV1Api(cluster.api).read_namespaced_pod_log(
        raw_pod, namespace, _preload_content=False
    )
    assert stream.data == raw


def test_pods_without_a_log_annotation_have_an_empty_log(
    cluster: Cluster, namespace: str, sim: None
) -> None:
    create_job(cluster, namespace, job_body("quiet"))
    assert pod_log(cluster, namespace, started_pod(cluster, namespace, "quiet")) == ""


def test_log_helper_survives_many_pods_and_deletions(
    cluster: Cluster, namespace: str, sim: None
) -> None:
    count = 30
    for i in range(count):
        annotations = {"sim.jobline.dev/log": f"job {i}", "sim.jobline.dev/duration": "20s"}
        create_job(cluster, namespace, job_body(f"j{i}", annotations))
    # Delete a third of the Jobs (and their pods) while their logs are being set up.
    batch = client.BatchV1Api(cluster.api)
    for i in range(0, count, 3):
        batch.delete_namespaced_job(f"j{i}", namespace, propagation_policy="Background")
    for i in range(1, count, 3):
        pod = started_pod(cluster, namespace, f"j{i}")
        assert wait_for(f"log of j{i}", lambda pod=pod: pod_log(cluster, namespace, pod)) == (
            f"job {i}\n"
        )
    # A pod created after all that still gets its log.
    create_job(cluster, namespace, job_body("late", {"sim.jobline.dev/log": "late"}))
    late = started_pod(cluster, namespace, "late")
    assert wait_for("log of late", lambda: pod_log(cluster, namespace, late)) == "late\n"


def test_garbage_collector_deletes_dependents(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    ref = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dependent", owner_references=[ref])),
    )
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def dependent_gone() -> bool:
        try:
            core.read_namespaced_config_map("dependent", namespace)
        except ApiException as e:
            return e.status == 404
        return False

    assert wait_for("the dependent to be garbage-collected", dependent_gone)


def test_service_account_without_a_role_is_forbidden(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    token = core.create_namespaced_service_account_token(
        "nobody",
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
        ),
    ).status.token
    as_nobody = client.Configuration()
    as_nobody.host = cluster.api.configuration.host
    as_nobody.ssl_ca_cert = cluster.api.configuration.ssl_ca_cert
    as_nobody.verify_ssl = cluster.api.configuration.verify_ssl
    as_nobody.api_key = {"authorization": f"Bearer {token}"}
    with client.ApiClient(as_nobody) as api, pytest.raises(ApiException) as denied:
        client.CoreV1Api(api).list_namespaced_pod(namespace)
    assert denied.value.status == 403


CRD_GROUP = "planetest.jobline.dev"


@pytest.fixture
def widget_crd(cluster: Cluster) -> Any:
    ext = client.ApiextensionsV1Api(cluster.api)
    name = f"widgets.{CRD_GROUP}"
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
                "x-kubernetes-validations": [
                    {"rule": "self.min <= self.max", "message": "spec.min must not exceed spec.max"}
                ],
            },
            "status": {"type": "object", "properties": {"seen": {"type": "integer"}}},
        },
    }
    ext.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {
                "group": CRD_GROUP,
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": schema},
                        "subresources": {"status": {}},
                    }
                ],
            },
        }
    )

    def established() -> bool:
        crd = ext.read_custom_resource_definition(name)
        return any(
            c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
        )

    wait_for("the CRD to be established", established)
    yield
    ext.delete_custom_resource_definition(name)


def test_crd_cel_rule_and_status_subresource(
    cluster: Cluster, namespace: str, widget_crd: None
) -> None:
    custom = client.CustomObjectsApi(cluster.api)

    def widget(name: str, low: int, high: int) -> dict[str, Any]:
        return {
            "apiVersion": f"{CRD_GROUP}/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": {"min": low, "max": high},
        }

    with pytest.raises(ApiException) as rejected:
        custom.create_namespaced_custom_object(
            CRD_GROUP, "v1", namespace, "widgets", widget("bad", 5, 1)
        )
    assert rejected.value.status == 422
    assert "spec.min must not exceed spec.max" in rejected.value.body

    custom.create_namespaced_custom_object(
        CRD_GROUP, "v1", namespace, "widgets", {**widget("good", 1, 5), "status": {"seen": 1}}
    )
    # Status is ignored on create and written only through the status subresource.
    assert "status" not in custom.get_namespaced_custom_object(
        CRD_GROUP, "v1", namespace, "widgets", "good"
    )
    custom.patch_namespaced_custom_object_status(
        CRD_GROUP, "v1", namespace, "widgets", "good", {"status": {"seen": 2}}
    )
    got = custom.get_namespaced_custom_object(CRD_GROUP, "v1", namespace, "widgets", "good")
    assert got["status"] == {"seen": 2}
