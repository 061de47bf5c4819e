"""What a container is: the spec the runtime runs, from an OCI bundle or filled by the pod manager.

:class:`ContainerSpec` is plain data with Docker's defaults (capabilities,
masked and read-only paths, the minimal /dev).  :func:`load_bundle` reads an
OCI runtime-spec bundle (``config.json`` + rootfs) so the same bundle can be
run by crun for comparison; anything it cannot honour is a :class:`SpecError`
naming the field, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from runtime.cgroups import Resources

__all__ = ["DEFAULT_CAPABILITIES", "ContainerSpec", "Mount", "SpecError", "load_bundle", "spec_from_dict",
           "spec_to_dict"]

# Docker's default capability set (moby/oci/caps/defaults.go).
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

CAPABILITY_NUMBERS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
    "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

# Docker's masked and read-only paths (moby/oci/defaults.go).
DEFAULT_MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
DEFAULT_READONLY_PATHS = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)
DEFAULT_NAMESPACES = ("mount", "uts", "ipc", "pid", "cgroup")
KNOWN_NAMESPACES = ("mount", "uts", "ipc", "pid", "cgroup", "network", "user")
RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}


class SpecError(ValueError):
    """A spec the runtime cannot run; ``field`` is the JSON path of the problem."""

    def __init__(self, field_path: str, message: str) -> None:
        self.field = field_path
        super().__init__(f"{field_path}: {message}")


@dataclass(frozen=True)
class Mount:
    destination: str
    type: str = "bind"
    source: str = ""
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainerSpec:
    rootfs: str
    args: tuple[str, ...]
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    hostname: str = ""
    readonly_rootfs: bool = False
    mounts: tuple[Mount, ...] = ()
    # Namespaces to create; a namespace given a path in join_namespaces is joined instead.
    namespaces: tuple[str, ...] = DEFAULT_NAMESPACES
    join_namespaces: tuple[tuple[str, str], ...] = ()
    capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES
    no_new_privileges: bool = True
    # "RuntimeDefault": the built-in seccomp filter (runtime/seccomp.py); "": none.
    seccomp: str = ""
    rlimits: tuple[tuple[str, int, int], ...] = (("RLIMIT_NOFILE", 1048576, 1048576),)
    masked_paths: tuple[str, ...] = DEFAULT_MASKED_PATHS
    readonly_paths: tuple[str, ...] = DEFAULT_READONLY_PATHS
    # PID 1 is a minimal init that runs the command as PID 2, forwards signals to it and
    # reaps orphans (docker run --init); off, the command itself is PID 1.
    init: bool = False
    # OCI's process.terminal: the command's stdio is a terminal from the container's own
    # devpts (kubectl run -it, a pod's tty: true); its master goes to the caller.
    terminal: bool = False
    # With "user" in namespaces: (container id, host id, size) ranges, written by the caller.
    uid_mappings: tuple[tuple[int, int, int], ...] = ()
    gid_mappings: tuple[tuple[int, int, int], ...] = ()
    # The container's cgroup, relative to the hierarchy root ("" = stay in the caller's).
    cgroup_path: str = ""
    resources: Resources = field(default_factory=Resources)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def check(self) -> None:
        """Raise SpecError for what cannot be run."""
        if not self.args:
            raise SpecError("process.args", "Required value: a container needs a command")
        if not os.path.isabs(self.cwd):
            raise SpecError("process.cwd", f"Invalid value: {self.cwd!r}: must be absolute")
        if self.seccomp not in ("", "RuntimeDefault"):
            raise SpecError("seccomp", f'Unsupported value: {self.seccomp!r}: supported values: '
                            '"RuntimeDefault", "" (none)')
        if not os.path.isdir(self.rootfs):
            raise SpecError("root.path", f"Not found: {self.rootfs!r}: not a directory")
        for i, ns in enumerate(self.namespaces):
            if ns not in KNOWN_NAMESPACES:
                raise SpecError(f"linux.namespaces[{i}].type",
                                f"Unsupported value: {ns!r}: supported values: "
                                + ", ".join(f'"{k}"' for k in KNOWN_NAMESPACES))
        for i, cap in enumerate(self.capabilities):
            if cap not in CAPABILITY_NUMBERS:
                raise SpecError(f"process.capabilities.bounding[{i}]",
                                f"Unsupported value: {cap!r}")
        for i, (name, _soft, _hard) in enumerate(self.rlimits):
            if name not in RLIMITS:
                raise SpecError(f"process.rlimits[{i}].type", f"Unsupported value: {name!r}")
        for i, m in enumerate(self.mounts):
            if not os.path.isabs(m.destination):
                raise SpecError(f"mounts[{i}].destination",
                                f"Invalid value: {m.destination!r}: must be absolute")
        if "user" in self.namespaces and not (self.uid_mappings and self.gid_mappings):
            raise SpecError("linux.uidMappings", "Required value: a user namespace needs uid "
                            "and gid mappings")
        for field_name, maps in (("linux.uidMappings", self.uid_mappings),
                                 ("linux.gidMappings", self.gid_mappings)):
            for i, idmap in enumerate(maps):
                if len(idmap) != 3 or min(idmap) < 0 or idmap[2] < 1:
                    raise SpecError(f"{field_name}[{i}]", f"Invalid value: {idmap!r}: needs "
                                    "containerID, hostID and a size of at least 1")
        if len(self.hostname) > 64:
            raise SpecError("hostname", "Too long: must have at most 64 bytes")
        if self.cgroup_path.startswith("/") or ".." in self.cgroup_path.split("/"):
            raise SpecError("linux.cgroupsPath", f"Invalid value: {self.cgroup_path!r}: must be "
                            "relative and stay below the hierarchy root")
        r = self.resources
        if r.memory_limit_bytes is not None and r.memory_limit_bytes < 4 * 2**20:
            raise SpecError("linux.resources.memory.limit",
                            f"Invalid value: {r.memory_limit_bytes}: minimum memory limit is 4Mi")
        if r.pids_limit is not None and r.pids_limit < 1:
            raise SpecError("linux.resources.pids.limit",
                            f"Invalid value: {r.pids_limit}: must be at least 1")


def _get(obj: Any, path: str, kind: type, default: Any) -> Any:
    if not isinstance(obj, dict):
        return default
    value = obj.get(path.rsplit(".", 1)[-1], default)
    if value is not default and not isinstance(value, kind):
        raise SpecError(path, f"Invalid value: expected {kind.__name__}, got "
                        f"{type(value).__name__}")
    return value


# The resources the runtime enforces, by group; any other is refused rather than dropped.
# ``devices`` is not a limit here: a container's /dev holds only the default devices.
_RESOURCES = {"cpu": {"shares", "quota", "period"}, "memory": {"limit"}, "pids": {"limit"},
              "devices": None}


def bundle_cgroup(container_id: str) -> str:
    """The cgroup of a bundle that names none, as runc and crun make one: by container id."""
    return f"nodeagent-runtime-{container_id}"


def load_bundle(bundle: str, container_id: str = "") -> ContainerSpec:
    """Read ``BUNDLE/config.json`` (OCI runtime-spec) into a ContainerSpec.

    A bundle with ``linux.resources`` but no ``linux.cgroupsPath`` gets a cgroup of the
    runtime's naming (:func:`bundle_cgroup`) so that its limits hold; a resource the
    runtime cannot enforce is a SpecError, never dropped."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            cfg = json.load(f)
    except FileNotFoundError as exc:
        raise SpecError("config.json", f"Not found: {path}") from exc
    except (OSError, ValueError) as exc:
        raise SpecError("config.json", f"cannot be read: {exc}") from exc
    if not isinstance(cfg, dict):
        raise SpecError("config.json", "Invalid value: expected an object")
    process = _get(cfg, "process", dict, {})
    root = _get(cfg, "root", dict, {})
    linux = _get(cfg, "linux", dict, {})
    if "seccomp" in linux:
        raise SpecError("linux.seccomp", "Unsupported value: this runtime runs no seccomp "
                        "profile of a bundle's (only its built-in RuntimeDefault, for pods)")
    rootfs = _get(root, "root.path", str, "rootfs")
    if not os.path.isabs(rootfs):
        rootfs = os.path.join(os.path.abspath(bundle), rootfs)
    user = _get(process, "process.user", dict, {})
    caps = _get(process, "process.capabilities", dict, {})
    namespaces: list[str] = []
    joins: list[tuple[str, str]] = []
    for i, ns in enumerate(_get(linux, "linux.namespaces", list, list(DEFAULT_NAMESPACES))):
        if isinstance(ns, str):
            namespaces.append(ns)
            continue
        if not isinstance(ns, dict) or not isinstance(ns.get("type"), str):
            raise SpecError(f"linux.namespaces[{i}].type", "Required value")
        if ns.get("path"):
            joins.append((ns["type"], str(ns["path"])))
        else:
            namespaces.append(ns["type"])
    mounts = []
    for i, m in enumerate(_get(cfg, "mounts", list, [])):
        if not isinstance(m, dict) or not isinstance(m.get("destination"), str):
            raise SpecError(f"mounts[{i}].destination", "Required value")
        mounts.append(Mount(m["destination"], str(m.get("type") or "bind"),
                            str(m.get("source") or ""), tuple(m.get("options") or ())))
    rlimits = []
    for i, r in enumerate(_get(process, "process.rlimits", list, [])):
        try:
            rlimits.append((str(r["type"]), int(r["soft"]), int(r["hard"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"process.rlimits[{i}]", "Invalid value: needs type, soft and "
                            "hard") from exc
    res = _get(linux, "linux.resources", dict, {})
    for group, value in res.items():
        if group not in _RESOURCES:
            raise SpecError(f"linux.resources.{group}", "Unsupported value: this runtime cannot "
                            "enforce it")
        known = _RESOURCES[group] or set()
        for key in (value if isinstance(value, dict) and _RESOURCES[group] is not None else ()):
            if key not in known and value[key] is not None:
                raise SpecError(f"linux.resources.{group}.{key}", "Unsupported value: this "
                                "runtime cannot enforce it")
    cpu = _get(res, "linux.resources.cpu", dict, {})
    mem = _get(res, "linux.resources.memory", dict, {})
    pids = _get(res, "linux.resources.pids", dict, {})
    quota, period = cpu.get("quota"), cpu.get("period") or 100_000
    resources = Resources(
        cpu_request_milli=(int(cpu["shares"]) * 1000 // 1024) if cpu.get("shares") else None,
        cpu_limit_milli=(int(quota) * 1000 // int(period)) if quota and quota > 0 else None,
        memory_limit_bytes=int(mem["limit"]) if mem.get("limit") else None,
        pids_limit=int(pids["limit"]) if pids.get("limit") else None,
    )
    def mappings(key: str) -> tuple[tuple[int, int, int], ...]:
        out = []
        for i, m in enumerate(_get(linux, f"linux.{key}", list, [])):
            try:
                out.append((int(m["containerID"]), int(m["hostID"]), int(m["size"])))
            except (KeyError, TypeError, ValueError) as exc:
                raise SpecError(f"linux.{key}[{i}]", "Invalid value: needs containerID, hostID "
                                "and size") from exc
        return tuple(out)
    spec = ContainerSpec(
        rootfs=rootfs,
        uid_mappings=mappings("uidMappings"),
        gid_mappings=mappings("gidMappings"),
        cgroup_path=_get(linux, "linux.cgroupsPath", str, "").strip("/") or
        (bundle_cgroup(container_id or os.path.basename(os.path.abspath(bundle)))
         if resources != Resources() else ""),
        resources=resources,
        args=tuple(str(a) for a in _get(process, "process.args", list, [])),
        env=tuple(str(e) for e in _get(process, "process.env", list, [])),
        cwd=_get(process, "process.cwd", str, "/"),
        uid=int(_get(user, "process.user.uid", int, 0)),
        gid=int(_get(user, "process.user.gid", int, 0)),
        additional_gids=tuple(_get(user, "process.user.additionalGids", list, [])),
        hostname=_get(cfg, "hostname", str, ""),
        readonly_rootfs=bool(_get(root, "root.readonly", bool, False)),
        mounts=tuple(mounts),
        namespaces=tuple(namespaces),
        join_namespaces=tuple(joins),
        capabilities=tuple(_get(caps, "process.capabilities.bounding", list,
                                list(DEFAULT_CAPABILITIES))),
        no_new_privileges=bool(_get(process, "process.noNewPrivileges", bool, False)),
        rlimits=tuple(rlimits),
        masked_paths=tuple(_get(linux, "linux.maskedPaths", list, list(DEFAULT_MASKED_PATHS))),
        readonly_paths=tuple(_get(linux, "linux.readonlyPaths", list,
                                  list(DEFAULT_READONLY_PATHS))),
    )
    spec.check()
    return spec


def spec_to_dict(spec: ContainerSpec) -> dict[str, Any]:
    """Plain data (JSON-able) for the launcher's protocol and state files."""
    d = dataclasses.asdict(spec)
    d.pop("extra", None)
    return d


def spec_from_dict(d: Any) -> ContainerSpec:
    """The inverse of spec_to_dict; unknown or mistyped fields are a SpecError."""
    if not isinstance(d, dict):
        raise SpecError("spec", "Invalid value: expected an object")
    known = {f.name for f in dataclasses.fields(ContainerSpec)} - {"extra"}
    unknown = sorted(set(d) - known)
    if unknown:
        raise SpecError(f"spec.{unknown[0]}", "unknown field")
    try:
        fields = dict(d)
        if "mounts" in fields:
            fields["mounts"] = tuple(Mount(**{**m, "options": tuple(m.get("options") or ())})
                                     for m in fields["mounts"])
        if "resources" in fields:
            fields["resources"] = Resources(**(fields["resources"] or {}))
        for name in ("args", "env", "additional_gids", "namespaces", "capabilities",
                     "masked_paths", "readonly_paths"):
            if name in fields:
                fields[name] = tuple(fields[name])
        for name in ("join_namespaces", "rlimits", "uid_mappings", "gid_mappings"):
            if name in fields:
                fields[name] = tuple(tuple(x) for x in fields[name])
        spec = ContainerSpec(**fields)
    except (TypeError, ValueError) as exc:
        raise SpecError("spec", f"Invalid value: {exc}") from exc
    _check_types(spec, "spec")
    spec.check()
    return spec


_SCALARS: dict[str, type] = {"str": str, "int": int, "bool": bool}


def _fits(value: Any, annotation: str) -> bool:
    """Does ``value`` have the type the (string) annotation names?  The spec's own few:
    scalars, ``X | None``, ``tuple[X, ...]`` and fixed tuples of scalars."""
    annotation = annotation.strip()
    if annotation.endswith("| None"):
        return value is None or _fits(value, annotation[:-len("| None")])
    if annotation in _SCALARS:
        want = _SCALARS[annotation]
        return isinstance(value, want) and (want is bool or not isinstance(value, bool))
    if annotation.startswith("tuple[") and annotation.endswith(", ...]"):
        inner = annotation[len("tuple["):-len(", ...]")]
        return isinstance(value, tuple) and all(_fits(v, inner) for v in value)
    if annotation.startswith("tuple[") and annotation.endswith("]"):
        parts = annotation[len("tuple["):-1].split(", ")
        return isinstance(value, tuple) and len(value) == len(parts) and \
            all(_fits(v, t) for v, t in zip(value, parts, strict=True))
    return True  # a nested dataclass: checked field by field by the caller


def _check_types(obj: Any, path: str) -> None:
    """A spec from the launcher's socket is JSON: every field must be of its type, or the
    error is a SpecError naming it rather than a TypeError deep in the set-up."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _check_types(value, f"{path}.{f.name}")
        elif f.name == "mounts":
            for i, m in enumerate(value):
                _check_types(m, f"{path}.mounts[{i}]")
        elif f.name != "extra" and not _fits(value, str(f.type)):
            raise SpecError(f"{path}.{f.name}", f"Invalid value: {value!r:.80}: expected {f.type}")
