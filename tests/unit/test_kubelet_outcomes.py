"""decide_run on pods as a real kubelet reported them (tests/unit/kubelet/*.json, made by
tests/unit/kubelet/capture.py on the local plane's real node): every container counts,
every reason a pod does not start, every disruption."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from jobline.controller.cache import strip_event, strip_job, strip_pod
from jobline.core.clock import parse_time
from jobline.core.run_status import Decision, Observed, decide_run
from jobline.models import ContainerKind, Failure, Phase, Reason
from tests.unit.builders import job, pipeline, run

CAPTURES = Path(__file__).parent / "kubelet"
POLICY = {
    "rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
    ]
}


def captured(name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The pod and its Events as the operator's cache keeps them."""
    found = json.loads((CAPTURES / f"{name}.json").read_text())
    return strip_pod(found["pod"]), [strip_event(e) for e in found["events"]]


def decide(
    name: str,
    after: float = 5,
    the_job: dict[str, Any] | None = None,
    more_pods: list[dict[str, Any]] | None = None,
    events: bool = True,
) -> Decision:
    """The decision `after` seconds from the captured pod's creation."""
    pod, pod_events = captured(name)
    created = parse_time(pod["metadata"]["creationTimestamp"])
    assert created is not None
    seen = Observed(
        run(),
        pipeline(pendingDeadlineSeconds=600),
        strip_job(the_job or job(backoffLimit=0)),  # as the cache keeps it
        [pod, *(more_pods or [])],
        pod_events=pod_events if events else [],
        generation=1,
    )
    return decide_run(seen, created + dt.timedelta(seconds=after))


def condition(decision: Decision, kind: str) -> str | None:
    return next((c.status for c in decision.status.conditions if c.type == kind), None)


@pytest.mark.parametrize(
    ("capture", "reason", "says", "failure", "exit_code"),
    [
        (
            "init_failed",
            Reason.FAILED,
            'init container "prep" failed with exit code 4',
            Failure(container="prep", kind=ContainerKind.INIT, exit_code=4, reason="Error"),
            None,  # the main container never ran
        ),
        (
            "start_error",
            Reason.START_FAILED,
            'the main container "main" could not start (StartError, exit code 128): '
            "failed to create containerd task",
            Failure(container="main", kind=ContainerKind.MAIN, exit_code=128, reason="StartError"),
            None,
        ),
        (
            "termination_message",
            Reason.FAILED,
            'the main container "main" failed with exit code 3: '
            "the warehouse refused the load: quota exceeded",
            Failure(container="main", kind=ContainerKind.MAIN, exit_code=3, reason="Error"),
            3,
        ),
        (
            "fallback_to_logs",
            Reason.FAILED,
            "failed with exit code 2: extracting connection refused: warehouse:5432",
            Failure(container="main", kind=ContainerKind.MAIN, exit_code=2, reason="Error"),
            2,
        ),
        (
            "sidecar_running_main_failed",  # the sidecar, stopped after main, is not the cause
            Reason.FAILED,
            'the main container "main" failed with exit code 1',
            Failure(container="main", kind=ContainerKind.MAIN, exit_code=1, reason="Error"),
            1,
        ),
    ],
)
def test_a_failed_container_is_named_with_the_kubelets_words(
    capture: str, reason: Reason, says: str, failure: Failure, exit_code: int | None
) -> None:
    decision = decide(capture)
    status = decision.status
    assert (status.phase, status.reason) == (Phase.ERROR, reason)
    assert says in (status.message or ""), status.message
    assert (status.failure, status.exit_code) == (failure, exit_code)
    assert condition(decision, "Stalled") == "True"
    assert not decision.delete_job  # the Job has failed by itself: it is kept for a look


def test_the_program_that_never_ran_has_no_start_time() -> None:
    # The kubelet reports startedAt 1970-01-01 for a StartError.
    assert decide("start_error").status.start_time is None


def test_the_log_of_an_init_container_that_failed_is_read() -> None:
    read = decide("init_failed").read_log
    assert read is not None and read.final
    assert read.container == "prep"
    main_failed = decide("termination_message").read_log
    assert main_failed is not None and main_failed.container is None  # the main one


@pytest.mark.parametrize(
    ("capture", "reason", "says"),
    [
        ("missing_secret", Reason.CONFIG_ERROR, 'secret "warehouse-creds" not found'),
        (
            "missing_configmap_volume",
            Reason.MOUNT_FAILED,
            'MountVolume.SetUp failed for volume "c" : configmap "tap-config" not found',
        ),
        (
            "sidecar_image_absent",
            Reason.IMAGE_PULL_FAILED,
            "cannot pull image 'registry.jobline.invalid/warehouse-proxy:1.0' of sidecar "
            '"proxy": Container image',
        ),
    ],
)
def test_a_pod_that_cannot_start_says_why_and_ends_at_the_deadline(
    capture: str, reason: Reason, says: str
) -> None:
    waiting = decide(capture, after=5)
    assert (waiting.status.phase, waiting.status.reason) == (Phase.QUEUED, reason)
    assert says in (waiting.status.message or ""), waiting.status.message
    assert condition(waiting, "Stalled") == "True"  # a person's fix is needed
    assert not waiting.delete_job
    assert waiting.recheck_after is not None and 590 < waiting.recheck_after < 600
    ended = decide(capture, after=601)
    assert (ended.status.phase, ended.status.reason) == (Phase.ERROR, reason)
    assert says in (ended.status.message or "")
    assert "pendingDeadlineSeconds, 600 s" in (ended.status.message or "")
    assert ended.delete_job  # the Job would go on trying


def test_a_mount_failure_is_known_only_from_the_pods_events() -> None:
    without = decide("missing_configmap_volume", events=False).status
    assert (without.phase, without.reason) == (Phase.QUEUED, Reason.QUEUED)


def test_an_invalid_image_name_ends_the_run_at_once() -> None:
    decision = decide("invalid_image_name", after=5)
    status = decision.status
    assert (status.phase, status.reason) == (Phase.ERROR, Reason.IMAGE_PULL_FAILED)
    assert "must be lowercase" in (status.message or "")
    assert decision.delete_job


@pytest.mark.parametrize(
    ("capture", "reason", "says"),
    [
        ("evicted", Reason.EVICTED, "evicted (EvictionByEvictionAPI: Eviction API: evicting)"),
        ("preempted", Reason.PREEMPTED, "preempted for a pod of higher priority"),
    ],
)
def test_a_disruption_is_not_the_programs_failure(capture: str, reason: Reason, says: str) -> None:
    status = decide(capture).status
    assert (status.phase, status.reason) == (Phase.ERROR, reason)
    assert says in (status.message or ""), status.message
    assert status.exit_code == 137  # it ran, and was killed
    assert status.failure is None  # not the program's failure


def test_a_pod_failure_policy_that_ignores_a_drain_lets_the_run_go_on() -> None:
    ignoring = job(backoffLimit=0, podFailurePolicy=POLICY)
    alone = decide("evicted", the_job=ignoring).status
    assert (alone.phase, alone.reason) == (Phase.RUNNING, Reason.RUNNING)
    assert "attempt 1 ended: the run's pod was evicted" in (alone.message or "")
    pod, _ = captured("evicted")
    later = pod["metadata"]["creationTimestamp"].replace("02:14", "02:15")
    replacement = {**pod, "metadata": {**pod["metadata"], "name": "evicted-2", "uid": "u2",
                                       "creationTimestamp": later, "deletionTimestamp": None},
                   "status": {"phase": "Pending"}}  # fmt: skip
    next_pod = decide("evicted", after=90, the_job=ignoring, more_pods=[replacement]).status
    assert (next_pod.phase, next_pod.reason) == (Phase.QUEUED, Reason.QUEUED)
    assert next_pod.attempts == 1
    # Its end recorded, the evicted pod is released and goes; the replacement runs.
    running = {**replacement, "status": {"phase": "Running", "containerStatuses": [
        {"name": "main", "state": {"running": {"startedAt": later}}}]}}  # fmt: skip
    the_run = run()
    the_run.status.pod_name, the_run.status.attempts = pod["metadata"]["name"], 1
    seen = Observed(the_run, pipeline(), strip_job(ignoring), [running], generation=1)
    again = decide_run(seen, parse_time(later) or dt.datetime.now(dt.UTC)).status
    assert (again.phase, again.attempts, again.pod_name) == (Phase.RUNNING, 2, "evicted-2")


def test_a_pod_failure_policy_rule_that_fails_the_job_is_named() -> None:
    rule = (
        "Container main for pod jobline-capture/termination-message failed with exit code 3 "
        "matching FailJob rule at index 1"
    )
    failing = job(
        [
            {
                "type": "FailureTarget",
                "status": "True",
                "reason": "PodFailurePolicy",
                "message": rule,
            }
        ],
        backoffLimit=3,
        podFailurePolicy=POLICY,
    )
    status = decide("termination_message", the_job=failing).status
    assert (status.phase, status.reason) == (Phase.ERROR, Reason.POD_FAILURE_POLICY)
    assert rule in (status.message or "")
    assert "the warehouse refused the load" in (status.message or "")
    assert status.failure is not None and status.failure.exit_code == 3


def test_a_run_whose_init_container_runs_is_running_and_its_pending_clock_stopped() -> None:
    # On the real node: the first init container has finished, the second one runs
    # (the kubelet's Init:1/2). A long init (fetching data, waiting for a database) is
    # work, not a pod that never started: past pendingDeadlineSeconds it goes on.
    decision = decide("init_running", after=900)  # pendingDeadlineSeconds is 600
    status = decision.status
    assert (status.phase, status.reason) == (Phase.RUNNING, "Initializing")
    assert status.pod_name is not None
    assert status.message is not None
    assert "wait-for-db" in status.message and "Init:1/2" in status.message
    assert status.start_time is None  # the main container has not started
