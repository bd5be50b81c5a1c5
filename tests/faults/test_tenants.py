"""Bad input and hostile neighbours: what a tenant can forge or break, and what the
operator does about it. Each test asserts what a user sees."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from jobline.models import API_GROUP, API_VERSION
from tests.cluster.jobline_fixtures import Jobline, events_of
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("sim")


def test_a_forged_pod_beside_a_running_run_changes_nothing(jl: Jobline) -> None:
    jl.pipeline("real", {"sim.jobline.dev/duration": "8s", "sim.jobline.dev/log": "real result"})
    jl.start("real-1", "real")
    running = jl.wait_phase("real-1", "RUNNING")
    forged = {
        "metadata": {
            "name": "forged",
            "labels": {"job-name": running["jobName"], "jobline.dev/pipelinejob": "real-1"},
            "annotations": {"sim.jobline.dev/log": "forged result"},
        },
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
    }
    jl.core.create_namespaced_pod(jl.namespace, forged)
    done = jl.wait_done("real-1", timeout=60)
    assert (done["phase"], done["exitCode"], done["podName"]) == ("COMPLETE", 0, running["podName"])
    assert done["logs"]["lines"] == ["real result"]


def test_a_foreign_job_labelled_for_a_replace_pipeline_is_neither_a_slot_nor_deleted(
    jl: Jobline,
) -> None:
    jl.pipeline("rep", {"sim.jobline.dev/duration": "2s"}, concurrencyPolicy="Replace")
    foreign = {
        "metadata": {
            "name": "foreign",
            "labels": {"jobline.dev/pipeline": "rep", "jobline.dev/pipelinejob": "x"},
        },
        "spec": {
            "template": {
                "metadata": {"annotations": {"sim.jobline.dev/duration": "300s"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36"}],
                },
            }
        },
    }
    jl.batch.create_namespaced_job(jl.namespace, foreign)
    jl.start("rep-1", "rep")
    done = jl.wait_done("rep-1", timeout=60)
    assert (done["phase"], done["reason"]) == ("COMPLETE", "Completed")  # not Replaced, not queued
    job = jl.batch.read_namespaced_job("foreign", jl.namespace)
    assert job.metadata.deletion_timestamp is None


def test_a_pre_created_scheduled_run_name_is_not_adopted(jl: Jobline) -> None:
    pipeline = jl.pipeline(
        "nightly",
        variables=[{"name": "TARGET", "default": "prod"}],
        schedule="* * * * *",
    )
    now = dt.datetime.now(dt.UTC)
    if now.second > 50:  # too close to the minute to create the decoy first
        time.sleep(61 - now.second)
        now = dt.datetime.now(dt.UTC)
    minute = int(now.timestamp()) // 60 + 1
    decoy = f"nightly-{minute}"
    jl.start(decoy, "nightly", variables={"TARGET": "attacker"}, stopped=True)
    wait_for(
        "a Warning Event about the pre-created run",
        lambda: [
            e
            for e in events_of(jl, "Pipeline", "nightly")
            if e.type == "Warning" and decoy in (e.message or "")
        ],
        timeout=90,
    )
    decoy_status = jl.wait_done(decoy)
    assert decoy_status["trigger"] == {"type": "Manual"}
    assert decoy_status["phase"] == "STOPPED"  # the tenant's own run, never started
    assert not [j for j in jl.jobs() if j.metadata.name == decoy]
    assert pipeline["metadata"]["uid"]


@contextlib.contextmanager
def chart_policies(jl: Jobline, part: str, *values: str) -> Iterator[None]:
    """The chart's ValidatingAdmissionPolicies named `*-{part}`, rendered with `values`,
    in force for the test's namespace only."""
    from tests.cluster.chart import CHART, RELEASE, helm

    sets = [f"--set={v}" for v in values]
    rendered = helm(None, "template", RELEASE, str(CHART), "-n", "jobline-system", *sets)
    assert rendered.returncode == 0, rendered.stderr
    docs = [
        d
        for d in yaml.safe_load_all(rendered.stdout)
        if d and d["metadata"]["name"].endswith(f"-{part}")
    ]
    assert [d["kind"] for d in docs] == [
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    admission = client.AdmissionregistrationV1Api(jl.cluster.api)
    suffix = f"-{jl.namespace}"
    policy, binding = docs
    policy["metadata"]["name"] += suffix
    binding["metadata"]["name"] += suffix
    binding["spec"]["policyName"] += suffix
    binding["spec"]["matchResources"] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": jl.namespace}}
    }
    admission.create_validating_admission_policy(policy)
    try:
        admission.create_validating_admission_policy_binding(binding)
        try:
            yield
        finally:
            admission.delete_validating_admission_policy_binding(binding["metadata"]["name"])
    finally:
        admission.delete_validating_admission_policy(policy["metadata"]["name"])


def refused(create: Callable[[], object], words: str) -> str | None:
    """The refusal's message if `create` was refused by a policy saying `words`; None if
    it went through (the policy is not in force yet: the caller tries again)."""
    try:
        create()
    except ApiException as e:
        if e.status in (403, 422) and words in str(e.body):
            return str(e.body)
        raise
    return None


def test_only_the_operator_may_mark_a_run_as_scheduled(jl: Jobline) -> None:
    with chart_policies(jl, "scheduled-time"):
        jl.pipeline("marked")
        tenant = _as_user(jl, "tenant")
        body = _run_body("marked-1", {"jobline.dev/scheduled-time": "2026-01-01T00:00:00Z"})

        def tenant_marks() -> str | None:
            message = refused(
                lambda: tenant.create_namespaced_custom_object(
                    API_GROUP, API_VERSION, jl.namespace, "pipelinejobs", body
                ),
                "scheduled-time",
            )
            if message is None:
                jl.delete("marked-1")
            return message

        assert "only the Jobline operator" in wait_for("the policy to deny", tenant_marks)
        tenant.create_namespaced_custom_object(  # an unmarked run is fine
            API_GROUP, API_VERSION, jl.namespace, "pipelinejobs", _run_body("marked-2", {})
        )
        operator_sa = _as_user(jl, "system:serviceaccount:jobline-system:jobline")

        operator_sa.create_namespaced_custom_object(  # the operator may mark it
            API_GROUP, API_VERSION, jl.namespace, "pipelinejobs", body
        )


def test_the_optional_template_policy_limits_what_pipelines_may_run(jl: Jobline) -> None:
    values = (
        "admissionPolicies.templates.enabled=true",
        "admissionPolicies.templates.serviceAccounts={default,etl}",
    )
    plain = {"name": "main", "image": "busybox:1.36"}

    def create(name: str, **pod: Any) -> object:
        body = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "Pipeline",
            "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [plain], **pod}}},
        }
        return jl.custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, jl.namespace, "pipelines", body
        )

    def first_refusal() -> str | None:
        privileged = [{**plain, "securityContext": {"privileged": True}}]
        message = refused(lambda: create("priv", containers=privileged), "privileged")
        if message is None:  # not in force yet
            jl.custom.delete_namespaced_custom_object(
                API_GROUP, API_VERSION, jl.namespace, "pipelines", "priv"
            )
        return message

    with chart_policies(jl, "templates", *values):
        assert wait_for("the policy to refuse a privileged container", first_refusal)
        host = [{"name": "root", "hostPath": {"path": "/"}}]
        assert refused(lambda: create("host", volumes=host), "hostPath")
        assert refused(lambda: create("sa", serviceAccountName="admin"), "serviceAccountName")
        create("fine")  # a plain template, and an allowed ServiceAccount, pass
        create("fine-etl", serviceAccountName="etl")


def _run_body(name: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "PipelineJob",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"pipelineRef": {"name": "marked"}},
    }


def _as_user(jl: Jobline, user: str) -> client.CustomObjectsApi:
    """The API as `user`, impersonated by the admin, with a RoleBinding that lets it
    create runs in the test's namespace (RBAC passes; admission decides)."""
    rbac = client.RbacAuthorizationV1Api(jl.cluster.api)
    name = "runs-" + "".join(c if c.isalnum() else "-" for c in user)[-40:]
    try:
        rbac.create_namespaced_role(
            jl.namespace,
            {
                "metadata": {"name": "run-creator"},
                "rules": [
                    {
                        "apiGroups": [API_GROUP],
                        "resources": ["pipelinejobs"],
                        "verbs": ["create", "get", "delete"],
                    }
                ],
            },
        )
    except ApiException as e:
        if e.status != 409:
            raise
    rbac.create_namespaced_role_binding(
        jl.namespace,
        {
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "run-creator",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
    # The apiserver's RBAC cache sees a new binding a moment later: until it does, the
    # user's requests are refused by RBAC, not by the admission policy under test.
    review = {
        "spec": {
            "user": user,
            "resourceAttributes": {
                "namespace": jl.namespace,
                "group": API_GROUP,
                "resource": "pipelinejobs",
                "verb": "create",
            },
        }
    }
    authorization = client.AuthorizationV1Api(jl.cluster.api)
    wait_for(
        f"RBAC to let {user} create runs",
        lambda: authorization.create_subject_access_review(review).status.allowed,
        timeout=30,
    )
    from kubernetes import config

    api = config.new_client_from_config(config_file=jl.cluster.kubeconfig)
    api.set_default_header("Impersonate-User", user)
    return client.CustomObjectsApi(api)


def test_a_job_of_another_namespace_naming_a_waiting_run_decides_nothing(jl: Jobline) -> None:
    # A tenant who may create Jobs in its own namespace and reads a run's UID (the Jobs
    # API's id) makes a Job there whose controller reference names the run, with a
    # finalizer of its own so that the garbage collector cannot take it away.
    jl.pipeline("q", {"sim.jobline.dev/duration": "300s"}, concurrencyPolicy="Queue")
    jl.start("q-1", "q")
    jl.wait_phase("q-1", "RUNNING")
    jl.start("q-2", "q")
    jl.wait_reason("q-2", "WaitingForRun")
    evil = f"{jl.namespace}-evil"
    jl.core.create_namespace({"metadata": {"name": evil}})
    forged = {
        "metadata": {
            "name": "q-2",
            "labels": {"jobline.dev/pipeline": "q", "jobline.dev/pipelinejob": "q-2"},
            "finalizers": ["example.com/keep"],
            "ownerReferences": [
                {
                    "apiVersion": f"{API_GROUP}/{API_VERSION}",
                    "kind": "PipelineJob",
                    "name": "q-2",
                    "uid": jl.run("q-2")["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {
            "template": {
                "metadata": {
                    "labels": {"jobline.dev/pipelinejob": "q-2"},
                    "annotations": {
                        "sim.jobline.dev/duration": "1s",
                        "sim.jobline.dev/log": "forged result",
                    },
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36"}],
                },
            }
        },
    }
    try:
        jl.batch.create_namespaced_job(evil, forged)
        # The forged pod runs and succeeds in its own namespace; the run waits on.
        wait_for(
            "the forged pod to succeed",
            lambda: [
                p for p in jl.core.list_namespaced_pod(evil).items if p.status.phase == "Succeeded"
            ],
            timeout=60,
        )
        time.sleep(5)  # the operator's watch has seen it all
        assert jl.status("q-2")["reason"] == "WaitingForRun"
        # The slot frees: the run gets its own Job in its own namespace, its own result.
        jl.patch("q-1", {"stopped": True})
        done = jl.wait_phase("q-2", "RUNNING", timeout=90)
        assert done["jobName"] == "q-2"
        assert jl.batch.read_namespaced_job("q-2", jl.namespace).metadata.owner_references
    finally:
        with contextlib.suppress(ApiException):
            jl.batch.patch_namespaced_job(
                "q-2", evil, [{"op": "remove", "path": "/metadata/finalizers"}]
            )
        jl.core.delete_namespace(evil)
