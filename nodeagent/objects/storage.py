"""PersistentVolume and PersistentVolumeClaim: stored and validated now, bound later."""

from __future__ import annotations

from typing import Literal

from nodeagent.objects.meta import LabelSelector, Model, ObjectMeta, ObjectReference, ResourceList
from nodeagent.objects.pod import (
    GCEPersistentDiskVolumeSource,
    HostPathVolumeSource,
    NFSVolumeSource,
    NodeSelector,
)
from nodeagent.objects.validation import FieldError, Path

ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
RECLAIM_POLICIES = ["Delete", "Recycle", "Retain"]
VOLUME_MODES = ["Block", "Filesystem"]


class LocalVolumeSource(Model):
    path: str
    fs_type: str | None = None


class VolumeNodeAffinity(Model):
    required: NodeSelector | None = None


class PersistentVolumeSpec(Model):
    capacity: ResourceList | None = None
    access_modes: list[str] | None = None
    persistent_volume_reclaim_policy: str = "Retain"
    storage_class_name: str | None = None
    volume_mode: str = "Filesystem"
    mount_options: list[str] | None = None
    claim_ref: ObjectReference | None = None
    node_affinity: VolumeNodeAffinity | None = None
    host_path: HostPathVolumeSource | None = None
    gce_persistent_disk: GCEPersistentDiskVolumeSource | None = None
    nfs: NFSVolumeSource | None = None
    local: LocalVolumeSource | None = None


class PersistentVolumeStatus(Model):
    phase: str | None = None
    message: str | None = None
    reason: str | None = None


def _access_mode_errors(modes: list[str] | None, path: Path) -> list[FieldError]:
    errs = []
    if not modes:
        errs.append(path.required("at least 1 access mode is required"))
    for m in modes or []:
        if m not in ACCESS_MODES:
            errs.append(path.unsupported(m, ACCESS_MODES))
    return errs


class PersistentVolume(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["PersistentVolume"] = "PersistentVolume"
    metadata: ObjectMeta
    spec: PersistentVolumeSpec | None = None
    status: PersistentVolumeStatus | None = None

    def apply_defaults(self) -> None:
        if self.spec is None:
            self.spec = PersistentVolumeSpec()
        if self.status is None:
            self.status = PersistentVolumeStatus(phase="Pending")

    def check(self) -> list[FieldError]:
        s = self.spec or PersistentVolumeSpec()
        sp = Path("spec")
        errs = _access_mode_errors(s.access_modes, sp.child("accessModes"))
        if not s.capacity or "storage" not in s.capacity:
            errs.append(sp.child("capacity").required())
        sources = [n for n in ("host_path", "gce_persistent_disk", "nfs", "local")
                   if getattr(s, n) is not None]
        if not sources:
            errs.append(sp.required("must specify a volume type"))
        elif len(sources) > 1:
            errs.append(sp.forbidden("may not specify more than 1 volume type"))
        if s.persistent_volume_reclaim_policy not in RECLAIM_POLICIES:
            errs.append(sp.child("persistentVolumeReclaimPolicy").unsupported(
                s.persistent_volume_reclaim_policy, RECLAIM_POLICIES))
        if s.volume_mode not in VOLUME_MODES:
            errs.append(sp.child("volumeMode").unsupported(s.volume_mode, VOLUME_MODES))
        return errs


class VolumeResourceRequirements(Model):
    limits: ResourceList | None = None
    requests: ResourceList | None = None


class PersistentVolumeClaimSpec(Model):
    access_modes: list[str] | None = None
    selector: LabelSelector | None = None
    resources: VolumeResourceRequirements | None = None
    volume_name: str | None = None
    storage_class_name: str | None = None
    volume_mode: str = "Filesystem"


class PersistentVolumeClaimStatus(Model):
    phase: str | None = None
    access_modes: list[str] | None = None
    capacity: ResourceList | None = None


class PersistentVolumeClaim(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["PersistentVolumeClaim"] = "PersistentVolumeClaim"
    metadata: ObjectMeta
    spec: PersistentVolumeClaimSpec | None = None
    status: PersistentVolumeClaimStatus | None = None

    def apply_defaults(self) -> None:
        if self.spec is None:
            self.spec = PersistentVolumeClaimSpec()
        if self.status is None:
            self.status = PersistentVolumeClaimStatus(phase="Pending")

    def check(self) -> list[FieldError]:
        s = self.spec or PersistentVolumeClaimSpec()
        sp = Path("spec")
        errs = _access_mode_errors(s.access_modes, sp.child("accessModes"))
        req = (s.resources.requests if s.resources else None) or {}
        if "storage" not in req:
            errs.append(sp.child("resources").key("storage").required())
        if s.volume_mode not in VOLUME_MODES:
            errs.append(sp.child("volumeMode").unsupported(s.volume_mode, VOLUME_MODES))
        return errs

    def check_update(self, old: PersistentVolumeClaim) -> list[FieldError]:
        if old.spec and self.spec and old.spec.access_modes != self.spec.access_modes:
            return [Path("spec").forbidden("spec is immutable after creation except "
                                           "resources.requests for bound claims")]
        return []
