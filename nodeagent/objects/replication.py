"""ReplicationController (core/v1), the seeds' first controller: a ReplicaSet whose
selector is a plain label map.  Defaults as Kubernetes': an empty selector, and empty
object labels, are the template's labels."""

from __future__ import annotations

from typing import Annotated, Literal

from nodeagent.objects.apps import default_template, validate_workload
from nodeagent.objects.meta import LabelSelector, Model, ObjectMeta, merge_by
from nodeagent.objects.pod import PodTemplateSpec
from nodeagent.objects.validation import FieldError


class ReplicationControllerSpec(Model):
    replicas: int = 1
    min_ready_seconds: int = 0
    selector: dict[str, str] | None = None
    template: PodTemplateSpec | None = None


class ReplicationControllerCondition(Model):
    type: str
    status: str
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class ReplicationControllerStatus(Model):
    replicas: int = 0
    fully_labeled_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    observed_generation: int | None = None
    conditions: Annotated[list[ReplicationControllerCondition] | None,
                          merge_by("type")] = None


class ReplicationController(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["ReplicationController"] = "ReplicationController"
    metadata: ObjectMeta
    spec: ReplicationControllerSpec | None = None
    status: ReplicationControllerStatus | None = None

    def apply_defaults(self) -> None:
        if self.spec is None:
            self.spec = ReplicationControllerSpec()
        s = self.spec
        default_template(s.template)
        labels = (s.template.metadata.labels if s.template and s.template.metadata else None)
        if labels:
            if not s.selector:
                s.selector = dict(labels)
            if not self.metadata.labels:
                self.metadata.labels = dict(labels)
        if self.status is None:
            self.status = ReplicationControllerStatus()

    def check(self) -> list[FieldError]:
        s = self.spec or ReplicationControllerSpec()
        selector = LabelSelector(match_labels=s.selector) if s.selector else None
        return validate_workload(s.replicas, selector, s.template, s.min_ready_seconds)
