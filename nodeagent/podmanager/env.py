"""A container's environment and command line, as kubelet makes them.

Order, lowest first: the service variables of every Service in the pod's
namespace (``KUBIA_SERVICE_HOST``, ``KUBIA_SERVICE_PORT``, docker-link style
``KUBIA_PORT_80_TCP_ADDR`` ..., when enableServiceLinks is on, as by default),
then ``envFrom`` sources in order, then ``env`` in order, each value able to
refer to the ones before with ``$(VAR)``.  ``command`` and ``args`` are
expanded with the final environment (``command_line``).  Expansion is Kubernetes': ``$(VAR)``
of a defined name is replaced, of an undefined one left as written, ``$$``
is a literal ``$``.

Lookups (ConfigMaps, Secrets) go through a callback, so this module does no
I/O.  A missing ConfigMap, Secret or key that is not optional is an error
with kubelet's wording, which the pod manager reports as
CreateContainerConfigError.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from nodeagent.objects.quantity import parse_quantity

__all__ = ["EnvError", "command_line", "container_env", "downward_file", "expand",
           "service_env"]

Obj = dict[str, Any]
# (kind "ConfigMap"/"Secret", namespace, name) -> the object, or None if there is none
Lookup = Callable[[str, str, str], Obj | None]


class EnvError(Exception):
    """The container cannot be configured (kubelet: CreateContainerConfigError)."""


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def _is_master(svc: Obj) -> bool:
    return svc["metadata"].get("namespace") == "default" and \
        svc["metadata"].get("name") == "kubernetes"


def service_env(services: list[Obj]) -> dict[str, str]:
    """The variables kubelet adds for each Service (with a cluster IP) of the namespace."""
    out: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: s["metadata"]["name"]):
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None" or spec.get("type") == "ExternalName":
            continue
        name = _env_name(svc["metadata"]["name"])
        ports = spec.get("ports") or []
        out[f"{name}_SERVICE_HOST"] = ip
        if not ports:
            continue
        out[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
        for p in ports:
            if p.get("name"):
                out[f"{name}_SERVICE_PORT_{_env_name(p['name'])}"] = str(p["port"])
        first = ports[0]
        out[f"{name}_PORT"] = f"{first.get('protocol', 'TCP').lower()}://{ip}:{first['port']}"
        for p in ports:
            proto = p.get("protocol", "TCP")
            prefix = f"{name}_PORT_{p['port']}_{proto}"
            out[prefix] = f"{proto.lower()}://{ip}:{p['port']}"
            out[f"{prefix}_PROTO"] = proto.lower()
            out[f"{prefix}_PORT"] = str(p["port"])
            out[f"{prefix}_ADDR"] = ip
    return out


_REF = re.compile(r"\$(\$|\(([^)]*)\))")


def expand(text: str, env: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(1) == "$":
            return "$"
        name = m.group(2)
        return env[name] if name in env else m.group(0)
    return _REF.sub(sub, text)


def downward_file(pod: Obj, path: str) -> str:
    """A downwardAPI volume file's content: a fieldRef's value, where ``metadata.labels``
    and ``metadata.annotations`` may also be whole (``key="value"`` lines, sorted, as
    kubelet writes them)."""
    if path in ("metadata.labels", "metadata.annotations"):
        values = pod["metadata"].get(path.split(".")[1]) or {}
        return "\n".join(f"{k}={json.dumps(str(v))}" for k, v in sorted(values.items()))
    return _field(pod, path)


def _field(pod: Obj, path: str) -> str:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.hostIP": status.get("hostIP"), "status.podIP": status.get("podIP"),
        "status.podIPs": ",".join(p["ip"] for p in status.get("podIPs") or []),
        "status.hostIPs": ",".join(p["ip"] for p in status.get("hostIPs") or []),
    }
    if path not in simple:
        raise EnvError(f"unsupported fieldRef fieldPath: {path}")
    return simple[path] or ""


def _resource(container: Obj, ref: Obj) -> str:
    resource = ref.get("resource", "")
    kind, _, name = resource.partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if value is None:
        return "0" if kind == "requests" else ""  # kubelet: node allocatable for limits
    amount = parse_quantity(str(value)).value / parse_quantity(str(ref.get("divisor") or "1")).value
    return str(math.ceil(amount))


def _source_data(kind: str, obj: Obj) -> dict[str, str]:
    if kind == "ConfigMap":
        data = dict(obj.get("data") or {})
        for k, v in (obj.get("binaryData") or {}).items():
            data[k] = base64.b64decode(v).decode(errors="replace")
        return data
    return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}


def container_env(pod: Obj, container: Obj, lookup: Lookup,
                  services: list[Obj]) -> dict[str, str]:
    """The container's environment (without the image's, which goes under it)."""
    ns = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    # The kubernetes Service's variables always (kubelet's master service), the other
    # Services' of the namespace with service links on.
    links = (pod.get("spec") or {}).get("enableServiceLinks", True)
    env.update(service_env([s for s in services if links or _is_master(s)]))
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = source.get(key)
            if ref is None:
                continue
            obj = lookup(kind, ns, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'{kind.lower()} "{ref.get("name")}" not found')
            for k, v in _source_data(kind, obj).items():
                env[prefix + k] = v
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var or var.get("valueFrom") is None:
            env[name] = expand(var.get("value") or "", env)
            continue
        vf = var["valueFrom"]
        if vf.get("fieldRef"):
            env[name] = _field(pod, vf["fieldRef"].get("fieldPath", ""))
        elif vf.get("resourceFieldRef"):
            env[name] = _resource(container, vf["resourceFieldRef"])
        else:
            for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                ref = vf.get(key)
                if ref is None:
                    continue
                obj = lookup(kind, ns, ref.get("name", ""))
                data = _source_data(kind, obj) if obj is not None else None
                if data is None or ref.get("key") not in data:
                    if ref.get("optional"):
                        break
                    if data is None:
                        raise EnvError(f'{kind.lower()} "{ref.get("name")}" not found')
                    raise EnvError(f'couldn\'t find key {ref.get("key")} in {kind} '
                                   f'{ns}/{ref.get("name")}')
                env[name] = data[ref["key"]]
    return env


def command_line(container: Obj, env: Mapping[str, str], entrypoint: list[str],
                 cmd: list[str]) -> list[str]:
    """Kubernetes' rule: command replaces the image's ENTRYPOINT, args its CMD (and a
    command without args drops the CMD); both expanded with the environment."""
    command = [expand(a, env) for a in container.get("command") or []]
    args = [expand(a, env) for a in container.get("args") or []]
    if command:
        return command + args
    return list(entrypoint) + (args if container.get("args") else list(cmd))
