"""The checked-in CRDs are exactly what the models generate."""

from pathlib import Path

import yaml

from jobline import crds

CRDS = Path(__file__).resolve().parents[2] / "crds"


def test_checked_in_crds_match_the_models() -> None:
    for name, manifest in crds.definitions().items():
        assert (CRDS / name).read_text() == crds.render(manifest), (
            f"crds/{name} is stale: run `make crds` and commit the result"
        )
    assert sorted(p.name for p in CRDS.glob("*.yaml")) == sorted(crds.definitions())


def test_the_chart_installs_the_same_crds() -> None:
    chart = CRDS.parent / "charts" / "jobline" / "crds"
    for name in crds.definitions():
        assert (chart / name).read_text() == (CRDS / name).read_text(), (
            f"charts/jobline/crds/{name} is stale: run `make crds` and commit the result"
        )


def test_crds_carry_names_columns_and_status() -> None:
    by_kind = {m["spec"]["names"]["kind"]: m for m in crds.definitions().values()}
    for kind, short in (("Pipeline", "pl"), ("PipelineJob", "pj")):
        spec = by_kind[kind]["spec"]
        assert spec["names"]["shortNames"] == [short]
        assert spec["names"]["categories"] == ["jobline"]
        [version] = spec["versions"]
        assert version["subresources"] == {"status": {}}
    columns = [
        c["name"] for c in by_kind["PipelineJob"]["spec"]["versions"][0]["additionalPrinterColumns"]
    ]
    assert columns == ["Pipeline", "Status", "Reason", "Exit", "Started", "Duration", "Age"]


def test_render_all_is_a_yaml_stream_of_both() -> None:
    docs = list(yaml.safe_load_all(crds.render_all()))
    assert [d["metadata"]["name"] for d in docs] == [
        "pipelines.jobline.dev",
        "pipelinejobs.jobline.dev",
    ]
