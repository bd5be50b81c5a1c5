"""Operator log lines carry the namespace and name of the object they concern."""

import json
import subprocess
import sys

SCRIPT = """
import logging, kopf
from jobline.controller.cache import object_ref
kopf.configure(log_format=kopf.LogFormat.{fmt}, log_prefix={prefix})
meta = {{"namespace": "data", "name": "nightly-1", "uid": "u"}}
run = {{"kind": "PipelineJob", "metadata": meta}}
logging.getLogger("jobline.controller").info("created Job %s", "nightly-1", extra=object_ref(run))
"""


def run(fmt: str, prefix: bool) -> str:
    code = SCRIPT.format(fmt=fmt, prefix=prefix)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stderr.strip()


def test_json_lines_carry_the_object() -> None:
    record = json.loads(run("JSON", False))
    assert record["message"] == "created Job nightly-1"
    assert record["object"]["namespace"] == "data"
    assert record["object"]["name"] == "nightly-1"


def test_text_lines_are_prefixed_with_the_object() -> None:
    assert "[data/nightly-1] created Job nightly-1" in run("FULL", True)
