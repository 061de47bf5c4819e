"""Each namespace's ``default`` ServiceAccount and its ``kube-root-ca.crt`` ConfigMap,
as kube-controller-manager's serviceaccount and root-ca-cert-publisher controllers keep
them: made where missing, the ConfigMap put back when it differs from the cluster's CA
bundle (a CA rotation reaches every pod's ``ca.crt`` this way).  Level-triggered: each
pass looks at every active namespace."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from nodeagent.api.serviceaccounts import DEFAULT_SA, ROOT_CA_CONFIGMAP
from nodeagent.api.status import ApiError
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import CONFIGMAPS, NAMESPACES, SERVICE_ACCOUNTS, Resource

__all__ = ["ServiceAccounts"]

log = logging.getLogger("nodeagent.coordinator")

PREFIXES = (NAMESPACES.prefix(None), SERVICE_ACCOUNTS.prefix(None))


class ServiceAccounts:
    """``ca_bundle``: the cluster CAs' PEM (None: the cluster has no CA, no ConfigMap)."""

    def __init__(self, objects: Objects, ca_bundle: Callable[[], bytes] | None) -> None:
        self.objects, self.ca_bundle = objects, ca_bundle

    async def sync(self) -> float | None:
        accounts = {(sa["metadata"]["namespace"], sa["metadata"]["name"])
                    for sa in self.objects.list(SERVICE_ACCOUNTS, None)["items"]}
        bundle = self.ca_bundle().decode() if self.ca_bundle is not None else None
        for ns in self.objects.list(NAMESPACES, None)["items"]:
            name = ns["metadata"]["name"]
            if ns["metadata"].get("deletionTimestamp") or \
                    (ns.get("status") or {}).get("phase") == "Terminating":
                continue
            try:
                if (name, DEFAULT_SA) not in accounts:
                    await self._create(SERVICE_ACCOUNTS, name, {"metadata": {"name": DEFAULT_SA}})
                if bundle is not None:
                    await self._publish(name, bundle)
            except ApiError as exc:
                if exc.code not in (403, 404, 409):  # the namespace went meanwhile
                    raise
        # The bundle changes only on a CA rotation, which writes no object: look again.
        return 60.0 if bundle is not None else None

    async def _create(self, res: Resource, namespace: str, body: dict[str, Any]) -> None:
        try:
            await self.objects.create(res, namespace, body)
            log.info("namespace=%s created %s %s", namespace, body.get("kind") or "serviceaccount",
                     body["metadata"]["name"])
        except ApiError as exc:
            if exc.code != 409:
                raise

    async def _publish(self, namespace: str, bundle: str) -> None:
        try:
            current = self.objects.get(CONFIGMAPS, namespace, ROOT_CA_CONFIGMAP)
        except ApiError as exc:
            if exc.code != 404:
                raise
            await self._create(CONFIGMAPS, namespace, {
                "kind": "ConfigMap", "metadata": {"name": ROOT_CA_CONFIGMAP, "annotations": {
                    "kubernetes.io/description": "Contains a CA bundle that can be used to "
                    "verify the kube-apiserver when using internal endpoints such as the "
                    "internal service IP or kubernetes.default.svc. No other usage is "
                    "guaranteed across distributions of Kubernetes clusters."}},
                "data": {"ca.crt": bundle}})
            return
        if (current.get("data") or {}) != {"ca.crt": bundle}:
            await self.objects.update(CONFIGMAPS, namespace, ROOT_CA_CONFIGMAP,
                                      {**current, "data": {"ca.crt": bundle}})
