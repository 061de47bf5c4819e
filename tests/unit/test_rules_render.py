"""The service-rules renderer, without traffic: golden files (as kube-proxy's proxier
tests do), the Service/Endpoints translation, and what an update touches.

Regenerate the golden files after an intended change with UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from netns.rules import IP, ServicePort, render_full, render_update, service_ports

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "rules"

SERVICES = [
    {"metadata": {"namespace": "default", "name": "kubia"},
     "spec": {"type": "NodePort", "clusterIP": "10.96.0.10",
              "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080,
                         "protocol": "TCP"}]}},
    {"metadata": {"namespace": "kube-system", "name": "dns"},
     "spec": {"clusterIP": "10.96.0.53", "ports": [
         {"name": "dns", "port": 53, "protocol": "UDP"},
         {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}},
    {"metadata": {"namespace": "default", "name": "sticky"},
     "spec": {"clusterIP": "10.96.0.12", "sessionAffinity": "ClientIP",
              "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
              "ports": [{"port": 80, "protocol": "TCP"}]}},
    {"metadata": {"namespace": "default", "name": "empty"},
     "spec": {"clusterIP": "10.96.0.11", "ports": [{"port": 80, "protocol": "TCP"}]}},
    {"metadata": {"namespace": "default", "name": "headless"},
     "spec": {"clusterIP": "None", "ports": [{"port": 80}]}},
]
ENDPOINTS = {
    # Named targetPort "http" resolved per pod: the two pods listen on different ports.
    ("default", "kubia"): {"subsets": [
        {"addresses": [{"ip": "10.244.1.5"}], "ports": [{"name": "http", "port": 8080}]},
        {"addresses": [{"ip": "10.244.2.7"}], "ports": [{"name": "http", "port": 9090}]}]},
    ("kube-system", "dns"): {"subsets": [{"addresses": [{"ip": "10.244.1.9"}], "ports": [
        {"name": "dns", "port": 5353, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 5353, "protocol": "TCP"}]}]},
    ("default", "sticky"): {"subsets": [{"addresses": [{"ip": "10.244.1.5"}, {"ip": "10.244.3.2"}],
                                         "ports": [{"port": 8080}]}]},
}


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; UPDATE_GOLDEN=1 after checking the diff"


def test_services_and_endpoints_become_service_ports():
    ports = {sp.key: sp for sp in service_ports(SERVICES, ENDPOINTS)}
    assert set(ports) == {"default/kubia:http/TCP", "kube-system/dns:dns/UDP",
                          "kube-system/dns:dns-tcp/TCP", "default/sticky:80/TCP",
                          "default/empty:80/TCP"}  # headless has no ClusterIP: no rules
    assert ports["default/kubia:http/TCP"].endpoints == ((IP("10.244.1.5"), 8080),
                                                          (IP("10.244.2.7"), 9090))
    assert ports["default/kubia:http/TCP"].node_port == 30080
    assert ports["kube-system/dns:dns/UDP"].endpoints == ((IP("10.244.1.9"), 5353),)
    assert ports["default/sticky:80/TCP"].affinity_timeout_s == 600
    assert ports["default/empty:80/TCP"].endpoints == ()


def test_full_ruleset_golden():
    check_golden("full.nft", render_full(service_ports(SERVICES, ENDPOINTS), ["192.168.56.11"]))


def test_each_endpoint_has_one_slot_in_the_map_of_its_count():
    import re
    text = render_full(service_ports(SERVICES, ENDPOINTS), [])
    slots = re.findall(r"10\.96\.0\.10 \. tcp \. 80 \. (\d+) : (\S+) \. (\d+)", text)
    assert sorted((int(s), ip) for s, ip, _ in slots) == [(0, "10.244.1.5"), (1, "10.244.2.7")]
    assert "map svc-backends-2 {" in text and "numgen random mod 2 map @svc-backends-2" in text
    assert "map svc-backends-1 {" in text  # dns has one endpoint


def test_update_touches_only_the_changed_service():
    before = service_ports(SERVICES, ENDPOINTS)
    after = [dataclasses.replace(sp, endpoints=sp.endpoints[:1])
             if sp.key == "default/kubia:http/TCP" else sp for sp in before]
    update = render_update(before, after)
    assert update is not None
    check_golden("update-kubia.nft", update)
    assert "10.96.0.53" not in update  # dns is untouched
    assert render_update(before, before) == ""
    sticky_changed = [dataclasses.replace(sp, endpoints=sp.endpoints[:1])
                      if sp.key == "default/sticky:80/TCP" else sp for sp in before]
    assert render_update(before, sticky_changed) is None  # affinity chains: full render
    grown = [dataclasses.replace(sp, endpoints=tuple((f"10.244.4.{i}", 8080) for i in range(20)))
             if sp.key == "default/kubia:http/TCP" else sp for sp in before]
    assert render_update(before, grown) is None  # no map for 20 endpoints yet: full render
    assert render_update(before, after) is not None  # 2 -> 1 endpoint: the map exists


def test_a_service_losing_its_endpoints_moves_to_the_reject_set():
    sp = ServicePort("default", "web", "", "TCP", 80, "10.96.0.20", None, None,
                     (("10.244.1.5", 8080),))
    update = render_update([sp], [dataclasses.replace(sp, endpoints=())])
    assert "delete element ip nodeagent svc-backends" in update
    assert "add element ip nodeagent no-endpoints { 10.96.0.20 . tcp . 80 }" in update


def test_iptables_backend_golden():
    from netns.iptables import render_iptables
    text = render_iptables(service_ports(SERVICES, ENDPOINTS))
    check_golden("full.iptables", text)
    assert "-m statistic --mode random --probability 0.50000000000" in text
    assert "--reject-with tcp-reset" in text  # the service without endpoints
    assert "-m recent --name" in text  # ClientIP affinity


INJECTION = '10.96.0.99 . tcp . 80 } } table ip evil { chain c { type filter hook input priority 0; drop; } }'


@pytest.mark.parametrize("field,value", [
    ("clusterIP", INJECTION),
    ("port", "80 } } table ip evil {"),
    ("nodePort", 70000),
    ("protocol", "TCP"),  # with an endpoint address that is not one, below
])
def test_a_service_planted_past_validation_is_dropped_alone(field, value):
    bad = {"metadata": {"namespace": "default", "name": "planted"},
           "spec": {"type": "NodePort", "clusterIP": "10.96.0.99",
                    "ports": [{"name": "p", "port": 80, "protocol": "TCP", "nodePort": 30099}]}}
    endpoints = dict(ENDPOINTS)
    if field in ("clusterIP",):
        bad["spec"][field] = value
    elif field == "protocol":
        endpoints[("default", "planted")] = {"subsets": [
            {"addresses": [{"ip": "10.0.0.1; drop"}], "ports": [{"name": "p", "port": 80}]}]}
    else:
        bad["spec"]["ports"][0][field] = value
    rejected: list = []
    ports = service_ports([*SERVICES, bad], endpoints, rejected)
    assert [svc["metadata"]["name"] for svc, _ in rejected] == ["planted"]
    assert rejected[0][1]  # the reason names the value
    assert {sp.key for sp in ports} == {sp.key for sp in service_ports(SERVICES, ENDPOINTS)}
    text = render_full(ports, ["192.168.56.11"])
    assert "evil" not in text and "planted" not in text and text.count("table ip") == 3


def test_service_ports_refuse_values_that_are_not_addresses_or_ports():
    with pytest.raises(ValueError, match="clusterIP"):
        ServicePort("ns", "s", "", "TCP", 80, "10.0.0.1 } table ip x {")
    with pytest.raises(ValueError, match="port"):
        ServicePort("ns", "s", "", "TCP", 0, "10.0.0.1")
    with pytest.raises(ValueError, match="protocol"):
        ServicePort("ns", "s", "", "tcp; drop", 80, "10.0.0.1")
