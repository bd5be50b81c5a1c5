"""Kueue's webhook configurations for the local plane, on stdout: those of batch/v1 Jobs
and of Kueue's own kinds from Kueue's manifests, called by URL on 127.0.0.1 (Kueue runs
as a process there, not behind a Service) with the CA of its certificate.

    kueue_webhooks.py MANIFESTS_YAML BASE_URL CA_FILE | kubectl apply -f -
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import yaml

# Kueue's manifests hold a webhook for every framework it can manage; the plane runs the
# batch/Job integration only.
KEPT = ("-batch-v1-job", "-kueue-x-k8s-io-")


def main(manifests: str, base_url: str, ca_file: str) -> None:
    ca_bundle = base64.b64encode(Path(ca_file).read_bytes()).decode()
    out = []
    for doc in yaml.safe_load_all(Path(manifests).read_text()):
        if not doc or not doc.get("kind", "").endswith("WebhookConfiguration"):
            continue
        webhooks = []
        for hook in doc.get("webhooks") or []:
            path = hook["clientConfig"]["service"]["path"]
            if not any(part in path for part in KEPT):
                continue
            hook["clientConfig"] = {"url": base_url + path, "caBundle": ca_bundle}
            webhooks.append(hook)
        out.append(
            {
                "apiVersion": doc["apiVersion"],
                "kind": doc["kind"],
                "metadata": {"name": "jobline-kueue"},
                "webhooks": webhooks,
            }
        )
    yaml.safe_dump_all(out, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
