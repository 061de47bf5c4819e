"""The ServiceAccount admission plugin and the TokenRequest subresource.

Admission, on every pod created (as Kubernetes' ``ServiceAccount`` plugin): the pod
runs as ``spec.serviceAccountName`` (``default`` unless named), which must exist --
but for ``default``, which the coordinator makes in every namespace and may not have
made yet in one just created.  Unless the pod or its ServiceAccount says
``automountServiceAccountToken: false``, the pod gets the projected volume
``kube-api-access-<random>`` -- a bound token, the cluster's CA (``kube-root-ca.crt``)
and the namespace -- mounted read-only in every container at
``/var/run/secrets/kubernetes.io/serviceaccount``.  The node's pod manager fills it
and refreshes the token (podmanager/satokens.py).

TokenRequest (``POST .../serviceaccounts/<name>/token``): a token for the
ServiceAccount, for the audiences asked (the API's by default), for the time asked
(an hour by default, at least ten minutes, capped at MAX_SECONDS), bound to a pod when
``boundObjectRef`` names one.  A node may ask only for tokens bound to its own pods,
for the ServiceAccount they run as (NodeRestriction).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from typing import Any

from nodeagent.api.authn import User
from nodeagent.api.nodeauth import node_name
from nodeagent.api.satokens import API_AUDIENCES, MAX_SECONDS, Bound, TokenSigner
from nodeagent.api.status import ApiError
from nodeagent.clusterpki import SERVER_GROUP
from nodeagent.objects.kinds import NODES, PODS, SERVICE_ACCOUNTS, Resource
from nodeagent.objects.pod import MIN_TOKEN_SECONDS

__all__ = ["MOUNT_PATH", "ROOT_CA_CONFIGMAP", "admit_pod", "token_request"]

Obj = dict[str, Any]
Get = Callable[[Resource, str | None, str], Obj | None]

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DEFAULT_SA = "default"
TOKEN_SECONDS = 3607  # kubelet's projected token: an hour and 7 s (its refresh tells them apart)
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def admit_pod(body: Any, namespace: str, get: Get) -> Any:
    """A pod's body as admitted: its ServiceAccount named, and the volume of its token
    added and mounted.  A new body: only the parts changed are copied (the caller's stays
    as it was).  Raises ApiError 403 for a ServiceAccount that does not exist."""
    if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
        return body  # decoding will say what is wrong with it
    name = body["spec"].get("serviceAccountName") or body["spec"].get("serviceAccount") or \
        DEFAULT_SA
    if not isinstance(name, str):
        return body
    spec = {**body["spec"], "serviceAccountName": name, "serviceAccount": name}
    admitted = {**body, "spec": spec}
    sa = get(SERVICE_ACCOUNTS, namespace, name)
    if sa is None and name != DEFAULT_SA:
        meta = body.get("metadata")
        pod = (meta.get("name") or meta.get("generateName") or "") if isinstance(meta, dict) \
            else ""
        raise ApiError(403, "Forbidden", f'pods "{pod}" is forbidden: error looking up service '
                       f'account {namespace}/{name}: serviceaccount "{name}" not found',
                       details={"name": str(pod), "kind": "pods"})
    automount = spec.get("automountServiceAccountToken")
    if automount is None and sa is not None:
        automount = sa.get("automountServiceAccountToken")
    groups = [key for key in ("initContainers", "containers") if isinstance(spec.get(key), list)]
    containers = [c for key in groups for c in spec[key] if isinstance(c, dict)]
    volumes = spec.get("volumes")
    if automount is False or not containers or (volumes is not None and
                                                not isinstance(volumes, list)) or any(
            isinstance(m, dict) and m.get("mountPath") in (MOUNT_PATH, MOUNT_PATH + "/")
            for c in containers if isinstance(c.get("volumeMounts"), list)
            for m in c["volumeMounts"]):
        return admitted  # no token wanted, or the pod mounts something of its own there
    volume = "kube-api-access-" + "".join(secrets.choice(_ALPHABET) for _ in range(5))
    spec["volumes"] = [*(volumes or []), {"name": volume, "projected": {
        "defaultMode": 0o644,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": TOKEN_SECONDS, "path": "token"}},
            {"configMap": {"name": ROOT_CA_CONFIGMAP,
                           "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]}}]
    mount = {"name": volume, "readOnly": True, "mountPath": MOUNT_PATH}

    def mounted(c: Any) -> Any:
        mounts = c.get("volumeMounts") if isinstance(c, dict) else None
        if not isinstance(c, dict) or (mounts is not None and not isinstance(mounts, list)):
            return c  # decoding will say what is wrong with it
        return {**c, "volumeMounts": [*(mounts or []), mount]}
    for key in groups:
        spec[key] = [mounted(c) for c in spec[key]]
    return admitted


def token_request(signer: TokenSigner, get: Get, user: User, namespace: str, name: str,
                  body: Any, now: dt.datetime) -> Obj:
    """Answer a TokenRequest (the whole object, status with the token)."""
    if not isinstance(body, dict):
        raise ApiError.bad_request("a TokenRequest must be a JSON object")
    if body.get("kind") not in (None, "TokenRequest"):
        raise ApiError.bad_request(f"kind {body.get('kind')!r}: expected TokenRequest")
    spec = body.get("spec") if body.get("spec") is not None else {}
    if not isinstance(spec, dict):
        raise _invalid(name, "spec", spec, "must be an object")
    audiences = spec.get("audiences") or list(API_AUDIENCES)
    if not isinstance(audiences, list) or len(audiences) > 16 or \
            not all(isinstance(a, str) and a for a in audiences):
        raise _invalid(name, "spec.audiences", audiences,
                                     "must be a list of up to 16 non-empty strings")
    seconds = spec.get("expirationSeconds", 3600)
    if seconds is None:
        seconds = 3600
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < MIN_TOKEN_SECONDS:
        raise _invalid(name, "spec.expirationSeconds", seconds,
                                     "may not specify a duration less than 10 minutes")
    if seconds > 2**32:
        raise _invalid(name, "spec.expirationSeconds", seconds,
                                     "may not specify a duration larger than 2^32 seconds")
    seconds = min(seconds, MAX_SECONDS)
    sa = get(SERVICE_ACCOUNTS, namespace, name)
    if sa is None:
        raise ApiError.not_found(SERVICE_ACCOUNTS, name)
    bound = _bound(get, user, namespace, name, spec.get("boundObjectRef"))
    token, expires = signer.issue(namespace, sa, audiences, seconds, bound, now)
    out_spec: Obj = {"audiences": audiences, "expirationSeconds": seconds,
                     "boundObjectRef": spec.get("boundObjectRef")}
    return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
            "spec": out_spec,
            "status": {"token": token,
                       "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}}


def _invalid(name: str, field: str, value: Any, detail: str) -> ApiError:
    """422 naming the field, as the apiserver's validation answers."""
    shown = repr(value) if not isinstance(value, str) else f'"{value}"'
    return ApiError(422, "Invalid", f'TokenRequest.authentication.k8s.io "{name}" is invalid: '
                    f"{field}: Invalid value: {shown}: {detail}",
                    details={"name": name, "group": "authentication.k8s.io",
                             "kind": "TokenRequest",
                             "causes": [{"reason": "FieldValueInvalid", "field": field,
                                         "message": f"Invalid value: {shown}: {detail}"}]})


def _bound(get: Get, user: User, namespace: str, sa_name: str, ref: Any) -> Bound | None:
    """The pod a token is bound to: it must exist (with the uid given), run as the
    ServiceAccount; a node asks only for its own pods' tokens."""
    node = node_name(user) if SERVER_GROUP not in user.groups else None
    if ref is None:
        if node is not None:
            raise ApiError(403, "Forbidden", f"node '{node}' may only request tokens bound "
                           "to its own pods (boundObjectRef)")
        return None
    if not isinstance(ref, dict):
        raise _invalid(sa_name, "spec.boundObjectRef", ref,
                                     "must be an object")
    kind, pod_name = ref.get("kind"), ref.get("name")
    if kind != "Pod":
        raise _invalid(sa_name, "spec.boundObjectRef.kind", kind,
                                     "supported values: \"Pod\"")
    if not isinstance(pod_name, str) or not pod_name:
        raise _invalid(sa_name, "spec.boundObjectRef.name",
                                     pod_name, "Required value")
    pod = get(PODS, namespace, pod_name)
    if pod is None:
        raise ApiError.not_found(PODS, pod_name)
    uid = ref.get("uid")
    if uid not in (None, "") and uid != pod["metadata"].get("uid"):
        raise ApiError(409, "Conflict",
            f"the UID in the bound object reference ({uid}) does not match the UID in record"
            f" ({pod['metadata'].get('uid')}). The object might have been deleted and then "
            "recreated")
    pod_spec = pod.get("spec") or {}
    if (pod_spec.get("serviceAccountName") or DEFAULT_SA) != sa_name:
        raise ApiError.bad_request(f'cannot bind a token of service account "{sa_name}" to '
                                   f'pod "{pod_name}", which runs as '
                                   f'"{pod_spec.get("serviceAccountName") or DEFAULT_SA}"')
    bound_node = pod_spec.get("nodeName") or ""
    if node is not None and bound_node != node:
        raise ApiError(403, "Forbidden", f"node '{node}' may not request a token bound to pod "
                       f"{namespace}/{pod_name}, which is not on it")
    node_obj = get(NODES, None, bound_node) if bound_node else None
    return Bound(pod_name, str(pod["metadata"].get("uid")), bound_node,
                 str((node_obj or {}).get("metadata", {}).get("uid") or ""))
