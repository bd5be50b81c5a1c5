"""The apiserver's audit log of the local plane, read from a mark on."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.conftest import CLUSTER_SH


class AuditLog:
    def __init__(self) -> None:
        out = subprocess.run(["bash", str(CLUSTER_SH), "audit-log"], capture_output=True, text=True)
        self.path = Path(out.stdout.strip())
        self.offset = self.path.stat().st_size

    def events(self) -> Iterator[dict[str, Any]]:
        """Completed requests since the mark (the log rotates at 100 MB, far above what a
        test writes)."""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            for line in f:
                try:
                    event: dict[str, Any] = json.loads(line)
                except ValueError:
                    continue  # the line being written
                if event.get("stage") == "ResponseComplete":
                    yield event

    def operator_events(self) -> Iterator[dict[str, Any]]:
        """The operator's completed requests since the mark."""
        for event in self.events():
            if event.get("userAgent", "").startswith("jobline-operator/"):
                yield event

    def operator_requests_about(self, namespace: str, names: set[str]) -> list[str]:
        """The operator's requests that name one of `names` (the object, or its Job)."""
        found = []
        for event in self.operator_events():
            ref = event.get("objectRef") or {}
            if ref.get("namespace") == namespace and ref.get("name") in names:
                found.append(f"{event['verb']} {ref.get('resource')}/{ref.get('name')}")
        return found

    def operator_lists(self) -> set[str]:
        """The resources (as "pipelinejobs") the operator listed whole since the mark, and
        was answered: a `list`, never a `watch`. Its informers list at start and after a
        watch's version expired (410 Gone); a watch that merely ended is resumed."""
        return {
            str((event.get("objectRef") or {}).get("resource"))
            for event in self.operator_events()
            if event.get("verb") == "list"
            and (event.get("responseStatus") or {}).get("code", 500) < 400
        }
