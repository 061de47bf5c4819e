"""Namespace, Node, ConfigMap, Secret, ServiceAccount and Event."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal

from pydantic import Field

from nodeagent.objects.meta import (
    LocalObjectReference,
    Model,
    ObjectMeta,
    ObjectReference,
    ResourceList,
    merge_by,
)
from nodeagent.objects.validation import (
    FieldError,
    Path,
    dns1123_label_errors,
    qualified_name_errors,
)

_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
MAX_CONFIG_BYTES = 1024 * 1024  # ConfigMaps and Secrets are capped at 1 MiB, as in Kubernetes


def _config_key_errors(key: str) -> list[str]:
    errs = []
    if len(key) > 253:
        errs.append("must be no more than 253 characters")
    if not _CONFIG_KEY.match(key):
        errs.append("a valid config key must consist of alphanumeric characters, '-', '_' or "
                    "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                    "validation is '[-._a-zA-Z0-9]+')")
    if key in (".", "..") or key.startswith(".."):
        errs.append("must not be '.' or '..' or start with '..'")
    return errs


# --- Namespace ---------------------------------------------------------------------------


class NamespaceSpec(Model):
    finalizers: list[str] | None = None


class NamespaceStatus(Model):
    phase: str | None = None


class Namespace(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Namespace"] = "Namespace"
    metadata: ObjectMeta
    spec: NamespaceSpec | None = None
    status: NamespaceStatus | None = None

    NAME_CHECK = staticmethod(dns1123_label_errors)

    def apply_defaults(self) -> None:
        if self.spec is None:
            self.spec = NamespaceSpec(finalizers=["kubernetes"])
        if self.status is None or self.status.phase is None:
            self.status = NamespaceStatus(phase="Active")


# --- Node --------------------------------------------------------------------------------


class Taint(Model):
    key: str
    value: str | None = None
    effect: str
    time_added: str | None = None


class NodeSpec(Model):
    pod_cidr: str | None = Field(default=None, alias="podCIDR")
    pod_cidrs: Annotated[list[str] | None, merge_by()] = Field(default=None, alias="podCIDRs")
    provider_id: str | None = Field(default=None, alias="providerID")
    unschedulable: bool | None = None
    taints: list[Taint] | None = None


class NodeCondition(Model):
    type: str
    status: str
    last_heartbeat_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class NodeAddress(Model):
    type: str
    address: str


class NodeSystemInfo(Model):
    machine_id: str = Field(default="", alias="machineID")
    system_uuid: str = Field(default="", alias="systemUUID")
    boot_id: str = Field(default="", alias="bootID")
    kernel_version: str = ""
    os_image: str = ""
    container_runtime_version: str = ""
    kubelet_version: str = ""
    kube_proxy_version: str = ""
    operating_system: str = ""
    architecture: str = ""


class DaemonEndpoint(Model):
    port: int = Field(alias="Port")


class NodeDaemonEndpoints(Model):
    kubelet_endpoint: DaemonEndpoint | None = None


class NodeStatus(Model):
    capacity: ResourceList | None = None
    allocatable: ResourceList | None = None
    phase: str | None = None
    conditions: Annotated[list[NodeCondition] | None, merge_by("type")] = None
    addresses: Annotated[list[NodeAddress] | None, merge_by("type")] = None
    daemon_endpoints: NodeDaemonEndpoints | None = None
    node_info: NodeSystemInfo | None = None


TAINT_EFFECTS = ["NoExecute", "NoSchedule", "PreferNoSchedule"]


class Node(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Node"] = "Node"
    metadata: ObjectMeta
    spec: NodeSpec | None = None
    status: NodeStatus | None = None

    def apply_defaults(self) -> None:
        if self.spec is None:
            self.spec = NodeSpec()
        if self.status is None:
            self.status = NodeStatus()

    def check(self) -> list[FieldError]:
        errs: list[FieldError] = []
        for i, t in enumerate((self.spec.taints if self.spec else None) or []):
            tp = Path("spec").child("taints").index(i)
            if t.effect not in TAINT_EFFECTS:
                errs.append(tp.child("effect").unsupported(t.effect, TAINT_EFFECTS))
        return errs


# --- ConfigMap and Secret ---------------------------------------------------------------


class ConfigMap(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["ConfigMap"] = "ConfigMap"
    metadata: ObjectMeta
    data: dict[str, str] | None = None
    binary_data: dict[str, str] | None = None
    immutable: bool | None = None

    def check(self) -> list[FieldError]:
        errs: list[FieldError] = []
        total = 0
        for field, values in (("data", self.data), ("binaryData", self.binary_data)):
            for k, v in (values or {}).items():
                errs.extend(Path(field).invalid(k, e) for e in _config_key_errors(k))
                total += len(v)
        for k in set(self.data or {}) & set(self.binary_data or {}):
            errs.append(Path("data").key(k).invalid(k, "duplicate of key present in binaryData"))
        if total > MAX_CONFIG_BYTES:
            errs.append(Path("").too_long(MAX_CONFIG_BYTES))
        return errs

    def check_update(self, old: ConfigMap) -> list[FieldError]:
        return _immutable_data(old, self)


class Secret(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Secret"] = "Secret"
    metadata: ObjectMeta
    data: dict[str, str] | None = None
    string_data: dict[str, str] | None = None
    type: str = "Opaque"
    immutable: bool | None = None

    def apply_defaults(self) -> None:
        # stringData is write-only: merged into data (base64) and dropped, as Kubernetes does.
        if self.string_data:
            data = dict(self.data or {})
            for k, v in self.string_data.items():
                data[k] = base64.b64encode(v.encode()).decode()
            self.data = data
            self.string_data = None

    def check(self) -> list[FieldError]:
        errs: list[FieldError] = []
        total = 0
        for k, v in (self.data or {}).items():
            errs.extend(Path("data").invalid(k, e) for e in _config_key_errors(k))
            try:
                total += len(base64.b64decode(v, validate=True))
            except (binascii.Error, ValueError):
                errs.append(Path("data").key(k).invalid(
                    "<secret contents redacted>", "illegal base64 data"))
        for k in (self.string_data or {}):
            errs.extend(Path("stringData").invalid(k, e) for e in _config_key_errors(k))
        if total > MAX_CONFIG_BYTES:
            errs.append(Path("data").too_long(MAX_CONFIG_BYTES))
        if self.type == "kubernetes.io/tls":
            for key in ("tls.crt", "tls.key"):
                if key not in (self.data or {}) and key not in (self.string_data or {}):
                    errs.append(Path("data").key(key).required())
        return errs

    def check_update(self, old: Secret) -> list[FieldError]:
        errs = _immutable_data(old, self)
        if old.type != self.type:
            errs.append(Path("type").invalid(self.type, "field is immutable"))
        return errs


def _immutable_data(old: ConfigMap | Secret, new: ConfigMap | Secret) -> list[FieldError]:
    if not old.immutable:
        return []
    errs = []
    if not new.immutable:
        errs.append(Path("immutable").forbidden("field is immutable when `immutable` is set"))
    if old.data != new.data:
        errs.append(Path("data").forbidden("field is immutable when `immutable` is set"))
    return errs


# --- ServiceAccount ----------------------------------------------------------------------


class ServiceAccount(Model):
    """An identity for a pod's processes (``system:serviceaccount:<ns>:<name>``).  Its
    tokens are not stored: they are signed on request (TokenRequest, api/satokens.py)."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["ServiceAccount"] = "ServiceAccount"
    metadata: ObjectMeta
    secrets: Annotated[list[ObjectReference] | None, merge_by("name")] = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    automount_service_account_token: bool | None = None


# --- Event -------------------------------------------------------------------------------


class EventSource(Model):
    component: str | None = None
    host: str | None = None


class EventSeries(Model):
    count: int | None = None
    last_observed_time: str | None = None


# Kubernetes' caps on an event's short fields (core/validation/events.go).
EVENT_FIELD_LIMIT = 128
NOTE_LIMIT = 1024


class Event(Model):
    """core/v1 Event, also the stored form of events.k8s.io/v1 Events (eventsv1.py)."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["Event"] = "Event"
    metadata: ObjectMeta
    involved_object: ObjectReference
    reason: str | None = None
    message: str | None = None
    source: EventSource | None = None
    first_timestamp: str | None = None
    last_timestamp: str | None = None
    count: int | None = None
    type: str | None = None
    event_time: str | None = None
    series: EventSeries | None = None
    action: str | None = None
    related: ObjectReference | None = None
    reporting_component: str | None = None
    reporting_instance: str | None = None

    def check(self) -> list[FieldError]:
        errs: list[FieldError] = []
        if self.type not in (None, "Normal", "Warning"):
            errs.append(Path("type").unsupported(self.type, ["Normal", "Warning"]))
        return errs + event_errors(self, "involvedObject", "reportingComponent", "message")


def event_errors(e: Event, regarding: str, reporting: str, note: str) -> list[FieldError]:
    """Kubernetes' checks of every event, by the names the request's version gives the
    fields: an event with an eventTime (a "new" one) must say who reported what."""
    errs: list[FieldError] = []
    ns, ref_ns = e.metadata.namespace or "", e.involved_object.namespace or ""
    ref_path = Path(regarding).child("namespace")
    if not e.event_time:
        if ref_ns and ns and ref_ns != ns:
            errs.append(ref_path.invalid(ref_ns, "does not match event.namespace"))
        return errs
    if not ref_ns and ns not in ("", "default", "kube-system"):
        errs.append(ref_path.invalid(ref_ns, "does not match event.namespace"))
    if not e.reporting_component:
        errs.append(Path(reporting).required())
    else:
        errs += [Path(reporting).invalid(e.reporting_component, m)
                 for m in qualified_name_errors(e.reporting_component)]
    for path, value in (("reportingInstance", e.reporting_instance), ("action", e.action),
                        ("reason", e.reason)):
        if not value:
            errs.append(Path(path).required())
        elif len(value) > EVENT_FIELD_LIMIT:
            errs.append(Path(path).too_long(EVENT_FIELD_LIMIT))
    if e.message and len(e.message) > NOTE_LIMIT:
        errs.append(Path(note).too_long(NOTE_LIMIT))
    return errs
