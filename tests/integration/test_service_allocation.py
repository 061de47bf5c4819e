"""ClusterIP and NodePort allocation through the object store on a real disk: addresses
in the create's answer, requested ones honoured or refused with the field path, never
two Services with one address (also when created concurrently), freed on delete and on
a type change, kept across an apply that leaves them out."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest
import trio

from nodeagent.agent import ensure_namespaces
from nodeagent.api.objects import ObjectStore
from nodeagent.api.status import ApiError
from nodeagent.objects.kinds import SERVICES
from nodeagent.store import LocalStore


@pytest.fixture
async def objects(tmp_path) -> AsyncIterator[ObjectStore]:
    async with trio.open_nursery() as nursery:
        store = LocalStore(str(tmp_path / "store"), fsync=False)
        await nursery.start(store.run)
        objs = ObjectStore(store, service_cidr="10.96.0.0/28")  # 14 addresses: fill it
        await ensure_namespaces(objs)
        yield objs
        nursery.cancel_scope.cancel()


def svc(name: str, type_: str = "ClusterIP", **spec) -> dict:
    ports = spec.pop("ports", [{"port": 80, "targetPort": 8080}])
    return {"metadata": {"name": name}, "spec": {"type": type_, "selector": {"app": name},
                                                  "ports": ports, **spec}}


async def test_addresses_are_in_the_create_answer_and_unique(objects):
    ips = set()
    for i in range(14):
        created = await objects.create(SERVICES, "default", svc(f"s{i}", "NodePort"))
        ip = created["spec"]["clusterIP"]
        assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.96.0.0/28")
        assert created["spec"]["clusterIPs"] == [ip]
        assert 30000 <= created["spec"]["ports"][0]["nodePort"] <= 32767
        assert objects.get(SERVICES, "default", f"s{i}")["spec"]["clusterIP"] == ip
        ips.add(ip)
    assert len(ips) == 14
    with pytest.raises(ApiError) as exc:
        await objects.create(SERVICES, "default", svc("full"))
    assert "range is full" in exc.value.message
    # Deleting one frees its address for the next Service.
    freed = objects.get(SERVICES, "default", "s3")["spec"]["clusterIP"]
    await objects.delete(SERVICES, "default", "s3")
    assert (await objects.create(SERVICES, "default", svc("again")))["spec"]["clusterIP"] == freed


async def test_requested_addresses_are_checked(objects):
    a = await objects.create(SERVICES, "default", svc("a", "NodePort", clusterIP="10.96.0.5",
                                                 ports=[{"port": 80, "nodePort": 30080}]))
    assert a["spec"]["clusterIP"] == "10.96.0.5" and a["spec"]["ports"][0]["nodePort"] == 30080
    cases = [
        (svc("b", clusterIP="10.96.0.5"), "spec.clusterIP", "provided IP is already allocated"),
        (svc("c", clusterIP="10.0.0.1"), "spec.clusterIP", "provided IP is not in the valid range"),
        (svc("d", "NodePort", ports=[{"port": 80, "nodePort": 30080}]),
         "spec.ports[0].nodePort", "provided port is already allocated"),
        (svc("e", "NodePort", ports=[{"name": "a", "port": 80, "nodePort": 30090},
                                     {"name": "b", "port": 81, "nodePort": 30090}]),
         "spec.ports[1].nodePort", "provided port is already allocated"),
    ]
    for body, field, message in cases:
        with pytest.raises(ApiError) as exc:
            await objects.create(SERVICES, "default", body)
        assert exc.value.code == 422, body
        assert f"{field}: Invalid value" in exc.value.message and message in exc.value.message
    # The refused creates claimed nothing: their addresses are still free.
    e = await objects.create(SERVICES, "default",
                             svc("e2", "NodePort", ports=[{"port": 80, "nodePort": 30090}]))
    assert e["spec"]["ports"][0]["nodePort"] == 30090


async def test_concurrent_creates_never_share_an_address(objects):
    created: list[dict] = []

    async def make(i: int) -> None:
        created.append(await objects.create(SERVICES, "default", svc(f"c{i}", "NodePort")))
    async with trio.open_nursery() as nursery:
        for i in range(14):
            nursery.start_soon(make, i)
    assert len({c["spec"]["clusterIP"] for c in created}) == 14
    assert len({c["spec"]["ports"][0]["nodePort"] for c in created}) == 14


async def test_type_changes_and_applies_keep_or_free_node_ports(objects):
    s = await objects.create(SERVICES, "default", svc("web", "NodePort"))
    port = s["spec"]["ports"][0]["nodePort"]
    # An apply that leaves nodePort (and clusterIP) out keeps them.
    again = await objects.update(SERVICES, "default", "web", svc("web", "NodePort"))
    assert again["spec"]["ports"][0]["nodePort"] == port
    assert again["spec"]["clusterIP"] == s["spec"]["clusterIP"]
    # Back to ClusterIP frees the port: another Service may ask for it.
    plain = await objects.update(SERVICES, "default", "web", svc("web"))
    assert "nodePort" not in plain["spec"]["ports"][0]
    other = await objects.create(SERVICES, "default", svc("other", "NodePort",
                                                     ports=[{"port": 80, "nodePort": port}]))
    assert other["spec"]["ports"][0]["nodePort"] == port


async def test_headless_and_external_name_services_take_no_address(objects):
    h = await objects.create(SERVICES, "default", svc("headless", clusterIP="None"))
    assert h["spec"]["clusterIP"] == "None"
    x = await objects.create(SERVICES, "default", {"metadata": {"name": "ext"}, "spec": {
        "type": "ExternalName", "externalName": "db.example.com"}})
    assert not x["spec"].get("clusterIP")
    assert len(objects.store.range("/registry/allocations/")[0]) == 0
