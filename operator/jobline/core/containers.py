"""What each container of a run's pod says, as the kubelet reports it: which container
decided a failure and how, and why a pod does not start. Pods are the API's JSON.

The pod's containers are read in the order the kubelet runs them: init containers
(native sidecars among them: init containers with `restartPolicy: Always`), then the
main container (the template's first), then the other containers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jobline.core.workload import latest_event
from jobline.models import ContainerKind, Failure, Reason

Obj = dict[str, Any]

# Waiting reasons of a container that is stuck rather than just new, by the run's reason.
IMAGE_PULL_REASONS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "ImageInspectError",
    "RegistryUnavailable",
    "SignatureValidationFailed",
}
CONFIG_REASONS = {"CreateContainerConfigError"}  # a missing Secret, ConfigMap or key
START_REASONS = {
    "CreateContainerError",
    "RunContainerError",
    "PreCreateHookError",
    "PreStartHookError",
    "PostStartHookError",
    "CrashLoopBackOff",  # a sidecar that keeps failing holds the pod in its init phase
}
# Waiting reasons no retry of the kubelet can cure: the pod's images are fixed by the
# Job's template, so the run ends at once rather than at pendingDeadlineSeconds.
HOPELESS_REASONS = {"InvalidImageName"}
# Terminated reasons of a container that never ran its program.
NEVER_RAN_REASONS = {"StartError", "ContainerCannotRun"}
# The pod's own Events that say why it cannot start, watched as the Job's FailedCreate is.
POD_EVENT_REASONS = ("FailedMount", "FailedAttachVolume")
DETAIL_MAX = 600  # bytes of a kubelet's or program's message quoted in the run's message


@dataclass(frozen=True)
class Container:
    name: str
    kind: ContainerKind
    image: str | None
    status: Obj  # its containerStatus; empty before the kubelet reports one

    @property
    def state(self) -> Obj:
        state: Obj = self.status.get("state") or {}
        return state

    def described(self) -> str:
        """As a person reads it: the main container "main", init container "prep"."""
        return f'{self.kind.described} "{self.name}"'


@dataclass(frozen=True)
class Stuck:
    """Why a pod has not started: the run's reason and a message a person can act on."""

    reason: Reason
    message: str
    hopeless: bool = False  # it cannot go away: the run may end now


def containers(pod: Obj) -> Iterator[Container]:
    """The pod's containers with their statuses, in the order the kubelet runs them."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    init_statuses = {s.get("name"): s for s in status.get("initContainerStatuses") or []}
    statuses = {s.get("name"): s for s in status.get("containerStatuses") or []}
    for c in spec.get("initContainers") or []:
        kind = ContainerKind.SIDECAR if c.get("restartPolicy") == "Always" else ContainerKind.INIT
        yield Container(c["name"], kind, c.get("image"), init_statuses.get(c["name"]) or {})
    for i, c in enumerate(spec.get("containers") or []):
        kind = ContainerKind.MAIN if i == 0 else ContainerKind.OTHER
        yield Container(c["name"], kind, c.get("image"), statuses.get(c["name"]) or {})


@dataclass(frozen=True)
class Initializing:
    """The pod runs its init containers: which one now, and the kubelet's Init:N/M."""

    container: str
    done: int  # init containers completed (a sidecar: started)
    total: int

    def message(self) -> str:
        return f'init container "{self.container}" is running (Init:{self.done}/{self.total})'


def initializing(pod: Obj) -> Initializing | None:
    """The init container that runs, while the pod's main container has not started; None
    before any has started (the pod has not started: its pending deadline runs on)."""
    inits = [c for c in containers(pod) if c.kind in (ContainerKind.INIT, ContainerKind.SIDECAR)]
    done = sum(1 for c in inits if _completed(c))
    running = next((c for c in inits if c.state.get("running") and not _completed(c)), None)
    if running is None:
        return None
    return Initializing(running.name, done, len(inits))


def _completed(container: Container) -> bool:
    """An init container that ended with 0, or a sidecar that has started."""
    if container.kind == ContainerKind.SIDECAR:
        return bool(container.status.get("started"))
    return (container.state.get("terminated") or {}).get("exitCode") == 0


def failed_container(pod: Obj) -> Container | None:
    """The container whose end failed the pod: the first init container that failed (the
    rest never ran), else the main container, else another one; a sidecar only when no
    other container failed (the kubelet restarts a failing sidecar)."""
    failed = [c for c in containers(pod) if _failed(c)]
    for kinds in ((ContainerKind.INIT,), (ContainerKind.MAIN,), (ContainerKind.OTHER,)):
        found = next((c for c in failed if c.kind in kinds), None)
        if found is not None:
            return found
    return next((c for c in failed if c.kind == ContainerKind.SIDECAR), None)


def _failed(container: Container) -> bool:
    terminated = container.state.get("terminated") or {}
    return bool(terminated) and terminated.get("exitCode") != 0


def failure_of(container: Container) -> Failure:
    terminated = container.state.get("terminated") or {}
    return Failure(
        container=container.name,
        kind=container.kind,
        exit_code=terminated.get("exitCode"),
        reason=terminated.get("reason"),
    )


def failure_message(container: Container) -> str:
    """How the container ended, in the kubelet's or the program's own words:
    'init container "prep" failed with exit code 4: missing input' or
    'the main container "main" could not start (StartError, exit code 128): exec ...'."""
    terminated = container.state.get("terminated") or {}
    code, reason = terminated.get("exitCode"), terminated.get("reason") or ""
    if reason in NEVER_RAN_REASONS:
        head = f"{container.described()} could not start ({reason}, exit code {code})"
    elif reason == "OOMKilled":
        head = f"{container.described()} ran out of memory (OOMKilled, exit code {code})"
    else:
        shown = "" if reason in ("", "Error") else f" ({reason})"
        head = f"{container.described()} failed with exit code {code}{shown}"
    detail = termination_message(terminated)
    return f"{head}: {detail}" if detail else head


def termination_message(terminated: Obj) -> str:
    """The container's termination message (the runtime's words, or the program's own
    from /dev/termination-log or its last log lines), cut to DETAIL_MAX bytes; empty when
    there is none or when it is the program's outputs (JSON with "outputs")."""
    message = str(terminated.get("message") or "").strip()
    if not message:
        return ""
    try:
        parsed = json.loads(message)
    except ValueError:
        parsed = None  # plain text: the program's own explanation
    if isinstance(parsed, dict) and "outputs" in parsed:
        return ""
    return shorten(" ".join(message.split()))


def shorten(text: str, limit: int = DETAIL_MAX) -> str:
    """`text`, or its last `limit` bytes: a runtime's error and a program's last log lines
    say what matters at their end."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return "... " + data[len(data) - limit + 4 :].decode(errors="ignore")


def stuck(pod: Obj, events: list[Obj] | None = None) -> Stuck | None:
    """Why the pod has not started, when it is stuck rather than just new: a container
    waiting for a reason that needs a person (an image, a Secret, the runtime), a volume
    that does not mount (the pod's Events), no node for it. The first container in the
    kubelet's order that is stuck is the one named."""
    for container in containers(pod):
        waiting = container.state.get("waiting") or {}
        reason = waiting.get("reason")
        detail = shorten(str(waiting.get("message") or reason or ""))
        if reason in IMAGE_PULL_REASONS:
            of = "" if container.kind == ContainerKind.MAIN else f" of {container.described()}"
            return Stuck(
                Reason.IMAGE_PULL_FAILED,
                f"cannot pull image {container.image!r}{of}: {detail}",
                hopeless=reason in HOPELESS_REASONS,
            )
        if reason in CONFIG_REASONS:
            return Stuck(
                Reason.CONFIG_ERROR,
                f"{container.described()} cannot start: {detail} ({reason}); create what "
                "it refers to, or fix the reference",
            )
        if reason in START_REASONS:
            return Stuck(
                Reason.START_FAILED, f"{container.described()} cannot start ({reason}): {detail}"
            )
    # The kubelet mounts volumes before it makes the pod's sandbox: once that is ready, an
    # older mount failure is past.
    mount = None if _condition(pod, "PodReadyToStartContainers") else _latest(events or [])
    if mount is not None:
        detail = shorten(" ".join(str(mount.get("message") or "").split()))
        return Stuck(Reason.MOUNT_FAILED, f"a volume of the pod cannot be mounted: {detail}")
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
            message = f"no node can run the pod: {cond.get('message', '')}"
            return Stuck(Reason.UNSCHEDULABLE, message)
    return None


def _condition(pod: Obj, kind: str) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def _latest(events: list[Obj]) -> Obj | None:
    return latest_event([e for e in events if e.get("reason") in POD_EVENT_REASONS])


def never_ran(pod: Obj) -> bool:
    """The main container has no state of having run: it never started."""
    main = next((c for c in containers(pod) if c.kind == ContainerKind.MAIN), None)
    if main is None:
        return True
    terminated = main.state.get("terminated") or {}
    return not main.state.get("running") and (
        not terminated or terminated.get("reason") in NEVER_RAN_REASONS
    )
