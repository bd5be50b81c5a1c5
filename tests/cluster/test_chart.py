"""The Helm chart: it lints, renders what it should, rejects bad values, installs, and
gives the operator's ServiceAccount exactly what it needs (the run-lifecycle tests
pass as that identity: `make test` runs them with --operator-as-chart)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from jobline.crds import definitions, render
from tests.cluster.chart import CHART, NAMESPACE, RELEASE, helm, install, service_account_kubeconfig
from tests.conftest import Cluster


def render_chart(*values: str) -> list[dict[str, Any]]:
    args = [arg for value in values for arg in ("--set", value)]
    result = helm(None, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def kinds(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(d["kind"] for d in docs)


def test_lint() -> None:
    result = helm(None, "lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr


def test_chart_crds_are_the_generated_ones() -> None:
    for name, manifest in definitions().items():
        assert (CHART / "crds" / name).read_text() == render(manifest), (
            f"charts/jobline/crds/{name} differs from crds/{name}: copy it over"
        )


def test_default_render() -> None:
    docs = render_chart()
    assert kinds(docs) == [
        "ClusterRole",
        "ClusterRole",  # jobline-view and jobline-edit, aggregated to view, edit and admin
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Role",  # the leader Lease, in the release's namespace
        "RoleBinding",
        "Service",
        "ServiceAccount",
        "ValidatingAdmissionPolicy",  # only the operator marks runs as scheduled
        "ValidatingAdmissionPolicyBinding",
    ]
    view, edit = (
        next(d for d in docs if d["metadata"]["name"] == f"{RELEASE}-{role}")
        for role in ("view", "edit")
    )
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert view["rules"][0]["verbs"] == ["get", "list", "watch"]
    assert "rbac.authorization.k8s.io/aggregate-to-view" not in edit["metadata"]["labels"]
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert "--leader-elect" in spec["template"]["spec"]["containers"][0]["args"]
    without_lease = render_chart("leaderElection.enabled=false")
    [deployment] = [d for d in without_lease if d["kind"] == "Deployment"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    assert container["args"][0] == "operator"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]
    assert container["resources"]["limits"]["memory"]


def test_rules_are_least_privilege() -> None:
    [role] = [
        d for d in render_chart() if d["kind"] == "ClusterRole" and d["metadata"]["name"] == RELEASE
    ]
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert "secrets" not in rule["resources"], rule
        if "pods" in rule["resources"]:  # patch: only to remove its own finalizer
            assert set(rule["verbs"]) <= {"get", "list", "watch", "patch"}, rule
        assert "pods/exec" not in rule["resources"], rule
    # Kueue's Workloads say why Kueue holds a run's Job: read, never written.
    [kueue] = [r for r in role["rules"] if "kueue.x-k8s.io" in r["apiGroups"]]
    assert (kueue["resources"], kueue["verbs"]) == (["workloads"], ["get", "list", "watch"])


def test_namespaced_mode_uses_roles() -> None:
    docs = render_chart(
        "watchNamespaces={data,etl}", "leaderElection.enabled=false", "userRoles.aggregate=false"
    )
    assert kinds(docs) == [
        "Deployment",
        "Role",
        "Role",
        "RoleBinding",
        "RoleBinding",
        "Service",
        "ServiceAccount",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    assert sorted(d["metadata"]["namespace"] for d in docs if d["kind"] == "Role") == [
        "data",
        "etl",
    ]
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=data" in args and "--namespace=etl" in args


def test_optional_service_monitor_and_two_replicas_with_a_lease() -> None:
    docs = render_chart("metrics.serviceMonitor.enabled=true", "replicaCount=2")
    assert "ServiceMonitor" in kinds(docs)
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    assert "strategy" not in deployment["spec"]
    assert "--leader-elect" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    [role] = [
        d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("leader-election")
    ]
    assert {r["resources"][0] for r in role["rules"]} == {"leases"}


def test_optional_server_that_may_only_read_runs() -> None:
    assert not [d for d in render_chart() if "server" in d["metadata"]["name"]]
    docs = render_chart(
        "server.enabled=true",
        "server.ingress.enabled=true",
        "server.ingress.host=jobs.example.org",
        "server.tls.secretName=jobline-tls",
    )
    server = [d for d in docs if d["metadata"]["name"] == f"{RELEASE}-server"]
    assert kinds(server) == ["Deployment", "Ingress", "Service", "ServiceAccount"]
    [deployment] = [d for d in server if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["args"][:4] == ["server", "--address=0.0.0.0", "--port=8080",
                                     "--credentials=token"]  # fmt: skip
    assert "--tls-cert=/etc/jobline/tls/tls.crt" in container["args"]
    assert "--max-followers=100" in container["args"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    # Its ServiceAccount may read runs (for its index of them) and nothing else.
    assert server_rules(docs) == {
        ("ClusterRole", ""): [
            {
                "apiGroups": ["jobline.dev"],
                "resources": ["pipelinejobs"],
                "verbs": ["get", "list", "watch"],
            }
        ]
    }
    [operator] = [d for d in docs if d["kind"] == "Deployment" and d is not deployment]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert not operator["spec"]["selector"]["matchLabels"].items() <= labels.items()
    [ingress] = [d for d in server if d["kind"] == "Ingress"]
    assert ingress["spec"]["rules"][0]["host"] == "jobs.example.org"


def test_server_index_follows_the_watched_namespaces_or_is_off() -> None:
    docs = render_chart("server.enabled=true", "watchNamespaces={data,etl}")
    assert set(server_rules(docs)) == {("Role", "data"), ("Role", "etl")}
    assert {"--index-namespace=data", "--index-namespace=etl"} <= set(server_args(docs))
    off = render_chart("server.enabled=true", "server.runIndex=false")
    assert server_rules(off) == {}  # bound to nothing: it acts only with callers' tokens
    assert "--no-run-index" in server_args(off)


def test_the_log_archive_settings_reach_the_operator_and_the_server_alike() -> None:
    docs = render_chart(
        "server.enabled=true",
        "logArchive.bucket=jobline-logs",
        "logArchive.endpoint=https://s3.eu-west-1.amazonaws.com",
        "logArchive.region=eu-west-1",
        "logArchive.prefix=prod",
        "logArchive.existingSecret=jobline-archive-keys",
        "logArchive.caConfigMap=corp-ca",
    )
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] == "Deployment"
    }
    assert set(pods) == {RELEASE, f"{RELEASE}-server"}
    settings = []
    for pod in pods.values():
        env = {e["name"]: e.get("value") or e["valueFrom"] for e in pod["containers"][0]["env"]}
        settings.append({k: v for k, v in env.items() if k.startswith(("JOBLINE_", "AWS_"))})
        mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["archive-ca"] == "/etc/jobline/archive-ca"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["archive-ca"]["configMap"] == {"name": "corp-ca"}
    operator, server = settings
    assert (
        operator
        == server
        == {
            "JOBLINE_ARCHIVE_BUCKET": "jobline-logs",
            "JOBLINE_ARCHIVE_ENDPOINT": "https://s3.eu-west-1.amazonaws.com",
            "JOBLINE_ARCHIVE_REGION": "eu-west-1",
            "JOBLINE_ARCHIVE_PREFIX": "prod",
            "JOBLINE_ARCHIVE_CA_FILE": "/etc/jobline/archive-ca/ca.crt",
            "AWS_ACCESS_KEY_ID": {
                "secretKeyRef": {"name": "jobline-archive-keys", "key": "AWS_ACCESS_KEY_ID"}
            },
            "AWS_SECRET_ACCESS_KEY": {
                "secretKeyRef": {"name": "jobline-archive-keys", "key": "AWS_SECRET_ACCESS_KEY"}
            },
        }
    )
    # The operator may read its own namespace, and nothing else of namespaces: its UID
    # tags what it archives, so that it only ever sweeps its own.
    [identity] = [d for d in docs if d["metadata"]["name"] == f"{RELEASE}-installation"
                  and d["kind"] == "ClusterRole"]  # fmt: skip
    assert identity["rules"] == [
        {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [NAMESPACE],
         "verbs": ["get"]}
    ]  # fmt: skip
    # Without a bucket, no archive: nothing of it in either pod.
    plain = render_chart("server.enabled=true", "logArchive.endpoint=http://s3.local:9000")
    assert not [d for d in plain if d["metadata"]["name"] == f"{RELEASE}-installation"]
    for d in plain:
        if d["kind"] == "Deployment":
            container = d["spec"]["template"]["spec"]["containers"][0]
            assert not [e for e in container.get("env", []) if "ARCHIVE" in e["name"]]


def server_rules(docs: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The rules of each role the server's ServiceAccount is bound to, by (kind, namespace)."""
    bound = {
        (d["roleRef"]["kind"], d["metadata"].get("namespace", ""), d["roleRef"]["name"])
        for d in docs
        if d["kind"].endswith("Binding")
        for s in d.get("subjects", [])
        if s["name"] == f"{RELEASE}-server"
    }
    return {
        (kind, namespace): d["rules"]
        for kind, namespace, name in bound
        for d in docs
        if d["kind"] == kind
        and d["metadata"]["name"] == name
        and d["metadata"].get("namespace", "") == namespace
    }


def server_args(docs: list[dict[str, Any]]) -> list[str]:
    [deployment] = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-server")
    ]
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


@pytest.mark.parametrize(
    "value",
    [
        "server.port=0",
        "server.service.type=External",
        "server.unknown=1",
        "replicaCount=0",
        "logFormat=xml",
        "leaderElection.enabled=false,replicaCount=2",  # two replicas need the Lease
        "unknownKey=1",
        "watchNamespaces[0]=Not_A_Namespace",
        "metrics.port=70000",
        "logArchive.endpoint=s3.example.com",  # a URL: http(s)://host[:port]
        "logArchive.bucket=Not_A_Bucket",
        "logArchive.keys=secret",  # keys go in a Secret (existingSecret), never in values
    ],
)
def test_schema_rejects_bad_values(value: str) -> None:
    result = helm(None, "template", RELEASE, str(CHART), "--set", value)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr


def test_install_creates_what_it_should(cluster: Cluster) -> None:
    install(cluster)
    apps = client.AppsV1Api(cluster.api)
    deployment = apps.read_namespaced_deployment(RELEASE, NAMESPACE)
    assert deployment.spec.template.spec.service_account_name == RELEASE
    core = client.CoreV1Api(cluster.api)
    core.read_namespaced_service_account(RELEASE, NAMESPACE)
    core.read_namespaced_service(f"{RELEASE}-metrics", NAMESPACE)
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    rbac.read_cluster_role(RELEASE)
    rbac.read_cluster_role_binding(RELEASE)


def test_operator_identity_is_denied_secrets_and_pod_creation(
    cluster: Cluster, tmp_path: Path
) -> None:
    install(cluster)
    kubeconfig = service_account_kubeconfig(cluster, tmp_path / "sa.kubeconfig")
    from kubernetes import config

    api = config.new_client_from_config(config_file=kubeconfig)
    try:
        core = client.CoreV1Api(api)
        core.list_namespaced_pod(NAMESPACE)  # allowed: it watches pods
        for attempt in (
            lambda: core.list_secret_for_all_namespaces(),
            lambda: core.read_namespaced_secret("anything", NAMESPACE),
            lambda: core.create_namespaced_pod(
                NAMESPACE,
                {
                    "metadata": {"name": "sneaky"},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                },
            ),
            lambda: core.delete_namespaced_pod("anything", NAMESPACE),
        ):
            with pytest.raises(ApiException) as denied:
                attempt()
            assert denied.value.status == 403
    finally:
        api.close()
