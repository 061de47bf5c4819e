"""ReplicaSet and Deployment (apps/v1).

Defaults: replicas 1; Deployment strategy RollingUpdate with maxSurge and
maxUnavailable 25%, revisionHistoryLimit 10, progressDeadlineSeconds 600.
The selector is required and immutable, and must match the template's labels.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from nodeagent.objects.meta import (
    RETAIN_KEYS,
    IntOrString,
    LabelSelector,
    Model,
    ObjectMeta,
    merge_by,
    validate_selector,
)
from nodeagent.objects.pod import PodSpec, PodTemplateSpec, default_pod_spec, validate_pod_spec
from nodeagent.objects.selectors import selector_from_dict
from nodeagent.objects.validation import FieldError, Path, validate_labels

_PERCENT = re.compile(r"^(\d+)%$")


class ReplicaSetSpec(Model):
    replicas: int = 1
    min_ready_seconds: int = 0
    selector: LabelSelector | None = None
    template: PodTemplateSpec | None = None


class ReplicaSetCondition(Model):
    type: str
    status: str
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class ReplicaSetStatus(Model):
    replicas: int = 0
    fully_labeled_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    observed_generation: int | None = None
    conditions: Annotated[list[ReplicaSetCondition] | None, merge_by("type")] = None


def default_template(template: PodTemplateSpec | None) -> None:
    if template is not None:
        if template.spec is None:
            template.spec = PodSpec()
        default_pod_spec(template.spec)


def validate_workload(replicas: int, selector: LabelSelector | None,
                       template: PodTemplateSpec | None, min_ready: int,
                       restart_always: bool = True) -> list[FieldError]:
    sp = Path("spec")
    errs: list[FieldError] = []
    if replicas < 0:
        errs.append(sp.child("replicas").invalid(replicas, "must be greater than or equal to 0"))
    if min_ready < 0:
        errs.append(sp.child("minReadySeconds").invalid(
            min_ready, "must be greater than or equal to 0"))
    if selector is None:
        errs.append(sp.child("selector").required())
    else:
        errs.extend(validate_selector(selector, sp.child("selector")))
        if not selector.match_labels and not selector.match_expressions:
            errs.append(sp.child("selector").invalid(
                {}, "empty selector is invalid for deployment"))
    tp = sp.child("template")
    if template is None:
        errs.append(tp.required())
        return errs
    labels = (template.metadata.labels if template.metadata else None) or {}
    errs.extend(validate_labels(labels, tp.child("metadata").child("labels")))
    if selector is not None and (selector.match_labels or selector.match_expressions):
        if not selector_from_dict(selector.dump()).matches(labels):
            errs.append(tp.child("metadata").child("labels").invalid(
                labels, "`selector` does not match template `labels`"))
    if template.spec is None:
        errs.append(tp.child("spec").required())
    else:
        errs.extend(validate_pod_spec(template.spec, tp.child("spec")))
        if restart_always and template.spec.restart_policy != "Always":
            errs.append(tp.child("spec").child("restartPolicy").unsupported(
                template.spec.restart_policy, ["Always"]))
    return errs


class ReplicaSet(Model):
    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["ReplicaSet"] = "ReplicaSet"
    metadata: ObjectMeta
    spec: ReplicaSetSpec | None = None
    status: ReplicaSetStatus | None = None

    def apply_defaults(self) -> None:
        if self.spec is None:
            self.spec = ReplicaSetSpec()
        default_template(self.spec.template)
        if self.status is None:
            self.status = ReplicaSetStatus()

    def check(self) -> list[FieldError]:
        s = self.spec or ReplicaSetSpec()
        return validate_workload(s.replicas, s.selector, s.template, s.min_ready_seconds)

    def check_update(self, old: ReplicaSet) -> list[FieldError]:
        if old.spec and self.spec and old.spec.selector != self.spec.selector:
            return [Path("spec").child("selector").invalid(
                self.spec.selector.dump() if self.spec.selector else None, "field is immutable")]
        return []


class RollingUpdateDeployment(Model):
    max_unavailable: IntOrString | None = None
    max_surge: IntOrString | None = None


class DeploymentStrategy(Model):
    type: str = "RollingUpdate"
    rolling_update: RollingUpdateDeployment | None = None


class DeploymentSpec(Model):
    replicas: int = 1
    selector: LabelSelector | None = None
    template: PodTemplateSpec | None = None
    strategy: Annotated[DeploymentStrategy | None, RETAIN_KEYS] = None
    min_ready_seconds: int = 0
    revision_history_limit: int = 10
    paused: bool | None = None
    progress_deadline_seconds: int = 600


class DeploymentCondition(Model):
    type: str
    status: str
    last_update_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class DeploymentStatus(Model):
    observed_generation: int | None = None
    replicas: int | None = None
    updated_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    unavailable_replicas: int | None = None
    conditions: Annotated[list[DeploymentCondition] | None, merge_by("type")] = None
    collision_count: int | None = None


def _int_or_percent_errors(value: IntOrString | None, path: Path) -> list[FieldError]:
    if value is None:
        return []
    if isinstance(value, int):
        if value < 0:
            return [path.invalid(value, "must be greater than or equal to 0")]
        return []
    m = _PERCENT.match(value)
    if not m:
        return [path.invalid(value, "a valid percent string must be a numeric string followed "
                                    "by an ending '%' (e.g. '1%',  or '93%', regex used for "
                                    "validation is '[0-9]+%')")]
    if int(m.group(1)) > 100:
        return [path.invalid(value, "must not be greater than 100%")]
    return []


def _is_zero(value: IntOrString | None) -> bool:
    return value in (0, "0%")


class Deployment(Model):
    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["Deployment"] = "Deployment"
    metadata: ObjectMeta
    spec: DeploymentSpec | None = None
    status: DeploymentStatus | None = None

    def apply_defaults(self) -> None:
        if self.spec is None:
            self.spec = DeploymentSpec()
        s = self.spec
        if s.strategy is None:
            s.strategy = DeploymentStrategy()
        if s.strategy.type == "RollingUpdate":
            ru = s.strategy.rolling_update or RollingUpdateDeployment()
            if ru.max_unavailable is None:
                ru.max_unavailable = "25%"
            if ru.max_surge is None:
                ru.max_surge = "25%"
            s.strategy.rolling_update = ru
        default_template(s.template)
        if self.status is None:
            self.status = DeploymentStatus()

    def check(self) -> list[FieldError]:
        s = self.spec or DeploymentSpec()
        errs = validate_workload(s.replicas, s.selector, s.template, s.min_ready_seconds)
        sp = Path("spec")
        strat = s.strategy or DeploymentStrategy()
        stp = sp.child("strategy")
        if strat.type not in ("Recreate", "RollingUpdate"):
            errs.append(stp.child("type").unsupported(strat.type, ["Recreate", "RollingUpdate"]))
        if strat.type == "Recreate" and strat.rolling_update is not None:
            errs.append(stp.child("rollingUpdate").forbidden(
                "may not be specified when strategy `type` is 'Recreate'"))
        ru = strat.rolling_update
        if ru is not None:
            rp = stp.child("rollingUpdate")
            errs.extend(_int_or_percent_errors(ru.max_unavailable, rp.child("maxUnavailable")))
            errs.extend(_int_or_percent_errors(ru.max_surge, rp.child("maxSurge")))
            if _is_zero(ru.max_unavailable) and _is_zero(ru.max_surge):
                errs.append(rp.child("maxUnavailable").invalid(
                    ru.max_unavailable, "may not be 0 when `maxSurge` is 0"))
        if s.revision_history_limit < 0:
            errs.append(sp.child("revisionHistoryLimit").invalid(
                s.revision_history_limit, "must be greater than or equal to 0"))
        if s.progress_deadline_seconds <= s.min_ready_seconds:
            errs.append(sp.child("progressDeadlineSeconds").invalid(
                s.progress_deadline_seconds, "must be greater than minReadySeconds"))
        return errs

    def check_update(self, old: Deployment) -> list[FieldError]:
        if old.spec and self.spec and old.spec.selector != self.spec.selector:
            return [Path("spec").child("selector").invalid(
                self.spec.selector.dump() if self.spec.selector else None, "field is immutable")]
        return []
