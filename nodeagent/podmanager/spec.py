"""From a Pod's container to the runtime's ContainerSpec, as kubelet and its runtime do.

The container joins its pod's network namespace (the sandbox), so the pod's
containers share one IP and localhost; its hostname is the pod's name; the
image's environment comes first and the pod's on top, plus HOSTNAME;
``command``/``args`` replace ENTRYPOINT/CMD (env.command_line); the user is
securityContext's runAsUser/runAsGroup (container over pod) or the image's
numeric USER; capabilities are the runtime defaults with securityContext's
add and drop; readOnlyRootFilesystem and resource limits apply.  Container
ids are ``<pod uid>_<container>_<attempt>``, so the pod manager can tell, from
the runtime alone after a restart, which pod and which attempt a container is.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from nodeagent.objects.podutil import container_resources
from runtime.images import Image
from runtime.spec import DEFAULT_CAPABILITIES, ContainerSpec, Mount

__all__ = ["container_id", "container_spec", "parse_container_id"]

Obj = dict[str, Any]


def container_id(pod_uid: str, name: str, attempt: int) -> str:
    return f"{pod_uid}_{name}_{attempt}"


def parse_container_id(cid: str) -> tuple[str, str, int] | None:
    """(pod uid, container name, attempt), or None for a container that is not a pod's."""
    parts = cid.rsplit("_", 2)
    if len(parts) != 3 or not parts[2].isdigit():
        return None
    return parts[0], parts[1], int(parts[2])


def _ids(pod: Obj, container: Obj, image: Image) -> tuple[int, int]:
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = container.get("securityContext") or {}
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    gid = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    user, _, group = image.user.partition(":")
    if uid is None:
        uid = int(user) if user.isdigit() else 0
    if gid is None:
        gid = int(group) if group.isdigit() else (uid if uid and not group else 0)
    return int(uid), int(gid)


def _capabilities(container: Obj) -> tuple[str, ...]:
    caps = (container.get("securityContext") or {}).get("capabilities") or {}

    def full(name: str) -> str:
        name = name.upper()
        return name if name.startswith("CAP_") else f"CAP_{name}"
    drop = {full(c) for c in caps.get("drop") or []}
    if "CAP_ALL" in drop:
        base: list[str] = []
    else:
        base = [c for c in DEFAULT_CAPABILITIES if c not in drop]
    return tuple(base + [full(c) for c in caps.get("add") or [] if full(c) not in base])


def _seccomp(pod: Obj, container: Obj) -> str:
    """The container's seccompProfile, else the pod's, else RuntimeDefault: kubelet's
    --seccomp-default, as Docker runs every container.  Unconfined: none."""
    profile = ((container.get("securityContext") or {}).get("seccompProfile") or
               ((pod.get("spec") or {}).get("securityContext") or {}).get("seccompProfile") or {})
    return "" if profile.get("type") == "Unconfined" else "RuntimeDefault"


def container_spec(pod: Obj, container: Obj, image: Image, *, rootfs: str, env: dict[str, str],
                   argv: list[str], mounts: list[Mount], netns_path: str | None,
                   cgroup_path: str, pid_namespace: str | None = None) -> ContainerSpec:
    """``pid_namespace``: a running container's (``/proc/PID/ns/pid``), joined by an
    ephemeral container that targets it."""
    meta, spec = pod["metadata"], pod.get("spec") or {}
    merged: dict[str, str] = {}
    for item in image.env:
        k, _, v = item.partition("=")
        merged[k] = v
    merged.setdefault("PATH", ContainerSpec.env[0].partition("=")[2])
    merged["HOSTNAME"] = spec.get("hostname") or meta["name"]
    merged.update(env)
    if container.get("tty"):
        merged.setdefault("TERM", "xterm")  # as containerd's CRI does for a terminal
    uid, gid = _ids(pod, container, image)
    sc = container.get("securityContext") or {}
    base = ContainerSpec(rootfs=rootfs, args=tuple(argv))
    return replace(
        base,
        env=tuple(f"{k}={v}" for k, v in merged.items()),
        cwd=container.get("workingDir") or image.working_dir,
        uid=uid, gid=gid,
        additional_gids=tuple(((spec.get("securityContext") or {}).get("supplementalGroups")) or ()),
        hostname=spec.get("hostname") or meta["name"],
        readonly_rootfs=bool(sc.get("readOnlyRootFilesystem")),
        mounts=tuple(mounts),
        join_namespaces=((("network", netns_path),) if netns_path else ())
        + ((("pid", pid_namespace),) if pid_namespace else ()),
        # hostPID and hostIPC: the container keeps the host's (node's) namespaces.
        namespaces=tuple(ns for ns in base.namespaces
                         if not (ns == "pid" and spec.get("hostPID"))
                         and not (ns == "ipc" and spec.get("hostIPC"))),
        capabilities=_capabilities(container),
        no_new_privileges=sc.get("allowPrivilegeEscalation") is not True,
        seccomp=_seccomp(pod, container),
        cgroup_path=cgroup_path,
        resources=container_resources(container).as_resources(),
        terminal=bool(container.get("tty")),
    )
