import datetime as dt

import pytest

from jobline.core.jobs import build_job, job_name, short_name
from jobline.models import Trigger, TriggerType
from tests.unit.builders import pipeline, run


@pytest.mark.parametrize("length", [1, 62, 63, 64, 200])
def test_job_names_are_deterministic_and_short(length: int) -> None:
    name = "r" * length
    assert job_name(name) == job_name(name)
    assert len(job_name(name)) <= 63
    if length <= 63:
        assert job_name(name) == name


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
    scheduled = run()
    scheduled.status.trigger = Trigger(
        type=TriggerType.SCHEDULE, scheduled_time=dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)
    )
    env = build_job(pipeline(), scheduled, {})["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "JOBLINE_SCHEDULED_TIME", "value": "2026-03-01T02:00:00Z"} in env


def test_the_template_is_not_modified() -> None:
    source = pipeline()
    build_job(source, run(), {"A": "1"})
    assert source.spec.template.spec.containers[0].model_extra == {
        "env": [{"name": "START_DATE", "value": "template"}]
    }
