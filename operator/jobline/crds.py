"""CustomResourceDefinitions generated from jobline.models (`make crds`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kube_custom_resource.registry import CustomResourceRegistry

from jobline import models

HEADER = "# Generated from operator/jobline/models.py by `make crds`; do not edit.\n"


def definitions() -> dict[str, dict[str, Any]]:
    """The CRDs by file name: pipelines.yaml, pipelinejobs.yaml."""
    registry = CustomResourceRegistry(models.API_GROUP, [models.CATEGORY])
    registry.discover_models(models)
    crds = {}
    for crd in registry:
        manifest: dict[str, Any] = crd.kubernetes_resource()
        crds[f"{manifest['spec']['names']['plural']}.yaml"] = manifest
    return dict(sorted(crds.items(), reverse=True))  # pipelines before pipelinejobs


class _PlainDumper(yaml.SafeDumper):
    """Writes a repeated part of a schema out in full: no YAML anchors and aliases, which
    few readers of a CRD expect."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(manifest: dict[str, Any]) -> str:
    return HEADER + yaml.dump(manifest, Dumper=_PlainDumper, sort_keys=False, width=100)


def render_all() -> str:
    """All CRDs as one multi-document YAML stream (`jobline crds`)."""
    return "---\n".join(render(m) for m in definitions().values())


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, manifest in definitions().items():
        path = directory / name
        path.write_text(render(manifest))
        written.append(path)
    return written
