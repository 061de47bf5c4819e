"""A container's environment and command line as kubelet makes them: service variables
the seeds rely on, envFrom and env with ConfigMaps, Secrets and the downward API,
$(VAR) expansion, and Kubernetes' command/args over ENTRYPOINT/CMD."""

from __future__ import annotations

import base64

import pytest

from nodeagent.podmanager.env import EnvError, command_line, container_env, expand, service_env

POD = {"metadata": {"name": "kubia-x1", "namespace": "default", "uid": "u-1",
                    "labels": {"app": "kubia"}},
       "spec": {"nodeName": "node1"}, "status": {"podIP": "10.244.1.5", "hostIP": "192.168.56.11"}}
SERVICES = [
    {"metadata": {"name": "kubia"}, "spec": {"clusterIP": "10.96.0.10", "ports": [
        {"name": "http", "port": 80, "protocol": "TCP"}, {"name": "https", "port": 443}]}},
    {"metadata": {"name": "fortune-db"}, "spec": {"clusterIP": "10.96.0.11", "ports": [{"port": 27017}]}},
    {"metadata": {"name": "headless"}, "spec": {"clusterIP": "None", "ports": [{"port": 1}]}},
]
OBJECTS = {
    ("ConfigMap", "default", "fortune-config"): {"data": {"sleep-interval": "25", "mode": "fast"}},
    ("Secret", "default", "db"): {"data": {"password": base64.b64encode(b"s3cret").decode()}},
}


def lookup(kind: str, ns: str, name: str):
    return OBJECTS.get((kind, ns, name))


def test_service_variables_as_the_seeds_use_them():
    env = service_env(SERVICES)
    assert env["KUBIA_SERVICE_HOST"] == "10.96.0.10" and env["KUBIA_SERVICE_PORT"] == "80"
    assert env["KUBIA_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBIA_PORT"] == "tcp://10.96.0.10:80"
    assert env["KUBIA_PORT_443_TCP_ADDR"] == "10.96.0.10"
    assert env["KUBIA_PORT_443_TCP_PROTO"] == "tcp"
    assert env["FORTUNE_DB_SERVICE_HOST"] == "10.96.0.11"
    assert not any(k.startswith("HEADLESS_") for k in env)


def test_env_sources_in_kubernetes_order_with_expansion():
    container = {
        "envFrom": [{"configMapRef": {"name": "fortune-config"}, "prefix": "CFG_"}],
        "env": [
            {"name": "INTERVAL", "valueFrom": {"configMapKeyRef": {"name": "fortune-config",
                                                                   "key": "sleep-interval"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "URL", "value": "http://$(KUBIA_SERVICE_HOST):$(KUBIA_SERVICE_PORT)/$(NOPE)"},
            {"name": "KUBIA_SERVICE_PORT", "value": "8080"},  # env overrides service links
        ]}
    env = container_env(POD, container, lookup, SERVICES)
    assert env["CFG_sleep-interval"] == "25" and env["INTERVAL"] == "25"
    assert env["PASSWORD"] == "s3cret" and env["POD_NAME"] == "kubia-x1"
    assert env["APP"] == "kubia" and env["POD_IP"] == "10.244.1.5"
    assert env["URL"] == "http://10.96.0.10:80/$(NOPE)"  # undefined stays as written
    assert env["KUBIA_SERVICE_PORT"] == "8080"
    no_links = container_env({**POD, "spec": {"enableServiceLinks": False}}, {}, lookup, SERVICES)
    assert "KUBIA_SERVICE_HOST" not in no_links


def test_missing_sources_are_config_errors_unless_optional():
    def env(var):
        return container_env(POD, {"env": [var]}, lookup, [])
    with pytest.raises(EnvError, match="couldn't find key nope in ConfigMap default/fortune-config"):
        env({"name": "X", "valueFrom": {"configMapKeyRef": {"name": "fortune-config", "key": "nope"}}})
    with pytest.raises(EnvError, match='secret "missing" not found'):
        env({"name": "X", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k"}}})
    assert "X" not in env({"name": "X", "valueFrom": {"secretKeyRef": {
        "name": "missing", "key": "k", "optional": True}}})
    with pytest.raises(EnvError, match="unsupported fieldRef"):
        env({"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.nope"}}})


def test_resource_field_refs_round_up_by_divisor():
    container = {"resources": {"limits": {"memory": "64Mi", "cpu": "250m"}},
                 "env": [{"name": "MEM", "valueFrom": {"resourceFieldRef": {
                     "resource": "limits.memory", "divisor": "1Mi"}}},
                         {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]}
    env = container_env(POD, container, lookup, [])
    assert env["MEM"] == "64" and env["CPU"] == "1"


def test_expansion_rules():
    env = {"A": "1", "B": "x"}
    assert expand("$(A)-$(B)", env) == "1-x"
    assert expand("$$(A) $$ $(C) $(A", env) == "$(A) $ $(C) $(A"


def test_command_and_args_over_entrypoint_and_cmd():
    env = {"INTERVAL": "25"}
    entry, cmd = ["/bin/fortuneloop.sh"], ["10"]
    assert command_line({}, env, entry, cmd) == ["/bin/fortuneloop.sh", "10"]
    assert command_line({"args": ["$(INTERVAL)"]}, env, entry, cmd) == ["/bin/fortuneloop.sh", "25"]
    assert command_line({"command": ["sleep"]}, env, entry, cmd) == ["sleep"]
    assert command_line({"command": ["sh", "-c"], "args": ["echo $(INTERVAL)"]}, env, entry,
                        cmd) == ["sh", "-c", "echo 25"]
