"""What an open dashboard page costs the apiserver: requests per minute, counted from the
local plane's audit log, for each main page left open in a headless Chromium.

    .venv/bin/python benchmarks/dashboard.py [--minutes 1]

Needs the local plane (KUBECONFIG unset), chromium and chromedriver, and no other
operator running: it starts its own operator and `jobline server --credentials token`,
and signs in as a ServiceAccount of its own, so the audit log tells its requests apart.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client, config
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import local

PIPELINE = {
    "apiVersion": "jobline.dev/v1alpha1",
    "kind": "Pipeline",
    "spec": {
        "template": {
            "metadata": {"annotations": {}},
            "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["true"]}]},
        },
        "concurrencyPolicy": "Allow",
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0, help="How long each page stays open.")
    parser.add_argument("--screenshots", help="Save a screenshot of each page in this folder.")
    parser.add_argument(
        "--ended-runs",
        type=int,
        default=0,
        help="Also this many finished runs, each with a 100-line log tail in its status "
        "(a namespace with a long history), on Pipelines of 1000 runs each.",
    )
    args = parser.parse_args()
    kubeconfig = local.kubeconfig()
    audit = local.Audit(local.audit_log())
    if audit.path is None:
        sys.exit("counts requests from the local plane's audit log: unset KUBECONFIG")
    local.install_crds(kubeconfig)
    api = config.new_client_from_config(config_file=kubeconfig)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    rbac = client.RbacAuthorizationV1Api(api)
    ns = f"dash-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    if args.ended_runs:
        add_ended_runs(custom, ns, args.ended_runs)
    operator = local.start_operator(kubeconfig, f"--namespace={ns}")
    port = local.free_port()
    server = local.start_server(kubeconfig, port, "--credentials", "token")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        # Three Pipelines with 20 finished runs, and one run that logs for 10 minutes.
        for name, annotations in (
            ("nightly", {}),
            ("hourly", {}),
            ("long", {"sim.jobline.dev/duration": "600s", "sim.jobline.dev/log-lines": "600",
                      "sim.jobline.dev/log-over": "600s"}),
        ):  # fmt: skip
            body = {**PIPELINE, "metadata": {"name": name}}
            body["spec"]["template"]["metadata"]["annotations"] = annotations
            custom.create_namespaced_custom_object("jobline.dev", "v1alpha1", ns, "pipelines", body)
        runs = [("nightly", f"nightly-{i}") for i in range(10)]
        runs += [("hourly", f"hourly-{i}") for i in range(10)] + [("long", "long-1")]
        for pipeline, name in runs:
            custom.create_namespaced_custom_object(
                "jobline.dev", "v1alpha1", ns, "pipelinejobs",
                {"apiVersion": "jobline.dev/v1alpha1", "kind": "PipelineJob",
                 "metadata": {"name": name}, "spec": {"pipelineRef": {"name": pipeline}}},
            )  # fmt: skip
        core.create_namespaced_service_account(ns, {"metadata": {"name": "viewer"}})
        rbac.create_namespaced_role_binding(
            ns,
            {
                "metadata": {"name": "viewer"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": ns}],
            },
        )  # fmt: skip
        token = core.create_namespaced_service_account_token(
            "viewer", ns, {"spec": {"audiences": [], "expirationSeconds": 3600}}
        ).status.token
        user = f"system:serviceaccount:{ns}:viewer"
        time.sleep(15)  # the runs finish, the long one starts
        url = f"http://127.0.0.1:{port}"
        browser.get(f"{url}/static/app.css")
        browser.execute_script("sessionStorage.setItem('jobline.token', arguments[0])", token)
        runs_shown = 21 + args.ended_runs
        pages = [
            (f"namespace: Pipelines and {runs_shown} runs", f"{url}/#/ns/{ns}"),
            ("a Pipeline: its form and 10 runs", f"{url}/#/ns/{ns}/pipelines/nightly"),
            ("a RUNNING run and its log", f"{url}/#/ns/{ns}/jobs/long-1"),
            ("a finished run", f"{url}/#/ns/{ns}/jobs/nightly-0"),
        ]
        seconds = args.minutes * 60
        rows = []
        browser.set_window_size(1200, 800)
        for number, (title, page) in enumerate(pages):
            browser.get(page)
            time.sleep(5)  # loaded
            if args.screenshots:
                browser.save_screenshot(os.path.join(args.screenshots, f"page-{number}.png"))
            audit.mark()
            read0, cpu0 = local.bytes_read(server.pid), local.cpu_seconds(server.pid)
            time.sleep(seconds)
            counts = audit.counts(user=user)
            # The server's requests as itself (its index's watch), not as the viewer.
            own = sum((audit.counts(agents=("jobline-server/",)) - counts).values())
            read = (local.bytes_read(server.pid) - read0) / args.minutes / 2**20
            cpu = (local.cpu_seconds(server.pid) - cpu0) / args.minutes
            rss = local.rss_mib(server.pid)
            per_minute = sum(counts.values()) / args.minutes
            rows.append((title, per_minute, counts, own / args.minutes, read, cpu, rss))
        print(f"\nDashboard cost per open page ({local.machine()}), {args.minutes:g} min each:\n")
        print(
            "| page | apiserver requests per minute (as the viewer) | by kind "
            "| the server's own requests per minute | server reads (MiB per minute) "
            "| server CPU (s per minute) | server RSS (MiB) |\n|---|---|---|---|---|---|---|"
        )
        for title, per_minute, counts, own, read, cpu, rss in rows:
            kinds = ", ".join(f"{k} {n}" for k, n in Counter(counts).most_common())
            print(
                f"| {title} | {per_minute:.1f} | {kinds} | {own:.1f} | {read:.1f} | {cpu:.2f} "
                f"| {rss:.0f} |"
            )
    finally:
        browser.quit()
        server.terminate()
        operator.terminate()
        server.wait()
        operator.wait()
        core.delete_namespace(ns)


def add_ended_runs(custom: client.CustomObjectsApi, ns: str, count: int) -> None:
    """Finished runs as the operator leaves them (COMPLETE, a 100-line tail, the Pipeline's
    label and ownerReference), written before the operator starts, so it creates no Job."""
    tail = [
        f"{i:>6} rows loaded into the warehouse, batch ok, checksum {i * 7919:>12}"
        for i in range(100)
    ]
    names = [(f"history-{i // 1000}", f"history-{i // 1000}-{i % 1000}") for i in range(count)]
    owners = {}
    for pipeline in sorted({p for p, _ in names}):
        body = {**PIPELINE, "metadata": {"name": pipeline}}
        body["spec"] = {**body["spec"], "history": {"successfulRuns": 1000, "failedRuns": 1000}}
        created = custom.create_namespaced_custom_object(
            "jobline.dev", "v1alpha1", ns, "pipelines", body
        )
        owners[pipeline] = {
            "apiVersion": "jobline.dev/v1alpha1",
            "kind": "Pipeline",
            "name": pipeline,
            "uid": created["metadata"]["uid"],
        }

    def add(item: tuple[str, str]) -> None:
        pipeline, name = item
        custom.create_namespaced_custom_object(
            "jobline.dev", "v1alpha1", ns, "pipelinejobs",
            {"apiVersion": "jobline.dev/v1alpha1", "kind": "PipelineJob",
             "metadata": {"name": name, "labels": {"jobline.dev/pipeline": pipeline},
                          "ownerReferences": [owners[pipeline]]},
             "spec": {"pipelineRef": {"name": pipeline}}},
        )  # fmt: skip
        status = {
            "phase": "COMPLETE", "reason": "Completed", "message": "the pod exited 0",
            "exitCode": 0, "startTime": "2026-01-01T00:00:01Z", "endTime": "2026-01-01T00:01:01Z",
            "durationSeconds": 60.0, "attempts": 1, "mainContainer": "main",
            "logs": {"sequence": 900, "lines": tail, "totalLines": 1000},
        }  # fmt: skip
        custom.patch_namespaced_custom_object_status(
            "jobline.dev", "v1alpha1", ns, "pipelinejobs", name, {"status": status}
        )

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        for done, _ in enumerate(pool.map(add, names), 1):
            if done % 500 == 0:
                print(f"    {done}/{count} finished runs written", file=sys.stderr)
    print(f"    {count} finished runs in {time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
