"""`helm uninstall` (last in the suite: it removes the operator) leaves no pod of an
ended run held by the operator's finalizer, so namespaces and runs can still be deleted."""

from __future__ import annotations

from jobline.models import POD_FINALIZER
from tests.conftest import Cluster
from tests.e2e.conftest import NAMESPACE, RELEASE, RealJobline, Release, helm, wait_gone


def test_uninstall_leaves_no_pod_of_an_ended_run_held(
    cluster: Cluster, jl: RealJobline, release: Release
) -> None:
    jl.real_pipeline("last", "echo the last run before uninstall")
    jl.start("last-1", "last")
    assert jl.wait_done("last-1", timeout=120)["phase"] == "COMPLETE"
    result = helm(cluster, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait")
    assert result.returncode == 0, result.stderr
    wait_gone("the operator's pods", release.operator_pods)
    held = [
        f"{p.metadata.namespace}/{p.metadata.name}"
        for p in release.core.list_pod_for_all_namespaces().items
        if POD_FINALIZER in (p.metadata.finalizers or [])
        and p.status.phase in ("Succeeded", "Failed")
    ]
    assert held == []
    # With no operator left, deleting the ended run still works: nothing holds it.
    jl.delete("last-1")
    wait_gone("the run, its Job and its pod", lambda: jl.pods("last-1") or jl.jobs())
