"""Pod Security admission, as Kubernetes' PodSecurity admission plugin enforces the Pod
Security Standards: a namespace's ``pod-security.kubernetes.io/enforce`` label names its
level -- ``privileged`` (anything), ``baseline`` (no known privilege escalation) or
``restricted`` (hardened) -- and a pod that violates it is refused with every violation
named, in Kubernetes' words::

    pods "x" is forbidden: violates PodSecurity "baseline:latest": host namespaces
    (hostNetwork=true), hostPath volumes (volume "root")

Without the label a namespace is ``baseline``, but kube-system, which is ``privileged``:
a hostPath ``/`` or a host-namespace pod needs a namespace an administrator opened.
The checks are the standards' own (v1.29 "latest"), on the fields this project serves.
"""

from __future__ import annotations

from typing import Any

from nodeagent.objects.podutil import containers_of

__all__ = ["LABEL", "LEVELS", "level_of", "violations"]

LABEL = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")
DEFAULT_LEVEL = "baseline"
EXEMPT = {"kube-system": "privileged"}
# Baseline: capabilities a container may add (the container runtime's default set).
BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                 "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}


def level_of(namespace: dict[str, Any] | None, name: str) -> str:
    """The level a namespace enforces: its label's, else the default."""
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    value = labels.get(LABEL)
    if value in LEVELS:
        return str(value)
    return EXEMPT.get(name, DEFAULT_LEVEL)


def _names(items: list[str]) -> str:
    return ", ".join(f'"{i}"' for i in items)


def _baseline(spec: dict[str, Any]) -> list[str]:
    out = []
    host = [f"{f}=true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f) is True]
    if host:
        out.append(f"host namespaces ({', '.join(host)})")
    privileged = [c.get("name", "") for c in containers_of(spec)
                  if (c.get("securityContext") or {}).get("privileged") is True]
    if privileged:
        out.append(f"privileged (container{'s' if len(privileged) > 1 else ''} "
                   f"{_names(privileged)} must not set securityContext.privileged=true)")
    caps: dict[str, list[str]] = {}
    for c in containers_of(spec):
        for cap in ((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or []:
            if str(cap).removeprefix("CAP_") not in BASELINE_CAPS:
                caps.setdefault(c.get("name", ""), []).append(str(cap))
    if caps:
        added = sorted({cap for v in caps.values() for cap in v})
        out.append(f"non-default capabilities (container{'s' if len(caps) > 1 else ''} "
                   f"{_names(sorted(caps))} must not include {_names(added)} in "
                   "securityContext.capabilities.add)")
    host_paths = [v.get("name", "") for v in spec.get("volumes") or [] if "hostPath" in v]
    if host_paths:
        out.append(f"hostPath volumes (volume{'s' if len(host_paths) > 1 else ''} "
                   f"{_names(host_paths)})")
    ports = []
    for c in containers_of(spec):
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                ports.append(str(p["hostPort"]))
    if ports:
        out.append(f"hostPort (container{'s' if len(ports) > 1 else ''} uses hostPort "
                   f"{', '.join(ports)})")
    unconfined = [c.get("name", "") for c in containers_of(spec)
                  if ((c.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
                  == "Unconfined"]
    if ((spec.get("securityContext") or {}).get("seccompProfile") or {}).get("type") == \
            "Unconfined":
        out.append('seccompProfile (pod must not set securityContext.seccompProfile.type to '
                   '"Unconfined")')
    if unconfined:
        out.append(f"seccompProfile (container{'s' if len(unconfined) > 1 else ''} "
                   f"{_names(unconfined)} must not set securityContext.seccompProfile.type "
                   'to "Unconfined")')
    unsafe = [s.get("name", "") for s in (spec.get("securityContext") or {}).get("sysctls") or []
              if s.get("name") not in SAFE_SYSCTLS]
    if unsafe:
        out.append(f"forbidden sysctls ({', '.join(unsafe)})")
    proc = [c.get("name", "") for c in containers_of(spec)
            if (c.get("securityContext") or {}).get("procMount") not in (None, "Default")]
    if proc:
        out.append(f"procMount (containers {_names(proc)} must not set "
                   "securityContext.procMount)")
    return out


def _restricted(spec: dict[str, Any]) -> list[str]:
    out = []
    bad_volumes = [v.get("name", "") for v in spec.get("volumes") or []
                   if not any(k in v for k in RESTRICTED_VOLUMES)]
    if bad_volumes:
        out.append(f"restricted volume types (volume{'s' if len(bad_volumes) > 1 else ''} "
                   f"{_names(bad_volumes)})")
    pod_sc = spec.get("securityContext") or {}
    escalation, non_root, root_uid, seccomp, caps_drop, caps_add = [], [], [], [], [], []
    for c in containers_of(spec):
        sc, name = c.get("securityContext") or {}, c.get("name", "")
        if sc.get("allowPrivilegeEscalation") is not False:
            escalation.append(name)
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            non_root.append(name)
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            root_uid.append(name)
        profile = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if profile not in ("RuntimeDefault", "Localhost"):
            seccomp.append(name)
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            caps_drop.append(name)
        if any(str(a).removeprefix("CAP_") != "NET_BIND_SERVICE" for a in caps.get("add") or []):
            caps_add.append(name)
    if escalation:
        out.append(f"allowPrivilegeEscalation != false (container{'s' if len(escalation) > 1 else ''}"
                   f" {_names(escalation)} must set securityContext.allowPrivilegeEscalation=false)")
    if non_root:
        out.append(f"runAsNonRoot != true (pod or container{'s' if len(non_root) > 1 else ''} "
                   f"{_names(non_root)} must set securityContext.runAsNonRoot=true)")
    if root_uid:
        out.append(f"runAsUser=0 (container{'s' if len(root_uid) > 1 else ''} "
                   f"{_names(root_uid)} must not set runAsUser=0)")
    if seccomp:
        out.append(f"seccompProfile (pod or container{'s' if len(seccomp) > 1 else ''} "
                   f"{_names(seccomp)} must set securityContext.seccompProfile.type to "
                   '"RuntimeDefault" or "Localhost")')
    if caps_drop or caps_add:
        parts = []
        if caps_drop:
            parts.append(f"container{'s' if len(caps_drop) > 1 else ''} {_names(caps_drop)} "
                         'must set securityContext.capabilities.drop=["ALL"]')
        if caps_add:
            parts.append(f"container{'s' if len(caps_add) > 1 else ''} {_names(caps_add)} "
                         'must not include capabilities other than "NET_BIND_SERVICE" in '
                         "securityContext.capabilities.add")
        out.append(f"unrestricted capabilities ({'; '.join(parts)})")
    return out


def violations(pod: dict[str, Any], level: str) -> list[str]:
    """What in ``pod`` the ``level`` forbids (empty: admitted)."""
    spec = pod.get("spec") or {}
    if level == "privileged":
        return []
    found = _baseline(spec)
    if level == "restricted":
        found += _restricted(spec)
    return found
