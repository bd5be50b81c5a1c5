"""The Pipeline and PipelineJob resources: the single source of their CRDs.

`make crds` turns these models into crds/*.yaml (see jobline.crds). What a
schema can say is said here, with CEL rules (`x-kubernetes-validations`)
where a plain schema cannot; the operator checks the rest when it acts.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any

from kube_custom_resource import schema
from kube_custom_resource.custom_resource import CustomResource
from pydantic import BaseModel, Field, StringConstraints

API_GROUP = "jobline.dev"
API_VERSION = "v1alpha1"
CATEGORY = "jobline"
LABEL_PIPELINE = f"{API_GROUP}/pipeline"
LABEL_PIPELINEJOB = f"{API_GROUP}/pipelinejob"
# On runs created by a schedule: the cron time they are for (RFC 3339).
ANNOTATION_SCHEDULED_TIME = f"{API_GROUP}/scheduled-time"
# On every pod of a run: the API keeps a pod that ended or was deleted until the operator
# has recorded how it ended (exit code, last log lines, why it was deleted).
POD_FINALIZER = f"{API_GROUP}/record-outcome"
# On every pod of a run, until the operator sees the pod belongs to the run's Job while the
# run goes on: a pod the Job controller makes for a Job already deleted (its cache behind
# the deletion) is never scheduled, so it cannot run beside the run that took the slot.
SCHEDULING_GATE = f"{API_GROUP}/run-active"
# Kueue (kueue.x-k8s.io) admits a Job that carries its LocalQueue's name in this label.
KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_VERSION = "v1beta2"
LABEL_KUEUE_QUEUE = f"{KUEUE_GROUP}/queue-name"
LABEL_KUEUE_PRIORITY = f"{KUEUE_GROUP}/priority-class"
MESSAGE_MAX_BYTES = 1024  # status.message and condition messages

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
VALUE_MAX = 4096  # bounds CEL cost and status size
MAX_VARIABLES = 100  # declared by a Pipeline, or given to a run


def to_json(model: BaseModel, **options: Any) -> dict[str, Any]:
    """The model as the API's JSON (camelCase keys)."""
    return BaseModel.model_dump(model, mode="json", by_alias=True, **options)


def drop_empty(value: Any) -> Any:
    """The API's JSON without empty fields: what a status write would change, compared."""
    if isinstance(value, dict):
        return {k: drop_empty(v) for k, v in value.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [drop_empty(v) for v in value]
    return value


def cel(rule: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"x-kubernetes-validations": [{"rule": rule, "message": message, **extra}]}


class Phase(schema.Enum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    COMPLETE = "COMPLETE"
    ERROR = "ERROR"
    STOPPED = "STOPPED"

    @property
    def terminal(self) -> bool:
        return self.value in TERMINAL_PHASES


# Phases that never change again, as they appear in status.phase.
TERMINAL_PHASES = ("COMPLETE", "ERROR", "STOPPED")


class ConcurrencyPolicy(schema.Enum):
    QUEUE = "Queue"
    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


class ContainerKind(schema.Enum):
    INIT = "init"
    SIDECAR = "sidecar"  # an init container with restartPolicy: Always
    MAIN = "main"  # the first container of the template
    OTHER = "other"  # the template's other containers

    @property
    def described(self) -> str:
        return {
            "init": "init container",
            "sidecar": "sidecar",
            "main": "the main container",
            "other": "container",
        }[self.value]


class TriggerType(schema.Enum):
    MANUAL = "Manual"
    SCHEDULE = "Schedule"


class Reason(enum.StrEnum):
    """Why a run is in its phase (status.reason): one word a program can match."""

    QUEUED = "Queued"  # the Job exists; its pod has not started yet
    WAITING_FOR_RUN = "WaitingForRun"  # other runs hold the Pipeline's slots
    PIPELINE_NOT_FOUND = "PipelineNotFound"
    INVALID_VARIABLES = "InvalidVariables"
    JOB_REJECTED = "JobRejected"
    INVALID_TEMPLATE = "InvalidTemplate"  # the Pipeline's template cannot make a Job
    POD_CREATION_FAILED = "PodCreationFailed"
    WAITING_FOR_ADMISSION = "WaitingForAdmission"  # Kueue holds the Job: no quota yet
    INADMISSIBLE = "Inadmissible"  # Kueue cannot admit it: its LocalQueue or ClusterQueue
    KUEUE_NOT_INSTALLED = "KueueNotInstalled"  # the Pipeline names a queue; no Kueue here
    INITIALIZING = "Initializing"  # an init container of the pod runs; the main one waits
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    PENDING_DEADLINE_EXCEEDED = "PendingDeadlineExceeded"
    IMAGE_PULL_FAILED = "ImagePullFailed"
    CONFIG_ERROR = "ConfigError"  # a Secret, ConfigMap or key the pod refers to is missing
    MOUNT_FAILED = "MountFailed"  # a volume cannot be attached or mounted
    START_FAILED = "StartFailed"  # the runtime cannot create or start a container
    UNSCHEDULABLE = "Unschedulable"
    OOM_KILLED = "OOMKilled"
    POD_FAILURE_POLICY = "PodFailurePolicy"  # a rule of the Pipeline's podFailurePolicy
    EVICTED = "Evicted"  # the Eviction API (a drain) or the kubelet (node pressure, shutdown)
    PREEMPTED = "Preempted"  # the scheduler made room for a pod of higher priority
    POD_DELETED = "PodDeleted"  # someone deleted the pod
    NODE_LOST = "NodeLost"
    STOPPED = "Stopped"
    REPLACED = "Replaced"
    FORBIDDEN = "Forbidden"


# Reasons of a QUEUED run that will not start without a person's fix (a Secret to create,
# an image to push, a quota to raise): Stalled, and Degraded for Argo CD, until it starts
# or pendingDeadlineSeconds ends it.
NEEDS_ATTENTION = frozenset(
    {
        Reason.IMAGE_PULL_FAILED,
        Reason.CONFIG_ERROR,
        Reason.MOUNT_FAILED,
        Reason.START_FAILED,
        Reason.UNSCHEDULABLE,
        Reason.POD_CREATION_FAILED,
        Reason.INADMISSIBLE,
        Reason.KUEUE_NOT_INSTALLED,
    }
)

# Reasons for which the operator itself ended a run whose Job had not ended: the
# operator deletes that Job, and the run's slot is free at once.
# A QUEUED run that needs a fix ends so at pendingDeadlineSeconds.
ENDED_BY_OPERATOR = NEEDS_ATTENTION | {
    Reason.PENDING_DEADLINE_EXCEEDED,
    Reason.STOPPED,
    Reason.REPLACED,
}


# --- Pipeline -------------------------------------------------------------


class EnvVar(schema.BaseModel, extra="allow"):
    """A core/v1 EnvVar: a name and a value or valueFrom."""

    name: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="The variable's name."
    )


class Container(schema.BaseModel, extra="allow"):
    """A core/v1 Container; the apiserver validates the rest when the Job is created."""

    name: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="The container's name."
    )
    image: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="The container image."
    )
    env: schema.Optional[list[EnvVar]] = Field(
        None, description="Environment variables; the run's variables are added to them."
    )


class PodSpec(schema.BaseModel, extra="allow"):
    """A core/v1 PodSpec; validated in full when the Job is created."""

    init_containers: schema.Optional[list[Container]] = Field(
        None, description="Containers run before the main one; they get the variables too."
    )

    containers: Annotated[list[Container], Field(min_length=1)] = Field(
        description="The pod's containers; the first one is the run's main container."
    )


class TemplateMetadata(schema.BaseModel, extra="allow"):
    labels: dict[str, str] = Field(default_factory=dict, description="Labels of every run's pod.")
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations of every run's pod."
    )


class PodTemplate(schema.BaseModel, extra="allow"):
    """A core/v1 PodTemplateSpec, as in a Job."""

    metadata: TemplateMetadata = Field(
        default_factory=TemplateMetadata, description="Labels and annotations."
    )
    spec: PodSpec = Field(description="The pod's spec.")


class Variable(
    schema.BaseModel,
    json_schema_extra=cel(
        "!has(self.enum) || !has(self.default) || self.default in self.enum",
        "a variable's default must be one of its enum values",
        fieldPath=".default",
    ),
):
    """A declared input of the pipeline, injected into every container as an env var."""

    name: Annotated[str, StringConstraints(pattern=ENV_NAME, max_length=128)] = Field(
        description="The environment variable's name."
    )
    default: schema.Optional[Annotated[str, StringConstraints(max_length=VALUE_MAX)]] = Field(
        None, description="The value when a run gives none."
    )
    description: schema.Optional[str] = Field(None, description="What the variable is for.")
    required: bool = Field(False, description="A run must give a value (or there is a default).")
    enum: schema.Optional[
        Annotated[
            list[Annotated[str, StringConstraints(max_length=VALUE_MAX)]], Field(max_length=100)
        ]
    ] = Field(None, description="The only values allowed.")


class History(schema.BaseModel):
    successful_runs: Annotated[int, Field(ge=0)] = Field(
        10, description="Finished successful PipelineJobs kept."
    )
    failed_runs: Annotated[int, Field(ge=0)] = Field(
        10, description="Finished failed or stopped PipelineJobs kept."
    )


class LogsSpec(schema.BaseModel):
    tail_lines: Annotated[int, Field(ge=1, le=1000)] = Field(
        100, description="Lines of log kept in each PipelineJob's status (1-1000)."
    )
    archive: bool = Field(
        True,
        description="Keep every line of each run's log in the log archive, where the "
        "operator has one configured; false keeps only the status's tail.",
    )


class PodFailureAction(schema.Enum):
    FAIL_JOB = "FailJob"
    IGNORE = "Ignore"
    COUNT = "Count"


class ExitCodeOperator(schema.Enum):
    IN = "In"
    NOT_IN = "NotIn"


class OnExitCodes(
    schema.BaseModel,
    json_schema_extra=cel(
        "self.operator != 'In' || !self.values.exists(v, v == 0)",
        "exit code 0 cannot be matched with In: it means success",
        fieldPath=".values",
    ),
):
    container_name: schema.Optional[str] = Field(
        None, description="Only this container's exit code; none: any container's."
    )
    operator: ExitCodeOperator = Field(description="In or NotIn.")
    values: Annotated[
        list[int],
        Field(min_length=1, max_length=255, json_schema_extra={"x-kubernetes-list-type": "set"}),
    ] = Field(description="Exit codes, each once.")


class OnPodCondition(schema.BaseModel):
    type: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="A pod condition, e.g. DisruptionTarget (evicted, preempted, node lost)."
    )
    status: str = Field("True", description="True, False or Unknown.")


class PodFailureRule(
    schema.BaseModel,
    json_schema_extra=cel(
        "has(self.onExitCodes) != has(self.onPodConditions)",
        "a rule has either onExitCodes or onPodConditions",
    ),
):
    action: PodFailureAction = Field(
        description="FailJob: the run fails at once; Ignore: the pod does not count "
        "against backoffLimit and is replaced; Count: as without a rule."
    )
    on_exit_codes: schema.Optional[OnExitCodes] = Field(
        None, description="Matches a failed pod by a container's exit code."
    )
    on_pod_conditions: schema.Optional[
        Annotated[list[OnPodCondition], Field(min_length=1, max_length=20)]
    ] = Field(None, description="Matches a failed pod by its conditions.")


class PodFailurePolicy(schema.BaseModel):
    """The Job's podFailurePolicy, passed through: which failed pods end the run at once,
    and which do not count against backoffLimit (a disruption)."""

    rules: Annotated[list[PodFailureRule], Field(min_length=1, max_length=20)] = Field(
        description="Checked in order; the first that matches a failed pod applies."
    )


class KueueSpec(schema.BaseModel):
    """Where Kueue admits the Pipeline's runs."""

    local_queue: Annotated[str, StringConstraints(pattern=DNS_SUBDOMAIN, max_length=63)] = Field(
        description="The Kueue LocalQueue of the run's namespace that admits its Job (the "
        "Job's kueue.x-k8s.io/queue-name label)."
    )
    priority_class: schema.Optional[
        Annotated[str, StringConstraints(pattern=DNS_SUBDOMAIN, max_length=253)]
    ] = Field(
        None,
        description="A Kueue WorkloadPriorityClass for its Workloads (the Job's "
        "kueue.x-k8s.io/priority-class label).",
    )


class PipelineSpec(schema.BaseModel):
    description: schema.Optional[str] = Field(None, description="What the pipeline does.")
    template: PodTemplate = Field(description="The pod template of every run's Job.")
    variables: Annotated[
        list[Variable],
        Field(
            max_length=MAX_VARIABLES,
            # Names are unique: the apiserver rejects a duplicate key of a map-type list.
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        ),
    ] = Field(default_factory=list, description="Declared inputs, injected as env vars.")
    schedule: schema.Optional[Annotated[str, StringConstraints(min_length=1)]] = Field(
        None, description="A 5-field cron schedule; none: runs are started by hand."
    )
    time_zone: Annotated[str, StringConstraints(min_length=1)] = Field(
        "UTC", description="The IANA time zone of the schedule."
    )
    suspend: bool = Field(False, description="True: the schedule creates no runs.")
    starting_deadline_seconds: schema.Optional[Annotated[int, Field(ge=0)]] = Field(
        None, description="A missed scheduled run older than this is skipped."
    )
    concurrency_policy: ConcurrencyPolicy = Field(
        ConcurrencyPolicy.QUEUE,
        description="What a run does when maxConcurrentRuns are running: Queue, Allow, "
        "Forbid or Replace.",
    )
    max_concurrent_runs: Annotated[int, Field(ge=1)] = Field(
        1, description="Runs of this pipeline that may run at once (Queue, Forbid, Replace)."
    )
    backoff_limit: Annotated[int, Field(ge=0, le=100)] = Field(
        0, description="Pod retries within one run."
    )
    active_deadline_seconds: schema.Optional[Annotated[int, Field(ge=1)]] = Field(
        None, description="Run timeout: the run is STOPPED after this long."
    )
    pending_deadline_seconds: Annotated[int, Field(ge=1)] = Field(
        600,
        description="Longest a pod may stay unstarted (image pull, a missing Secret, a "
        "volume, no node) before the run fails.",
    )
    pod_failure_policy: schema.Optional[PodFailurePolicy] = Field(
        None,
        description="The Job's podFailurePolicy: rules by exit code or pod condition "
        "(FailJob, Ignore, Count). A failed pod is replaced only once it has stopped "
        "(podReplacementPolicy: Failed).",
    )
    kueue: schema.Optional[KueueSpec] = Field(
        None,
        description="Runs are admitted by Kueue: their Jobs are created suspended, in this "
        "LocalQueue, after the Pipeline's own concurrencyPolicy gave them a slot.",
    )
    history: History = Field(default_factory=History, description="Finished runs kept.")
    logs: LogsSpec = Field(default_factory=LogsSpec, description="The log tail kept in status.")


class Condition(schema.BaseModel):
    type: str = Field(description="The condition's type.")
    status: str = Field(description="True, False or Unknown.")
    reason: schema.Optional[str] = Field(None, description="Machine-readable reason.")
    message: schema.Optional[str] = Field(None, description="Human-readable message.")
    last_transition_time: schema.Optional[dt.datetime] = Field(
        None, description="When the status last changed."
    )
    observed_generation: schema.Optional[int] = Field(
        None, description="The generation this condition was set for."
    )

    def transitioned_from(self, current: list[Condition], now: dt.datetime) -> Condition:
        """This condition with its lastTransitionTime: kept from the current condition of
        its type when the status is unchanged, else `now`."""
        old = next((c for c in current if c.type == self.type), None)
        unchanged = old is not None and old.status == self.status
        time = old.last_transition_time if old is not None and unchanged else now
        return self.model_copy(update={"last_transition_time": time})


class LastRun(schema.BaseModel):
    name: str
    phase: schema.Optional[Phase] = None
    exit_code: schema.Optional[int] = None
    start_time: schema.Optional[dt.datetime] = None
    end_time: schema.Optional[dt.datetime] = None


class PipelineStatus(schema.BaseModel):
    observed_generation: schema.Optional[int] = None
    conditions: list[Condition] = Field(default_factory=list)
    active_runs: list[str] = Field(default_factory=list, description="Runs holding a slot.")
    active_count: int = Field(0, description="How many runs hold a slot (activeRuns' length).")
    queued_runs: int = Field(0, description="Runs waiting for a slot.")
    last_run: schema.Optional[LastRun] = None
    last_schedule_time: schema.Optional[dt.datetime] = None
    next_schedule_time: schema.Optional[dt.datetime] = None
    last_successful_time: schema.Optional[dt.datetime] = None


# kube-custom-resource configures CRDs through class keywords and a metaclass
# that mypy cannot follow.
class Pipeline(  # type: ignore[call-arg,metaclass]
    CustomResource,
    version=API_VERSION,
    short_names=["pl"],
    subresources={"status": {}},
    printer_columns=[
        {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule"},
        {"name": "Suspend", "type": "boolean", "jsonPath": ".spec.suspend"},
        {"name": "Active", "type": "integer", "jsonPath": ".status.activeCount"},
        {"name": "Last Run", "type": "string", "jsonPath": ".status.lastRun.name"},
        {"name": "Last Status", "type": "string", "jsonPath": ".status.lastRun.phase"},
    ],
):
    """What to run, when, and with which limits."""

    spec: PipelineSpec
    status: PipelineStatus = Field(default_factory=PipelineStatus)


# --- PipelineJob ----------------------------------------------------------


class PipelineRef(schema.BaseModel):
    name: Annotated[str, StringConstraints(pattern=DNS_SUBDOMAIN, max_length=253)] = Field(
        description="The Pipeline's name, in the PipelineJob's namespace."
    )


class RunKueueSpec(schema.BaseModel):
    """Kueue's treatment of this one run."""

    priority_class: Annotated[str, StringConstraints(pattern=DNS_SUBDOMAIN, max_length=253)] = (
        Field(
            description="A Kueue WorkloadPriorityClass for this run instead of its "
            "Pipeline's (an urgent re-run); only for a Pipeline with spec.kueue."
        )
    )


class PipelineJobSpec(
    schema.BaseModel,
    json_schema_extra=cel(
        "!has(oldSelf.stopped) || !oldSelf.stopped || (has(self.stopped) && self.stopped)",
        "spec.stopped cannot be set back to false once a run is stopped",
    ),
):
    pipeline_ref: Annotated[
        PipelineRef,
        Field(json_schema_extra=cel("self == oldSelf", "spec.pipelineRef is immutable")),
    ] = Field(description="The Pipeline this is a run of.")
    variables: Annotated[
        dict[str, Annotated[str, StringConstraints(max_length=VALUE_MAX)]],
        Field(max_length=MAX_VARIABLES),
    ] = Field(default_factory=dict, description="Values for the Pipeline's declared variables.")
    priority: int = Field(0, description="Higher runs first when queued.")
    kueue: schema.Optional[RunKueueSpec] = Field(
        None, description="Kueue's priority for this run (its Pipeline's spec.kueue otherwise)."
    )
    stopped: bool = Field(False, description="Set true to stop the run.")


class Trigger(schema.BaseModel):
    type: TriggerType = Field(TriggerType.MANUAL, description="Manual or Schedule.")
    scheduled_time: schema.Optional[dt.datetime] = Field(
        None, description="The cron time a scheduled run was created for."
    )


class Output(schema.BaseModel, extra="allow"):
    name: str
    records: schema.Optional[int] = None


class LogArchive(schema.BaseModel):
    location: str = Field(description="Where the run's whole log is kept (s3://bucket/prefix/).")
    lines: int = Field(0, description="Lines of the log in the archive.")
    bytes: int = Field(0, description="Bytes of the log in the archive.")
    error: schema.Optional[str] = Field(
        None,
        description="Why the archive lacks lines, as the store said it: absent once it "
        "has caught up (it retries while the pod exists, for at most 10 minutes after "
        "the pod ends, then says which lines are not archived).",
    )
    error_time: schema.Optional[dt.datetime] = Field(
        None, description="When writing to the archive first failed with `error`."
    )
    incomplete: bool = Field(
        False,
        description="The operator stopped trying: the lines from `lines` on are not "
        "archived (`error` says why).",
    )


class LogTail(schema.BaseModel):
    container: schema.Optional[str] = Field(
        None,
        description="The container whose log this is, when it is not the main one: the "
        "one that failed before the main container ran.",
    )
    sequence: int = Field(0, description="The number of the first kept line (from 0).")
    lines: list[str] = Field(default_factory=list, description="The last lines of the log.")
    total_lines: int = Field(
        0, description="Lines of the run's latest pod that the operator has read so far."
    )
    truncated: bool = Field(
        False,
        description="The kept lines are not the whole log: lines were dropped before "
        "`sequence`, or cut at 2 KiB.",
    )
    update_time: schema.Optional[dt.datetime] = None
    read_error: schema.Optional[str] = Field(
        None,
        description="Why the last read of the log failed (the kubelet unreachable, "
        "pods/log refused), as the apiserver said it; absent once a read succeeds.",
    )
    read_error_time: schema.Optional[dt.datetime] = Field(
        None, description="When reading the log first failed with `readError`."
    )
    missing_before: list[int] = Field(
        default_factory=list,
        description="Lines are missing before each of these line numbers: the kubelet "
        "rotated the log file away before the operator read them (how many is not known; "
        "the first 20 places are listed).",
    )
    archive: schema.Optional[LogArchive] = Field(
        None, description="The run's whole log in the log archive, when there is one."
    )


class Failure(schema.BaseModel):
    """Which container failed the run, and how, as the kubelet reported it."""

    container: str = Field(description="The container's name.")
    kind: ContainerKind = Field(description="init, sidecar, main or other.")
    exit_code: schema.Optional[int] = Field(None, description="Its exit code.")
    reason: schema.Optional[str] = Field(
        None, description="The kubelet's terminated reason: Error, OOMKilled, StartError..."
    )


class KueueStatus(schema.BaseModel):
    """What Kueue did with the run's Job."""

    workload: schema.Optional[str] = Field(None, description="Kueue's Workload of the Job.")
    cluster_queue: schema.Optional[str] = Field(
        None, description="The ClusterQueue that admitted it (last admission)."
    )
    evictions: int = Field(
        0, description="How often Kueue evicted it after admitting it (preemptions included)."
    )


class PipelineJobStatus(schema.BaseModel):
    phase: schema.Optional[Phase] = None
    reason: schema.Optional[str] = None
    message: schema.Optional[str] = None
    exit_code: schema.Optional[int] = None
    start_time: schema.Optional[dt.datetime] = None
    end_time: schema.Optional[dt.datetime] = None
    duration_seconds: schema.Optional[float] = None
    duration: schema.Optional[str] = Field(
        None, description="durationSeconds for people, with units (1h2m3s)."
    )
    attempts: int = 0
    job_name: schema.Optional[str] = None
    pod_name: schema.Optional[str] = None
    main_container: schema.Optional[str] = Field(
        None,
        description="The container whose exit code and log are the run's: the first one of "
        "the Pipeline's pod template when the run's Job was created.",
    )
    queue_position: schema.Optional[int] = None
    kueue: schema.Optional[KueueStatus] = Field(
        None, description="Kueue's admission of the Job, for runs of a Pipeline with kueue."
    )
    trigger: schema.Optional[Trigger] = None
    variables: dict[str, str] = Field(default_factory=dict)
    failure: schema.Optional[Failure] = Field(
        None, description="The container whose end failed the run, when one did."
    )
    outputs: list[Output] = Field(default_factory=list)
    logs: schema.Optional[LogTail] = None
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: schema.Optional[int] = None


class PipelineJob(  # type: ignore[call-arg,metaclass]
    CustomResource,
    version=API_VERSION,
    short_names=["pj"],
    subresources={"status": {}},
    printer_columns=[
        {"name": "Pipeline", "type": "string", "jsonPath": ".spec.pipelineRef.name"},
        {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Reason", "type": "string", "jsonPath": ".status.reason"},
        {"name": "Exit", "type": "integer", "jsonPath": ".status.exitCode"},
        {"name": "Started", "type": "date", "jsonPath": ".status.startTime"},
        {"name": "Duration", "type": "string", "jsonPath": ".status.duration"},
    ],
):
    """One run of a Pipeline."""

    spec: PipelineJobSpec
    status: PipelineJobStatus = Field(default_factory=PipelineJobStatus)
