import datetime as dt

import pytest

from jobline.core.jobs import build_job, job_name, short_name
from jobline.models import Trigger, TriggerType
from tests.unit.builders import pipeline, run


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (1, "r"),
        (63, "r" * 63),
        # Longer: a prefix and the first 10 hex digits of the whole name's SHA-256, so the
        # same run maps to the same Job after a restart.
        (64, "r" * 52 + "-c9ea6f42c8"),
        (200, "r" * 52 + "-06331deab7"),
    ],
)
def test_job_names_are_at_most_63_characters_and_fixed(length: int, expected: str) -> None:
    assert job_name("r" * length) == expected


def test_no_run_name_makes_a_job_name_over_63_characters() -> None:
    assert max(len(job_name("r" * length)) for length in range(1, 254)) == 63


def test_long_names_that_share_a_prefix_do_not_collide() -> None:
    assert short_name("a" * 70 + "x") != short_name("a" * 70 + "y")


def test_job_shape() -> None:
    job = build_job(
        pipeline(backoffLimit=2, activeDeadlineSeconds=60),
        run(),
        {"START_DATE": "2024-06-01", "MODE": "full"},
    )
    assert job["metadata"]["name"] == "sales-1"
    assert job["metadata"]["namespace"] == "data"
    labels = {"jobline.dev/pipeline": "sales", "jobline.dev/pipelinejob": "sales-1"}
    assert job["metadata"]["labels"] == labels
    [owner] = job["metadata"]["ownerReferences"]
    assert owner["kind"] == "PipelineJob"
    assert owner["uid"] == "run-uid"
    assert owner["controller"] is True
    assert job["spec"]["backoffLimit"] == 2
    assert job["spec"]["activeDeadlineSeconds"] == 60
    template = job["spec"]["template"]
    assert template["metadata"]["labels"] == {"team": "data", **labels}
    assert template["spec"]["restartPolicy"] == "Never"
    for container in template["spec"]["containers"]:
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env == {
            "START_DATE": "2024-06-01",  # the variable overrides the template's own value
            "MODE": "full",
            "JOBLINE_PIPELINE": "sales",
            "JOBLINE_PIPELINEJOB": "sales-1",
        }
        assert [e["name"] for e in container["env"]].count("START_DATE") == 1


def test_no_deadline_unless_set() -> None:
    assert "activeDeadlineSeconds" not in build_job(pipeline(), run(), {})["spec"]


def test_scheduled_runs_get_their_time() -> None:
    trigger = Trigger(
        type=TriggerType.SCHEDULE, scheduled_time=dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)
    )
    env = build_job(pipeline(), run(), {}, trigger)["spec"]["template"]["spec"]["containers"][0][
        "env"
    ]
    assert {"name": "JOBLINE_SCHEDULED_TIME", "value": "2026-03-01T02:00:00Z"} in env


def test_the_template_is_not_modified() -> None:
    source = pipeline()
    build_job(source, run(), {"A": "1"})
    env = source.spec.template.spec.containers[0].env or []
    assert [e.model_dump(exclude_none=True) for e in env] == [
        {"name": "START_DATE", "value": "template"}
    ]
    assert "finalizers" not in source.spec.template.metadata.model_extra


def test_every_pod_carries_the_operators_finalizer() -> None:
    meta = build_job(pipeline(), run(), {})["spec"]["template"]["metadata"]
    assert meta["finalizers"] == ["jobline.dev/record-outcome"]
