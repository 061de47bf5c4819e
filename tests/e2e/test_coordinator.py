"""The coordinator inside a running agent: a Deployment applied with nodectl becomes a
ReplicaSet and pods, a Service gets its ClusterIP and Endpoints, and with no node to
run them the pods stay Pending with kube-scheduler's reason, as `nodectl describe`
shows.  (Pods start for real once the pod manager registers the node.)"""

from __future__ import annotations

from test_nodectl import Nodectl
from waiting import until

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: kubia}
spec:
  replicas: 3
  selector: {matchLabels: {app: kubia}}
  template:
    metadata: {labels: {app: kubia}}
    spec:
      containers: [{name: app, image: "kubia:latest", ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: kubia}
spec:
  selector: {app: kubia}
  ports: [{port: 80, targetPort: 8080}]
"""


def test_deployment_to_pending_pods_through_the_api(agent):
    nodectl = Nodectl(agent)
    nodectl("create", "namespace", "demo")
    nodectl("-n", "demo", "apply", "-f", "-", stdin=MANIFEST)
    with agent.client() as http:
        def pods() -> list:
            items = http.get("/api/v1/namespaces/demo/pods").json()["items"]
            return items if len(items) == 3 else []
        made = until(pods)
        assert len(made) == 3 and all(p["metadata"]["name"].startswith("kubia-") for p in made)
        rs = http.get("/apis/apps/v1/namespaces/demo/replicasets").json()["items"]
        assert len(rs) == 1 and rs[0]["metadata"]["labels"]["pod-template-hash"]
        svc = http.get("/api/v1/namespaces/demo/services/kubia").json()
        assert svc["spec"]["clusterIP"].startswith("10.96.")
        assert until(lambda: http.get("/api/v1/namespaces/demo/endpoints/kubia").status_code == 200)
    described = until(lambda: "no nodes available to schedule pods" in nodectl(
        "-n", "demo", "describe", "pod", made[0]["metadata"]["name"]).stdout)
    assert described
    out = nodectl("-n", "demo", "get", "deployment", "kubia").stdout
    assert "kubia" in out and "0/3" in out
    # Deleting the namespace takes the unbound pods with it at once.
    nodectl("delete", "namespace", "demo")
    assert until(lambda: "demo" not in nodectl("get", "namespaces").stdout)


def test_nodectl_delete_cascades_as_kubectl(agent):
    nodectl = Nodectl(agent)
    nodectl("create", "namespace", "gc")
    nodectl("-n", "gc", "apply", "-f", "-", stdin=MANIFEST)
    with agent.client() as http:
        def pods() -> int:
            return len(http.get("/api/v1/namespaces/gc/pods").json()["items"])
        assert until(lambda: pods() == 3)
        # --cascade=orphan: the Deployment goes, its ReplicaSet and pods stay.
        nodectl("-n", "gc", "delete", "deployment", "kubia", "--cascade=orphan")
        assert until(lambda: http.get("/apis/apps/v1/namespaces/gc/deployments/kubia")
                     .status_code == 404)
        (rs,) = http.get("/apis/apps/v1/namespaces/gc/replicasets").json()["items"]
        assert "ownerReferences" not in rs["metadata"] and pods() == 3
        # The default (background): the ReplicaSet goes, then its pods.
        out = nodectl("-n", "gc", "delete", "rs", rs["metadata"]["name"]).stdout
        assert out.strip() == f'replicaset.apps "{rs["metadata"]["name"]}" deleted'
        assert until(lambda: pods() == 0)
    p = nodectl("-n", "gc", "delete", "deployment", "x", "--cascade=sideways", ok=False)
    assert "--cascade" in p.stderr
