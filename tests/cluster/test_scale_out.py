"""Past one process: operators each serving their own namespaces share a cluster, and
neither touches the other's runs (docs/scale.md)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.cluster.jobline_fixtures import Jobline, Operator
from tests.conftest import Cluster

pytestmark = pytest.mark.usefixtures("sim")


@pytest.fixture
def two_namespaces(cluster: Cluster) -> Iterator[tuple[str, str]]:
    core = client.CoreV1Api(cluster.api)
    names = (f"t-a-{uuid.uuid4().hex[:8]}", f"t-b-{uuid.uuid4().hex[:8]}")
    for name in names:
        core.create_namespace({"metadata": {"name": name}})
    try:
        yield names
    finally:
        for name in names:
            core.delete_namespace(name)


def untouched(jl: Jobline, run: str) -> bool:
    """No status and no Job: no operator has acted on the run."""
    return not jl.status(run) and all(j.metadata.name != run for j in jl.jobs())


def test_two_operators_each_serve_only_their_own_namespaces(
    cluster: Cluster, operator: Operator, two_namespaces: tuple[str, str], tmp_path: Path
) -> None:
    ns_a, ns_b = two_namespaces
    a, b = Jobline(cluster, ns_a), Jobline(cluster, ns_b)
    op_a = Operator(cluster.kubeconfig, tmp_path / "a.log", namespaces=(ns_a,))
    op_b = Operator(cluster.kubeconfig, tmp_path / "b.log", namespaces=(ns_b,))
    operator.stop()  # the session's operator serves every namespace
    try:
        for jl in (a, b):
            jl.pipeline("etl", {"sim.jobline.dev/duration": "1s"})
        op_a.start()
        a.start("a-1", "etl")
        b.start("b-1", "etl")
        assert a.wait_done("a-1")["phase"] == "COMPLETE"
        time.sleep(3)
        assert untouched(b, "b-1")
        op_b.start()
        assert b.wait_done("b-1")["phase"] == "COMPLETE"
        op_a.stop()
        a.start("a-2", "etl")
        b.start("b-2", "etl")
        assert b.wait_done("b-2")["phase"] == "COMPLETE"
        time.sleep(3)
        assert untouched(a, "a-2")
    finally:
        op_a.stop()
        op_b.stop()
        operator.start()


def test_a_namespace_the_operator_may_not_watch_holds_up_only_itself(
    cluster: Cluster, operator: Operator, two_namespaces: tuple[str, str], tmp_path: Path
) -> None:
    """Serving namespaces A and B with permissions in A only: B's watches fail (403),
    and A's runs are served all the same."""
    from tests.cluster.chart import CHART, RELEASE, helm

    allowed, forbidden = two_namespaces
    rendered = helm(None, "template", RELEASE, str(CHART), f"--set=watchNamespaces={{{allowed}}}")
    assert rendered.returncode == 0, rendered.stderr
    import yaml

    [role] = [
        d
        for d in yaml.safe_load_all(rendered.stdout)
        if d and d["kind"] == "Role" and d["metadata"]["namespace"] == allowed
    ]
    core, rbac = client.CoreV1Api(cluster.api), client.RbacAuthorizationV1Api(cluster.api)
    core.create_namespaced_service_account(allowed, {"metadata": {"name": "op"}})
    rbac.create_namespaced_role(allowed, {"metadata": {"name": "op"}, "rules": role["rules"]})
    rbac.create_namespaced_role_binding(
        allowed,
        {
            "metadata": {"name": "op"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "op"},
            "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": allowed}],
        },
    )
    token = core.create_namespaced_service_account_token(
        "op", allowed, {"spec": {"audiences": [], "expirationSeconds": 3600}}
    ).status.token
    kubeconfig = _token_kubeconfig(cluster, token, tmp_path / "op.kubeconfig")
    a = Jobline(cluster, allowed)
    limited = Operator(kubeconfig, tmp_path / "limited.log", namespaces=(allowed, forbidden))
    operator.stop()
    try:
        limited.start()
        a.pipeline("etl", {"sim.jobline.dev/duration": "1s"})
        a.start("a-1", "etl")
        assert a.wait_done("a-1", timeout=60)["phase"] == "COMPLETE"
    finally:
        limited.stop()
        operator.start()
    assert "forbidden" in (tmp_path / "limited.log").read_text().lower()


def _token_kubeconfig(cluster: Cluster, token: str, path: Path) -> str:
    import yaml

    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    entry = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [entry],
        "users": [{"name": "op", "user": {"token": token}}],
        "contexts": [{"name": "op", "context": {"cluster": entry["name"], "user": "op"}}],
        "current-context": "op",
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)
