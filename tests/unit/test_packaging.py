"""The image, the chart and the package agree on names and versions (Docker does not
run here, so these are the checks that keep the image build honest)."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_chart_app_version_is_the_package_version() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((REPO / "charts/jobline/Chart.yaml").read_text())
    assert chart["appVersion"] == version


def test_chart_default_image_is_the_one_make_image_builds() -> None:
    values = yaml.safe_load((REPO / "charts/jobline/values.yaml").read_text())
    makefile = (REPO / "Makefile").read_text()
    image = re.search(r"^IMAGE \?= ([^:]+):", makefile, re.MULTILINE)
    assert image and values["image"]["repository"] == image.group(1)


def test_dockerfile_runs_the_operator_as_the_charts_non_root_user() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    values = yaml.safe_load((REPO / "charts/jobline/values.yaml").read_text())
    uid = values["podSecurityContext"]["runAsUser"]
    assert f"USER {uid}:{uid}" in dockerfile
    assert 'ENTRYPOINT ["jobline"]' in dockerfile
    assert "-c constraints.txt" in dockerfile  # the same pins as the tests ran with
