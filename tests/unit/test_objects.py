"""Decoding, defaults and validation of the kinds, with Kubernetes' field paths and wording."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from nodeagent.objects.codec import (
    DecodeError,
    InvalidError,
    normalize,
    validate_create,
    validate_update,
)
from nodeagent.objects.kinds import by_kind, lookup


def res(kind: str):
    r = by_kind(kind)
    assert r is not None
    return r


def create(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """Decode + default + validate like the API does on create; returns the stored dict."""
    model, out = normalize(res(kind), copy.deepcopy(data))
    validate_create(res(kind), model)
    return out


def errors(kind: str, data: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidError) as info:
        create(kind, data)
    return [str(e) for e in info.value.errors]


def pod(**container: Any) -> dict[str, Any]:
    c = {"name": "main", "image": "busybox", **container}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [c]}}


def deployment(replicas: int = 2) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "kubia"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "kubia"}},
                     "template": {"metadata": {"labels": {"app": "kubia"}},
                                  "spec": {"containers": [{"name": "kubia",
                                                           "image": "luksa/kubia"}]}}}}


# --- defaults ----------------------------------------------------------------------------------


def test_pod_defaults_are_kubernetes_defaults():
    out = create("Pod", pod(ports=[{"containerPort": 8080}],
                            livenessProbe={"httpGet": {"port": 8080, "path": "/"}}))
    spec, c = out["spec"], out["spec"]["containers"][0]
    assert spec["restartPolicy"] == "Always"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert c["ports"][0]["protocol"] == "TCP"
    probe = c["livenessProbe"]
    assert (probe["initialDelaySeconds"], probe["periodSeconds"], probe["timeoutSeconds"],
            probe["successThreshold"], probe["failureThreshold"]) == (0, 10, 1, 1, 3)
    assert probe["httpGet"]["scheme"] == "HTTP"
    assert c["imagePullPolicy"] == "Always"  # no tag means :latest
    assert create("Pod", pod(image="busybox:1.36"))["spec"]["containers"][0][
        "imagePullPolicy"] == "IfNotPresent"


def test_service_defaults():
    out = create("Service", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubia"},
                             "spec": {"selector": {"app": "kubia"}, "ports": [{"port": 80}]}})
    spec = out["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"][0]["targetPort"] == 80
    assert spec["ports"][0]["protocol"] == "TCP"
    affinity = create("Service", {"apiVersion": "v1", "kind": "Service",
                                  "metadata": {"name": "a"},
                                  "spec": {"sessionAffinity": "ClientIP",
                                           "ports": [{"port": 80}]}})["spec"]
    assert affinity["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] == 10800


def test_deployment_defaults():
    spec = create("Deployment", deployment())["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600


def test_secret_string_data_is_encoded_into_data():
    out = create("Secret", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                            "stringData": {"user": "admin"}})
    assert out["data"] == {"user": "YWRtaW4="}
    assert "stringData" not in out


def test_ingress_v1beta1_is_converted_to_v1():
    model, out = normalize(res("Ingress"), {
        "apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "i"},
        "spec": {"rules": [{"host": "kubia.example.com", "http": {"paths": [
            {"path": "/kubia", "backend": {"serviceName": "kubia", "servicePort": 80}}]}}]}})
    validate_create(res("Ingress"), model)
    path = out["spec"]["rules"][0]["http"]["paths"][0]
    assert out["apiVersion"] == "networking.k8s.io/v1"
    assert path["backend"] == {"service": {"name": "kubia", "port": {"number": 80}}}
    assert path["pathType"] == "ImplementationSpecific"


# --- validation --------------------------------------------------------------------------------


def test_port_out_of_range_names_the_field():
    d = deployment()
    d["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"containerPort": 8080}, {"containerPort": 70000}]
    assert errors("Deployment", d) == [
        "spec.template.spec.containers[0].ports[1].containerPort: Invalid value: 70000: "
        "must be between 1 and 65535, inclusive"]


def test_selector_must_match_template_labels():
    d = deployment()
    d["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    assert any(e.startswith("spec.template.metadata.labels: Invalid value:")
               and "`selector` does not match template `labels`" in e
               for e in errors("Deployment", d))


def test_names_must_be_dns1123():
    p = pod()
    p["metadata"]["name"] = "Bad_Name"
    assert errors("Pod", p)[0].startswith('metadata.name: Invalid value: "Bad_Name": '
                                          "a lowercase RFC 1123 subdomain")


def test_labels_and_annotations_are_checked():
    p = pod()
    p["metadata"]["labels"] = {"bad key": "v", "ok": "x" * 64}
    errs = errors("Pod", p)
    assert any(e.startswith('metadata.labels: Invalid value: "bad key"') for e in errs)
    assert any("must be no more than 63 characters" in e for e in errs)


def test_requests_must_not_exceed_limits():
    errs = errors("Pod", pod(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "500m"}}))
    assert errs == ['spec.containers[0].resources.requests: Invalid value: "2": must be less '
                    'than or equal to cpu limit of 500m']


def test_bad_quantity_names_the_field():
    errs = errors("Pod", pod(resources={"limits": {"memory": "12 Gi"}}))
    assert errs[0].startswith('spec.containers[0].resources.limits.memory: Invalid value: '
                              '"12 Gi": quantities must match the regular expression')


def test_probe_rules():
    errs = errors("Pod", pod(ports=[{"name": "http", "containerPort": 80}],
                             readinessProbe={"httpGet": {"port": "web"}, "timeoutSeconds": -2,
                                             "periodSeconds": 10, "failureThreshold": -1}))
    joined = "\n".join(errs)
    assert 'spec.containers[0].readinessProbe.httpGet.port: Invalid value: "web"' in joined
    assert "spec.containers[0].readinessProbe.failureThreshold: Invalid value: -1" in joined
    assert "spec.containers[0].readinessProbe.timeoutSeconds: Invalid value: -2" in joined


def test_probe_needs_exactly_one_handler():
    errs = errors("Pod", pod(livenessProbe={"periodSeconds": 5}))
    assert errs == ["spec.containers[0].livenessProbe: Required value: must specify a handler "
                    "type"]


def test_volume_mounts_must_name_a_volume_and_env_names_are_checked():
    errs = errors("Pod", pod(volumeMounts=[{"name": "html", "mountPath": "/x"}],
                             env=[{"name": "1BAD", "value": "x"}]))
    assert 'spec.containers[0].volumeMounts[0].name: Not found: "html"' in errs
    assert any(e.startswith('spec.containers[0].env[0].name: Invalid value: "1BAD"') for e in errs)


def test_duplicate_container_names_and_ports():
    p = pod()
    p["spec"]["containers"].append({"name": "main", "image": "x"})
    assert 'spec.containers[1].name: Duplicate value: "main"' in errors("Pod", p)


def test_service_ports_need_names_when_several():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"port": 80}, {"port": 443}]}}
    errs = errors("Service", svc)
    assert "spec.ports[0].name: Required value" in errs
    assert "spec.ports[1].name: Required value" in errs


def test_nodeport_range():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}}
    assert errors("Service", svc) == [
        "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. "
        "The range of valid ports is 30000-32767"]


# --- strict decoding ---------------------------------------------------------------------------


def test_unknown_field_is_rejected_with_its_path():
    d = deployment()
    d["spec"]["resources"] = {"requests": {"cpu": "500m"}}
    with pytest.raises(DecodeError) as info:
        create("Deployment", d)
    assert str(info.value) == ('Deployment in version "v1" cannot be handled as a Deployment: '
                               'strict decoding error: unknown field "spec.resources"')


@pytest.mark.parametrize("key", ["-", "a-b", "str", "function-after[x]"])
def test_unknown_fields_named_like_pydantics_branch_tags_are_refused(key: str):
    """Found by the body fuzzer: a field named "-" was taken for a union's tag."""
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, key: None}
    with pytest.raises(DecodeError) as info:
        create("ConfigMap", cm)
    assert f'unknown field "{key}"' in str(info.value)


def test_kubernetes_fields_the_models_lack_are_kept_where_they_were():
    p = pod(resizePolicy=[{"resourceName": "cpu", "restartPolicy": "NotRequired"}])
    p["spec"]["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": "zone",
                                               "whenUnsatisfiable": "DoNotSchedule"}]
    out = create("Pod", p)
    assert out["spec"]["containers"][0]["resizePolicy"][0]["resourceName"] == "cpu"
    assert out["spec"]["topologySpreadConstraints"] == p["spec"]["topologySpreadConstraints"]
    assert out["spec"]["restartPolicy"] == "Always"  # defaults still apply around them


@pytest.mark.parametrize(("field", "value", "want"), [
    ("topologySpreadConstraints", {"maxSkew": 1}, "expected array"),
    ("topologySpreadConstraints", ["zone"], "expected object"),
    ("dnsConfig", "8.8.8.8", "expected object"),
    ("hostnameOverride", 7, "expected string"),
])
def test_kept_fields_are_held_to_kubernetes_json_types(field: str, value: Any, want: str):
    """Kept as sent, but only in a shape Kubernetes' clients can read back."""
    p = pod()
    p["spec"][field] = value
    with pytest.raises(DecodeError) as info:
        create("Pod", p)
    assert f"spec.{field}: Invalid value" in str(info.value) and want in str(info.value)


def test_wrong_type_is_rejected_with_its_path():
    d = deployment()
    d["spec"]["replicas"] = "three"
    with pytest.raises(DecodeError) as info:
        create("Deployment", d)
    assert "spec.replicas" in str(info.value)


def test_kind_must_match_the_resource():
    with pytest.raises(DecodeError):
        create("Pod", {**pod(), "kind": "Service"})


# --- updates -----------------------------------------------------------------------------------


def test_deployment_selector_is_immutable():
    old, _ = normalize(res("Deployment"), deployment())
    new_d = deployment()
    new_d["spec"]["selector"] = {"matchLabels": {"app": "kubia", "v": "2"}}
    new_d["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    new, _ = normalize(res("Deployment"), new_d)
    with pytest.raises(InvalidError) as info:
        validate_update(res("Deployment"), new, old)
    assert any(e.path == "spec.selector" and "field is immutable" in str(e)
               for e in info.value.errors)


def test_pod_update_may_change_only_images():
    old, stored = normalize(res("Pod"), pod())
    changed = copy.deepcopy(stored)  # an update starts from the stored object, as kubectl's does
    changed["spec"]["containers"][0]["image"] = "busybox:2"
    new, _ = normalize(res("Pod"), changed)
    validate_update(res("Pod"), new, old)  # image change is allowed
    changed["spec"]["containers"][0]["args"] = ["sleep", "1"]
    worse, _ = normalize(res("Pod"), changed)
    with pytest.raises(InvalidError) as info:
        validate_update(res("Pod"), worse, old)
    assert info.value.errors[0].path == "spec"
    assert "pod updates may not change fields other than" in str(info.value.errors[0])


def test_short_names_resolve():
    for name, kind in [("po", "Pod"), ("svc", "Service"), ("deploy", "Deployment"),
                       ("rs", "ReplicaSet"), ("ep", "Endpoints"), ("ns", "Namespace"),
                       ("no", "Node"), ("cm", "ConfigMap"), ("deployments.apps", "Deployment"),
                       ("ing", "Ingress"), ("pvc", "PersistentVolumeClaim")]:
        r = lookup(name)
        assert r is not None and r.kind == kind, name


def test_projected_volume_paths_and_modes_are_checked_as_the_apiserver_does():
    p = pod(volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg", "subPath": "../up"}])
    p["spec"]["volumes"] = [
        {"name": "cfg", "configMap": {"name": "c", "defaultMode": 0o4755, "items": [
            {"key": "a", "path": "../escape"}, {"key": "b", "path": "/abs", "mode": 0o2777},
            {"key": "c", "path": "..hidden"}]}},
        {"name": "s", "secret": {"secretName": "s", "items": [{"key": "", "path": "ok"}]}}]
    errs = errors("Pod", p)
    cm = "spec.volumes[0].configMap"
    assert (f"{cm}.defaultMode: Invalid value: 2541: must be a number between 0 and 0777 "
            "(octal), both inclusive") in errs
    assert f"{cm}.items[0].path: Invalid value: \"../escape\": must not contain '..'" in errs
    assert f'{cm}.items[1].path: Invalid value: "/abs": must be a relative path' in errs
    assert any(e.startswith(f"{cm}.items[1].mode:") for e in errs)
    assert f"{cm}.items[2].path: Invalid value: \"..hidden\": must not start with '..'" in errs
    assert "spec.volumes[1].secret.items[0].key: Required value" in errs
    assert any(e.startswith("spec.containers[0].volumeMounts[0].subPath:") for e in errs)


def test_a_probe_may_wait_longer_than_its_period() -> None:
    """Kubernetes does not tie timeoutSeconds to periodSeconds (the prober runs the next
    probe when the last one is done): such a manifest is valid."""
    from nodeagent.objects.pod import Pod
    pod = Pod.model_validate({"metadata": {"name": "p"}, "spec": {"containers": [{
        "name": "c", "image": "i", "readinessProbe": {
            "httpGet": {"port": 80}, "periodSeconds": 1, "timeoutSeconds": 5},
        # Zeros are Go's "unset": Kubernetes defaults them (SetDefaults_Probe).
        "livenessProbe": {"tcpSocket": {"port": 80}, "timeoutSeconds": 0, "periodSeconds": 0,
                          "successThreshold": 0, "failureThreshold": 0}}]}})
    pod.apply_defaults()
    assert pod.check() == []
    assert pod.spec is not None and pod.spec.containers
    live = pod.spec.containers[0].liveness_probe
    assert live is not None
    assert (live.timeout_seconds, live.period_seconds, live.success_threshold,
            live.failure_threshold) == (1, 10, 1, 3)
