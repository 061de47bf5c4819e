"""Pod, its spec and status; defaults and validation as Kubernetes applies them.

Defaults (pkg/apis/core/v1/defaults.go): container port protocol TCP,
imagePullPolicy Always for ``:latest`` or untagged images else IfNotPresent,
restartPolicy Always, terminationGracePeriodSeconds 30, dnsPolicy
ClusterFirst, probe timeout/period/success/failure 1/10/1/3.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from nodeagent.objects.meta import (
    IntOrString,
    LabelSelector,
    LocalObjectReference,
    Model,
    ObjectMeta,
    QuantityStr,
    ResourceList,
    merge_by,
)
from nodeagent.objects.podutil import default_pull_policy, pod_qos_class
from nodeagent.objects.quantity import parse_quantity
from nodeagent.objects.validation import (
    FieldError,
    Path,
    dns1123_label_errors,
    env_var_name_errors,
    port_name_errors,
    port_number_errors,
)

# --- spec ---------------------------------------------------------------------------------


class ContainerPort(Model):
    container_port: int
    name: str | None = None
    protocol: str = "TCP"
    host_port: int | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")


class ObjectFieldSelector(Model):
    field_path: str
    api_version: str | None = None


class KeySelector(Model):
    key: str
    name: str | None = None
    optional: bool | None = None


class ResourceFieldSelector(Model):
    resource: str
    container_name: str | None = None
    divisor: QuantityStr | None = None


class EnvVarSource(Model):
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    config_map_key_ref: KeySelector | None = None
    secret_key_ref: KeySelector | None = None


class EnvVar(Model):
    name: str
    value: str | None = None
    value_from: EnvVarSource | None = None


class EnvFromSource(Model):
    prefix: str | None = None
    config_map_ref: LocalObjectReference | None = None
    secret_ref: LocalObjectReference | None = None


class ResourceRequirements(Model):
    limits: ResourceList | None = None
    requests: ResourceList | None = None


class VolumeMount(Model):
    name: str
    mount_path: str
    read_only: bool | None = None
    sub_path: str | None = None
    mount_propagation: str | None = None


class HTTPHeader(Model):
    name: str
    value: str


class HTTPGetAction(Model):
    port: IntOrString
    path: str | None = None
    host: str | None = None
    scheme: str = "HTTP"
    http_headers: list[HTTPHeader] | None = None


class TCPSocketAction(Model):
    port: IntOrString
    host: str | None = None


class ExecAction(Model):
    command: list[str] | None = None


class GRPCAction(Model):
    port: int
    service: str | None = None


class Probe(Model):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    grpc: GRPCAction | None = None
    initial_delay_seconds: int = 0
    timeout_seconds: int = 1
    period_seconds: int = 10
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace_period_seconds: int | None = None


class LifecycleHandler(Model):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None


class Lifecycle(Model):
    post_start: LifecycleHandler | None = None
    pre_stop: LifecycleHandler | None = None


class Capabilities(Model):
    add: list[str] | None = None
    drop: list[str] | None = None


class SeccompProfile(Model):
    type: str
    localhost_profile: str | None = None


class Sysctl(Model):
    name: str
    value: str


class SecurityContext(Model):
    capabilities: Capabilities | None = None
    seccomp_profile: SeccompProfile | None = None
    proc_mount: str | None = None
    privileged: bool | None = None
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None
    read_only_root_filesystem: bool | None = None
    allow_privilege_escalation: bool | None = None


class Container(Model):
    name: str
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    ports: Annotated[list[ContainerPort] | None, merge_by("containerPort")] = None
    env: Annotated[list[EnvVar] | None, merge_by("name")] = None
    env_from: list[EnvFromSource] | None = None
    resources: ResourceRequirements | None = None
    volume_mounts: Annotated[list[VolumeMount] | None, merge_by("mountPath")] = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None
    lifecycle: Lifecycle | None = None
    termination_message_path: str = "/dev/termination-log"
    termination_message_policy: str = "File"
    image_pull_policy: str | None = None
    security_context: SecurityContext | None = None
    stdin: bool | None = None
    stdin_once: bool | None = None
    tty: bool | None = None


class EphemeralContainer(Container):
    """A container added to a running pod (``pods/ephemeralcontainers``, kubectl debug):
    never restarted, never probed, and with no ports or resources of its own.  With
    ``targetContainerName`` it shares that container's process namespace, so it sees
    (and may trace) its processes."""

    target_container_name: str | None = None


class KeyToPath(Model):
    key: str
    path: str
    mode: int | None = None


class EmptyDirVolumeSource(Model):
    medium: str | None = None
    size_limit: QuantityStr | None = None


class HostPathVolumeSource(Model):
    path: str
    type: str | None = None


class ConfigMapVolumeSource(Model):
    name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: int | None = 0o644
    optional: bool | None = None


class SecretVolumeSource(Model):
    secret_name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: int | None = 0o644
    optional: bool | None = None


class PersistentVolumeClaimVolumeSource(Model):
    claim_name: str
    read_only: bool | None = None


class GCEPersistentDiskVolumeSource(Model):
    pd_name: str
    fs_type: str | None = None
    partition: int | None = None
    read_only: bool | None = None


class NFSVolumeSource(Model):
    server: str
    path: str
    read_only: bool | None = None


class DownwardAPIVolumeFile(Model):
    path: str
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    mode: int | None = None


class DownwardAPIVolumeSource(Model):
    items: list[DownwardAPIVolumeFile] | None = None
    default_mode: int | None = None


class ServiceAccountTokenProjection(Model):
    audience: str | None = None
    expiration_seconds: int | None = 3600
    path: str


class KeysProjection(Model):
    """A ConfigMap's or Secret's keys in a projected volume."""

    name: str | None = None
    items: list[KeyToPath] | None = None
    optional: bool | None = None
    default_mode: None = None  # a projection has none: the volume's


class VolumeProjection(Model):
    secret: KeysProjection | None = None
    config_map: KeysProjection | None = None
    downward_api: DownwardAPIVolumeSource | None = Field(default=None, alias="downwardAPI")
    service_account_token: ServiceAccountTokenProjection | None = None


class ProjectedVolumeSource(Model):
    sources: list[VolumeProjection] | None = None
    default_mode: int | None = 0o644


VOLUME_SOURCES = ("empty_dir", "host_path", "config_map", "secret", "persistent_volume_claim",
                  "gce_persistent_disk", "nfs", "downward_api", "projected")
# A token lives at least ten minutes (the apiserver's minimum for a projected one).
MIN_TOKEN_SECONDS = 600


class Volume(Model):
    name: str
    empty_dir: EmptyDirVolumeSource | None = None
    host_path: HostPathVolumeSource | None = None
    config_map: ConfigMapVolumeSource | None = None
    secret: SecretVolumeSource | None = None
    persistent_volume_claim: PersistentVolumeClaimVolumeSource | None = None
    gce_persistent_disk: GCEPersistentDiskVolumeSource | None = None
    nfs: NFSVolumeSource | None = None
    downward_api: DownwardAPIVolumeSource | None = Field(default=None, alias="downwardAPI")
    projected: ProjectedVolumeSource | None = None


class Toleration(Model):
    key: str | None = None
    operator: str | None = None
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None


class NodeSelectorRequirement(Model):
    key: str
    operator: str
    values: list[str] | None = None


class NodeSelectorTerm(Model):
    match_expressions: list[NodeSelectorRequirement] | None = None
    match_fields: list[NodeSelectorRequirement] | None = None


class NodeSelector(Model):
    node_selector_terms: list[NodeSelectorTerm]


class PreferredSchedulingTerm(Model):
    weight: int
    preference: NodeSelectorTerm


class NodeAffinity(Model):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] | None = None


class PodAffinityTerm(Model):
    label_selector: LabelSelector | None = None
    namespaces: list[str] | None = None
    topology_key: str


class WeightedPodAffinityTerm(Model):
    weight: int
    pod_affinity_term: PodAffinityTerm


class PodAffinity(Model):
    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = None
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] | None = None


class Affinity(Model):
    node_affinity: NodeAffinity | None = None
    pod_affinity: PodAffinity | None = None
    pod_anti_affinity: PodAffinity | None = None


class PodSecurityContext(Model):
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None
    fs_group: int | None = None
    supplemental_groups: list[int] | None = None
    seccomp_profile: SeccompProfile | None = None
    sysctls: list[Sysctl] | None = None


class PodSpec(Model):
    containers: Annotated[list[Container] | None, merge_by("name")] = None
    init_containers: Annotated[list[Container] | None, merge_by("name")] = None
    ephemeral_containers: Annotated[list[EphemeralContainer] | None, merge_by("name")] = None
    volumes: Annotated[list[Volume] | None, merge_by("name", retain_keys=True)] = None
    restart_policy: str = "Always"
    termination_grace_period_seconds: int = 30
    active_deadline_seconds: int | None = None
    dns_policy: str = "ClusterFirst"
    node_selector: dict[str, str] | None = None
    service_account_name: str | None = None
    service_account: str | None = None
    automount_service_account_token: bool | None = None
    node_name: str | None = None
    host_network: bool | None = None
    host_pid: bool | None = Field(default=None, alias="hostPID")
    host_ipc: bool | None = Field(default=None, alias="hostIPC")
    hostname: str | None = None
    subdomain: str | None = None
    affinity: Affinity | None = None
    tolerations: list[Toleration] | None = None
    scheduler_name: str = "default-scheduler"
    priority: int | None = None
    priority_class_name: str | None = None
    preemption_policy: str | None = None
    security_context: PodSecurityContext | None = None
    image_pull_secrets: Annotated[list[LocalObjectReference] | None, merge_by("name")] = None
    enable_service_links: bool = True


# --- status -------------------------------------------------------------------------------


class ContainerStateWaiting(Model):
    reason: str | None = None
    message: str | None = None


class ContainerStateRunning(Model):
    started_at: str | None = None


class ContainerStateTerminated(Model):
    exit_code: int
    signal: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    container_id: str | None = Field(default=None, alias="containerID")


class ContainerState(Model):
    waiting: ContainerStateWaiting | None = None
    running: ContainerStateRunning | None = None
    terminated: ContainerStateTerminated | None = None


class ContainerStatus(Model):
    name: str
    state: ContainerState | None = None
    last_state: ContainerState | None = None
    ready: bool = False
    restart_count: int = 0
    image: str = ""
    image_id: str = Field(default="", alias="imageID")
    container_id: str | None = Field(default=None, alias="containerID")
    started: bool | None = None


class PodCondition(Model):
    type: str
    status: str
    last_probe_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class PodIP(Model):
    ip: str


class PodStatus(Model):
    phase: str | None = None
    conditions: Annotated[list[PodCondition] | None, merge_by("type")] = None
    message: str | None = None
    reason: str | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")
    host_ips: Annotated[list[PodIP] | None, merge_by("ip")] = Field(default=None,
                                                                     alias="hostIPs")
    pod_ip: str | None = Field(default=None, alias="podIP")
    pod_ips: Annotated[list[PodIP] | None, merge_by("ip")] = Field(default=None,
                                                                   alias="podIPs")
    start_time: str | None = None
    container_statuses: list[ContainerStatus] | None = None
    init_container_statuses: list[ContainerStatus] | None = None
    ephemeral_container_statuses: list[ContainerStatus] | None = None
    qos_class: str | None = None
    nominated_node_name: str | None = None


class Pod(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Pod"] = "Pod"
    metadata: ObjectMeta
    spec: PodSpec | None = None
    status: PodStatus | None = None

    def apply_defaults(self) -> None:
        if self.spec is None:
            self.spec = PodSpec()
        default_pod_spec(self.spec)
        # What Kubernetes' admission gives every pod (not a template): its priority
        # (none of a class here: 0) and policy.
        if self.spec.priority is None and not self.spec.priority_class_name:
            self.spec.priority = 0
        if self.spec.preemption_policy is None:
            self.spec.preemption_policy = "PreemptLowerPriority"
        if self.status is None:
            self.status = PodStatus(phase="Pending")
        if self.status.phase is None:
            self.status.phase = "Pending"
        if self.status.qos_class is None and self.spec.containers:
            self.status.qos_class = _qos_class(self.spec)

    def check(self) -> list[FieldError]:
        if self.spec is None:
            return [Path("spec").required()]
        return validate_pod_spec(self.spec, Path("spec"))

    def check_update(self, old: Pod) -> list[FieldError]:
        """Only images, activeDeadlineSeconds and added tolerations may change."""
        new_spec = _mutable_blanked(self.spec)
        old_spec = _mutable_blanked(old.spec)
        if new_spec != old_spec:
            return [Path("spec").forbidden(
                "pod updates may not change fields other than `spec.containers[*].image`, "
                "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, "
                "`spec.tolerations` (only additions to existing tolerations) or "
                "`spec.terminationGracePeriodSeconds`")]
        return []

    def check_ephemeral_update(self, old: Pod) -> list[FieldError]:
        """``pods/ephemeralcontainers``: containers may be added, never changed or removed
        (a running one could not be changed; its status would lie)."""
        new = {e.name: e for e in (self.spec.ephemeral_containers if self.spec else None) or []}
        errs = []
        for e in (old.spec.ephemeral_containers if old.spec else None) or []:
            if e.name not in new:
                errs.append(Path("spec").child("ephemeralContainers").forbidden(
                    f'existing ephemeral containers "{e.name}" may not be removed'))
            elif new[e.name] != e:
                errs.append(Path("spec").child("ephemeralContainers").forbidden(
                    f'existing ephemeral containers "{e.name}" may not be changed'))
        return errs


def _mutable_blanked(spec: PodSpec | None) -> dict[str, Any]:
    d = spec.dump() if spec else {}
    for key in ("containers", "initContainers"):
        for c in d.get(key) or []:
            c.pop("image", None)
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
        d.pop(key, None)
    # The scheduler binds a pending pod exactly once (the binding subresource).
    d.pop("nodeName", None)
    return d


# SetDefaults_Probe: a zero (Go's unset) is the model's default, never refused.
_PROBE_DEFAULTED = ("timeout_seconds", "period_seconds", "success_threshold",
                    "failure_threshold")


def default_pod_spec(spec: PodSpec) -> None:
    """Defaults of a pod's spec and of a template's alike."""
    if spec.security_context is None:  # Kubernetes defaults it to {} (kubectl debug reads it)
        spec.security_context = PodSecurityContext()
    # As a real cluster shows it.  The Deployment controller compares templates without
    # an empty resources, so templates stored before this default still match their
    # ReplicaSets.  (An ephemeral container may not have resources at all.)
    for c in [*(spec.containers or []), *(spec.init_containers or [])]:
        if c.resources is None:
            c.resources = ResourceRequirements()
    for c in [*(spec.containers or []), *(spec.init_containers or []),
              *(spec.ephemeral_containers or [])]:
        if c.image_pull_policy is None:
            c.image_pull_policy = default_pull_policy(c.image or "")
        for probe in (c.liveness_probe, c.readiness_probe, c.startup_probe):
            if probe is None:
                continue
            if probe.http_get and probe.http_get.path is None:
                probe.http_get.path = "/"
            for name in _PROBE_DEFAULTED:
                if getattr(probe, name) == 0:
                    setattr(probe, name, Probe.model_fields[name].default)


def _qos_class(spec: PodSpec) -> str:
    return pod_qos_class([{"resources": {"requests": c.resources.requests,
                                         "limits": c.resources.limits}}
                          if c.resources else {} for c in spec.containers or []])


# --- validation ---------------------------------------------------------------------------

RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]


def validate_pod_spec(spec: PodSpec, path: Path) -> list[FieldError]:
    errs: list[FieldError] = seccomp_errors(spec.security_context, path)
    if spec.security_context is not None and spec.security_context.sysctls:
        errs.append(path.child("securityContext").child("sysctls").forbidden(
            "sysctls are not supported by this runtime: it would not set them"))
    volume_names: set[str] = set()
    for i, v in enumerate(spec.volumes or []):
        vp = path.child("volumes").index(i)
        errs.extend(vp.child("name").invalid(v.name, e) for e in dns1123_label_errors(v.name))
        if v.name in volume_names:
            errs.append(vp.child("name").duplicate(v.name))
        volume_names.add(v.name)
        sources = [s for s in VOLUME_SOURCES if getattr(v, s) is not None]
        if not sources:
            errs.append(vp.required("must specify a volume type"))
        elif len(sources) > 1:
            errs.append(vp.forbidden("may not specify more than 1 volume type"))
        if v.persistent_volume_claim is not None and not v.persistent_volume_claim.claim_name:
            errs.append(vp.child("persistentVolumeClaim").child("claimName").required())
        for field, src in (("configMap", v.config_map), ("secret", v.secret),
                           ("downwardAPI", v.downward_api)):
            if src is not None:
                errs.extend(_projection_errors(src, vp.child(field)))
        if v.projected is not None:
            errs.extend(_projected_errors(v.projected, vp.child("projected")))
    if not spec.containers:
        errs.append(path.child("containers").required())
    names: set[str] = set()
    for group in ("containers", "init_containers"):
        camel = "containers" if group == "containers" else "initContainers"
        for i, c in enumerate(getattr(spec, group) or []):
            cp = path.child(camel).index(i)
            if c.name in names:
                errs.append(cp.child("name").duplicate(c.name))
            names.add(c.name)
            errs.extend(validate_container(c, cp, volume_names, init=group != "containers"))
    targets = set(names)
    for i, e in enumerate(spec.ephemeral_containers or []):
        ep = path.child("ephemeralContainers").index(i)
        if e.name in names:
            errs.append(ep.child("name").duplicate(e.name))
        names.add(e.name)
        errs.extend(validate_ephemeral_container(e, ep, volume_names, targets))
    if spec.restart_policy not in RESTART_POLICIES:
        errs.append(path.child("restartPolicy").unsupported(spec.restart_policy, RESTART_POLICIES))
    if spec.dns_policy not in DNS_POLICIES:
        errs.append(path.child("dnsPolicy").unsupported(spec.dns_policy, DNS_POLICIES))
    if spec.termination_grace_period_seconds < 0:
        errs.append(path.child("terminationGracePeriodSeconds").invalid(
            spec.termination_grace_period_seconds, "must be greater than or equal to 0"))
    if spec.active_deadline_seconds is not None and spec.active_deadline_seconds <= 0:
        errs.append(path.child("activeDeadlineSeconds").invalid(
            spec.active_deadline_seconds, "must be between 1 and 2147483647, inclusive"))
    from nodeagent.objects.validation import validate_labels
    errs.extend(validate_labels(spec.node_selector, path.child("nodeSelector")))
    for i, t in enumerate(spec.tolerations or []):
        tp = path.child("tolerations").index(i)
        if t.operator not in (None, "Equal", "Exists"):
            errs.append(tp.child("operator").unsupported(t.operator, ["Equal", "Exists"]))
        if t.operator == "Exists" and t.value:
            errs.append(tp.child("operator").invalid(
                t.operator, "value must be empty when `operator` is 'Exists'"))
        if t.effect not in (None, "", "NoSchedule", "PreferNoSchedule", "NoExecute"):
            errs.append(tp.child("effect").unsupported(
                t.effect, ["NoExecute", "NoSchedule", "PreferNoSchedule"]))
    if spec.hostname:
        errs.extend(path.child("hostname").invalid(spec.hostname, e)
                    for e in dns1123_label_errors(spec.hostname))
    return errs


MODE_DETAIL = "must be a number between 0 and 0777 (octal), both inclusive"


def mode_errors(mode: object, path: Path) -> list[FieldError]:
    """A file mode of a projected volume: 0..0777, no setuid, setgid or sticky bits."""
    if mode is not None and (not isinstance(mode, int) or isinstance(mode, bool)
                             or not 0 <= mode <= 0o777):
        return [path.invalid(mode, MODE_DETAIL)]
    return []


def local_path_errors(value: str, path: Path) -> list[FieldError]:
    """The apiserver's validateLocalDescendingPath: files a volume projects stay in it."""
    if not value:
        return [path.required()]
    errs = []
    if value.startswith("/"):
        errs.append(path.invalid(value, "must be a relative path"))
    if ".." in value.split("/"):
        errs.append(path.invalid(value, "must not contain '..'"))
    elif value.startswith(".."):
        errs.append(path.invalid(value, "must not start with '..'"))
    if "\0" in value:
        errs.append(path.invalid(value, "must not contain a NUL byte"))
    return errs


def _projection_errors(src: ConfigMapVolumeSource | SecretVolumeSource | DownwardAPIVolumeSource
                       | KeysProjection, path: Path) -> list[FieldError]:
    errs = mode_errors(src.default_mode, path.child("defaultMode"))
    items: list[KeyToPath | DownwardAPIVolumeFile] = list(src.items or [])
    for j, item in enumerate(items):
        ip = path.child("items").index(j)
        if isinstance(item, KeyToPath) and not item.key:
            errs.append(ip.child("key").required())
        errs.extend(local_path_errors(item.path, ip.child("path")))
        errs.extend(mode_errors(item.mode, ip.child("mode")))
    return errs


def _projected_errors(src: ProjectedVolumeSource, path: Path) -> list[FieldError]:
    """Each source one kind; every path in the volume once (the apiserver's checks)."""
    errs = mode_errors(src.default_mode, path.child("defaultMode"))
    seen: set[str] = set()
    for i, source in enumerate(src.sources or []):
        sp = path.child("sources").index(i)
        kinds = [k for k in ("secret", "config_map", "downward_api", "service_account_token")
                 if getattr(source, k) is not None]
        if len(kinds) != 1:
            errs.append(sp.forbidden("must specify exactly 1 of secret, configMap, downwardAPI "
                                     "or serviceAccountToken"))
            continue
        paths: list[str] = []
        for field, inner in (("secret", source.secret), ("configMap", source.config_map),
                             ("downwardAPI", source.downward_api)):
            if inner is not None:
                errs.extend(_projection_errors(inner, sp.child(field)))
                paths.extend(item.path for item in inner.items or [])
        token = source.service_account_token
        if token is not None:
            tp = sp.child("serviceAccountToken")
            errs.extend(local_path_errors(token.path, tp.child("path")))
            if token.expiration_seconds is not None and \
                    token.expiration_seconds < MIN_TOKEN_SECONDS:
                errs.append(tp.child("expirationSeconds").invalid(
                    token.expiration_seconds, "may not specify a duration less than 10 minutes"))
            if token.expiration_seconds is not None and token.expiration_seconds > 2**32:
                errs.append(tp.child("expirationSeconds").invalid(
                    token.expiration_seconds, "may not specify a duration larger than 2^32 "
                    "seconds"))
            paths.append(token.path)
        for p in paths:
            if p in seen:
                errs.append(sp.invalid(p, "conflicting duplicate paths"))
            seen.add(p)
    return errs


SECCOMP_TYPES = ["RuntimeDefault", "Unconfined"]


def seccomp_errors(sc: SecurityContext | PodSecurityContext | None, path: Path
                   ) -> list[FieldError]:
    """Localhost profiles cannot be run here: refused by name, not run unfiltered."""
    profile = sc.seccomp_profile if sc is not None else None
    if profile is None or profile.type in SECCOMP_TYPES:
        return []
    return [path.child("securityContext").child("seccompProfile").child("type").unsupported(
        profile.type, SECCOMP_TYPES)]


def validate_container(c: Container, path: Path, volumes: set[str], init: bool) -> list[FieldError]:
    errs: list[FieldError] = seccomp_errors(c.security_context, path)
    if c.security_context is not None and c.security_context.privileged:
        # Silently running it unprivileged would be a lie; this runtime gives no container
        # the host's devices and every capability.
        errs.append(path.child("securityContext").child("privileged").forbidden(
            "privileged containers are not supported by this runtime: set it false or "
            "leave it out, and add the capabilities the container needs"))
    errs.extend(path.child("name").invalid(c.name, e) for e in dns1123_label_errors(c.name))
    if not c.image:
        errs.append(path.child("image").required())
    if c.image_pull_policy not in PULL_POLICIES:
        errs.append(path.child("imagePullPolicy").unsupported(c.image_pull_policy, PULL_POLICIES))
    port_names: set[str] = set()
    for i, p in enumerate(c.ports or []):
        pp = path.child("ports").index(i)
        errs.extend(pp.child("containerPort").invalid(p.container_port, e)
                    for e in port_number_errors(p.container_port))
        if p.host_port is not None and p.host_port != 0:
            errs.extend(pp.child("hostPort").invalid(p.host_port, e)
                        for e in port_number_errors(p.host_port))
        if p.name is not None:
            errs.extend(pp.child("name").invalid(p.name, e) for e in port_name_errors(p.name))
            if p.name in port_names:
                errs.append(pp.child("name").duplicate(p.name))
            port_names.add(p.name)
        if p.protocol not in PROTOCOLS:
            errs.append(pp.child("protocol").unsupported(p.protocol, PROTOCOLS))
    for i, e in enumerate(c.env or []):
        ep = path.child("env").index(i)
        if not e.name:
            errs.append(ep.child("name").required())
        else:
            errs.extend(ep.child("name").invalid(e.name, m) for m in env_var_name_errors(e.name))
        if e.value_from is not None:
            n = sum(1 for s in ("field_ref", "resource_field_ref", "config_map_key_ref",
                                "secret_key_ref") if getattr(e.value_from, s) is not None)
            if e.value:
                errs.append(ep.child("valueFrom").invalid(
                    "", "may not be specified when `value` is not empty"))
            if n != 1:
                errs.append(ep.child("valueFrom").invalid(
                    "", "may not have more than one field specified at a time" if n
                    else "must specify one of: `fieldRef`, `resourceFieldRef`, "
                         "`configMapKeyRef` or `secretKeyRef`"))
    errs.extend(validate_resources(c.resources, path.child("resources")))
    mount_paths: set[str] = set()
    for i, m in enumerate(c.volume_mounts or []):
        mp = path.child("volumeMounts").index(i)
        if m.name not in volumes:
            errs.append(mp.child("name").not_found(m.name))
        if not m.mount_path:
            errs.append(mp.child("mountPath").required())
        elif m.mount_path in mount_paths:
            errs.append(mp.child("mountPath").invalid(m.mount_path, "must be unique"))
        mount_paths.add(m.mount_path)
        if m.sub_path:
            errs.extend(local_path_errors(m.sub_path, mp.child("subPath")))
    declared = {p.name for p in c.ports or [] if p.name}
    for field, probe in (("livenessProbe", c.liveness_probe), ("readinessProbe", c.readiness_probe),
                         ("startupProbe", c.startup_probe)):
        if probe is None:
            continue
        pp = path.child(field)
        if init:
            errs.append(pp.forbidden("may not be set for init containers"))
            continue
        errs.extend(validate_probe(probe, pp, declared, needs_one_success=field != "readinessProbe"))
    if c.termination_message_policy not in ("File", "FallbackToLogsOnError"):
        errs.append(path.child("terminationMessagePolicy").unsupported(
            c.termination_message_policy, ["File", "FallbackToLogsOnError"]))
    return errs


# Fields an ephemeral container may not set (Kubernetes' validateEphemeralContainers): it
# is never probed or restarted, and it takes no resources or ports of its own.
EPHEMERAL_FORBIDDEN = (("ports", "ports"), ("livenessProbe", "liveness_probe"),
                       ("readinessProbe", "readiness_probe"), ("startupProbe", "startup_probe"),
                       ("lifecycle", "lifecycle"))


def validate_ephemeral_container(e: EphemeralContainer, path: Path, volumes: set[str],
                                 targets: set[str]) -> list[FieldError]:
    errs = validate_container(e, path, volumes, init=True)
    errs = [err for err in errs if not any(err.path.startswith(f"{path}.{camel}")
                                           for camel, _ in EPHEMERAL_FORBIDDEN)]
    for camel, attr in EPHEMERAL_FORBIDDEN:
        if getattr(e, attr):
            errs.append(path.child(camel).forbidden("cannot be set for an Ephemeral Container"))
    if e.resources is not None and (e.resources.limits or e.resources.requests):
        errs.append(path.child("resources").forbidden(
            "cannot be set for an Ephemeral Container"))
    for i, m in enumerate(e.volume_mounts or []):
        if m.sub_path:
            errs.append(path.child("volumeMounts").index(i).child("subPath").forbidden(
                "cannot be set for an Ephemeral Container"))
    if e.target_container_name is not None and e.target_container_name not in targets:
        errs.append(path.child("targetContainerName").not_found(e.target_container_name))
    return errs


def validate_resources(res: ResourceRequirements | None, path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    if res is None:
        return errs
    for kind in ("limits", "requests"):
        for name, q in (getattr(res, kind) or {}).items():
            if parse_quantity(q).value < 0:
                errs.append(path.child(kind).key(name).invalid(
                    q, "must be greater than or equal to 0"))
    for name, req in (res.requests or {}).items():
        lim = (res.limits or {}).get(name)
        if lim is not None and parse_quantity(req) > parse_quantity(lim):
            errs.append(path.child("requests").invalid(
                req, f"must be less than or equal to {name} limit of {lim}"))
    return errs


def validate_probe(probe: Probe, path: Path, declared_ports: set[str],
                   needs_one_success: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    handlers = [h for h in ("exec", "http_get", "tcp_socket", "grpc")
                if getattr(probe, h) is not None]
    if not handlers:
        errs.append(path.required("must specify a handler type"))
    elif len(handlers) > 1:
        errs.append(path.forbidden("may not specify more than 1 handler type"))
    for name in ("initial_delay_seconds", "timeout_seconds", "period_seconds",
                 "success_threshold", "failure_threshold"):
        value = getattr(probe, name)
        minimum = 0 if name == "initial_delay_seconds" else 1
        camel = "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))
        if value < minimum:
            errs.append(path.child(camel).invalid(
                value, f"must be greater than or equal to {minimum}"))
    if needs_one_success and probe.success_threshold != 1:
        errs.append(path.child("successThreshold").invalid(probe.success_threshold, "must be 1"))
    for h, hp in ((probe.http_get, "httpGet"), (probe.tcp_socket, "tcpSocket")):
        if h is None:
            continue
        port_path = path.child(hp).child("port")
        if isinstance(h.port, int):
            errs.extend(port_path.invalid(h.port, e) for e in port_number_errors(h.port))
        else:
            errs.extend(port_path.invalid(h.port, e) for e in port_name_errors(h.port))
            if h.port not in declared_ports and not port_name_errors(h.port):
                errs.append(port_path.invalid(
                    h.port, "must be a port name declared in the container's ports"))
    if probe.http_get is not None and probe.http_get.scheme not in ("HTTP", "HTTPS"):
        errs.append(path.child("httpGet").child("scheme").unsupported(
            probe.http_get.scheme, ["HTTP", "HTTPS"]))
    if probe.exec is not None and not probe.exec.command:
        errs.append(path.child("exec").child("command").required())
    if probe.grpc is not None:
        errs.extend(path.child("grpc").child("port").invalid(probe.grpc.port, e)
                    for e in port_number_errors(probe.grpc.port))
    return errs


class PodTemplateSpec(Model):
    metadata: ObjectMeta | None = None
    spec: PodSpec | None = None
