"""nodectl -o jsonpath: the kubectl template subset scripts use."""

from __future__ import annotations

import pytest

from nodeagent.cli.jsonpath import JsonPathError, render

SVC = {"metadata": {"name": "kubia", "labels": {"app": "kubia", "tier": "web"}},
       "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80, "nodePort": 30080},
                                                     {"port": 443}]},
       "status": {"ok": True, "addresses": [{"type": "Hostname", "address": "node1"},
                                            {"type": "InternalIP", "address": "192.168.56.11"}]}}
LIST = {"kind": "List", "items": [{"metadata": {"name": "a"}, "status": {"podIP": "10.244.1.2"}},
                                  {"metadata": {"name": "b"}, "status": {"podIP": "10.244.1.3"}}]}


@pytest.mark.parametrize("template,expected", [
    ("{.spec.clusterIP}", "10.96.0.10"),
    ("'{.spec.clusterIP}'", "10.96.0.10"),
    ("ip={.spec.clusterIP}:{.spec.ports[0].port}", "ip=10.96.0.10:80"),
    ("{.spec.ports[-1].port}", "443"),
    ("{.spec.ports[*].port}", "80 443"),
    ("{.metadata.labels['app']}", "kubia"),
    ('{.status.addresses[?(@.type=="InternalIP")].address}', "192.168.56.11"),
    ("{.status.ok}", "true"),
    ("{.spec.missing}", ""),
    ("{.metadata.labels}", '{"app":"kubia","tier":"web"}'),
])
def test_paths(template, expected):
    assert render(template, SVC) == expected


def test_range_and_literals():
    assert render('{range .items[*]}{.metadata.name}{"\\t"}{.status.podIP}{"\\n"}{end}', LIST) == \
        "a\t10.244.1.2\nb\t10.244.1.3\n"
    assert render("{.items[*].metadata.name}", LIST) == "a b"


@pytest.mark.parametrize("bad", ["{.spec", "{end}", "{range .items[*]}{.x}", "{.spec..x}",
                                 "{.a[?(@.x>1)]}"])
def test_bad_templates_are_clear_errors(bad):
    with pytest.raises(JsonPathError):
        render(bad, SVC)
