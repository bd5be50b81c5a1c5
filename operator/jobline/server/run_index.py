"""Every run of the cluster, without its log lines, for the Jobs API's lists.

Listing a namespace's runs from the apiserver on each poll of an open dashboard
downloads every run with its log tail (up to 32 KiB each) to show 50 of them: with
5,000 runs, one open page cost 97 lists and 378 MiB a minute. The apiserver can
neither sort runs by age nor leave the tail out. So the server keeps one watch of all
runs, stored without their log lines, and sorts, filters and pages them in memory.

The watch is the server's only power of its own, and it is read-only. Who sees which
runs is still the apiserver's decision: before a list is answered, the apiserver is
asked, with the caller's own token, whether the caller may list runs in that namespace
(a SelfSubjectAccessReview). A yes is remembered for ALLOWED_FOR seconds, briefly, as the
apiserver's own webhook authorizer remembers its answers. A no sends the list to the
apiserver as the caller, so its 403 is the apiserver's own, naming the user and verb.

Where the index does not reach (a namespace it does not watch, the server's identity may
not list runs, the index switched off) lists are read whole from the apiserver with the
caller's token.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

from kubernetes import client

from jobline.client.runs import Runs
from jobline.kube.informer import Informer
from jobline.kube.store import Obj, Store, by_pipeline_ref, strip_metadata

ALLOWED_FOR = 10.0  # seconds a caller's "may list runs here" is trusted without asking again


def strip_for_list(run: Obj) -> Obj:
    """A run as lists show it: no managedFields, no log lines (their count stays)."""
    stripped = strip_metadata(run)
    status = stripped.get("status")
    if isinstance(status, dict) and isinstance(status.get("logs"), dict):
        logs = {k: v for k, v in status["logs"].items() if k != "lines"}
        stripped["status"] = {**status, "logs": logs}
    return stripped


def _by_namespace(run: Obj) -> list[str]:
    return [run["metadata"]["namespace"]]


class RunIndex:
    """The runs of the cluster for lists, and who may list them."""

    def __init__(
        self,
        api: client.ApiClient | None,
        namespaces: list[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Watches `api`'s runs in `namespaces` (None: all); None for `api`: no index."""
        self.store = Store(
            {"namespace": _by_namespace, "pipeline": by_pipeline_ref}, strip=strip_for_list
        )
        self.informer = Informer(api, "PipelineJob", namespaces, self.store) if api else None
        self._clock = clock
        self._allowed: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        if self.informer is not None:
            self.informer.start()

    def stop(self) -> None:
        if self.informer is not None:
            self.informer.stop()

    def ready(self, namespace: str) -> bool:
        """Whether the index holds every run of `namespace` (its first list is done)."""
        return self.informer is not None and self.informer.synced_for(namespace)

    def runs(self, caller: Runs, credential: str | None, pipeline: str | None) -> list[Obj]:
        """The runs of the caller's namespace (of one Pipeline), stripped, in no order.
        A caller who may not list them is sent to the apiserver, whose 403 says who they
        are and what they lack."""
        if not self.ready(caller.namespace) or not self._may_list(caller, credential):
            return caller.runs(pipeline)
        if pipeline:
            return self.store.by("pipeline", (caller.namespace, pipeline))
        return self.store.by("namespace", caller.namespace)

    def remember(self, run: Obj) -> None:
        """A run this server just created or changed, so that the caller's next list
        shows it even before the watch brings it."""
        if self.ready(run["metadata"]["namespace"]):
            self.store.put(run)

    def _may_list(self, caller: Runs, credential: str | None) -> bool:
        who = hashlib.sha256((credential or "").encode()).hexdigest()
        key = (who, caller.namespace)
        now = self._clock()
        with self._lock:
            if self._allowed.get(key, 0.0) > now:
                return True
        if not caller.may("list", "pipelinejobs"):
            return False
        with self._lock:
            # Expired answers go as new ones come: the dict holds recent callers only.
            self._allowed = {k: t for k, t in self._allowed.items() if t > now}
            self._allowed[key] = now + ALLOWED_FOR
        return True
