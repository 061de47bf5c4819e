"""Replacing the cluster's CA through a period in which both CAs are trusted: kubeadm's
manual rotation, done by the agents themselves.

``nodeagent certs rotate-ca`` on a server moves the cluster one step at a time, and run
again it goes on from where it stopped:

1. **Trust both.**  A new CA is made.  Every server gets the bundle [old, new] and keeps
   the new key aside (``ca-next.key``); the old CA still signs.  The bundle is published
   as each namespace's ``kube-root-ca.crt``; every node takes it from its copy of the
   store (a bundle that shares no CA with what it trusts is refused) and says so on its
   Node (``nodeagent.io/ca-trusted``).
2. **Switch**, once every Node trusts the new CA: every server gets [new, old] with the new
   key signing and the old one kept (``ca-old.key``: ServiceAccount tokens it signed still
   verify).  Servers re-issue their own certificates at once; each node asks a server for
   new ones (``POST /renew``) and says so (``nodeagent.io/ca-signed``).  The admin
   kubeconfig is written again with a new admin certificate.
3. ``nodeagent certs rotate-ca --finish``, once every Node's certificates are the new CA's
   and the new admin kubeconfig has been handed out: the old CA is trusted nowhere any
   more and its key is deleted.

Each step reaches the other servers as ``POST /ca-rotation`` over mutual TLS, from a
server's own credential (only Raft servers may send it), through the servers' registry.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from collections.abc import Callable
from typing import Any

import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from nodeagent import apiservers, pki
from nodeagent.api.status import ApiError
from nodeagent.clusterpki import AgentPki
from nodeagent.fsutil import write_atomic
from nodeagent.objects.kinds import CONFIGMAPS, NAMESPACES, NODES
from nodeagent.objects.yamljson import DocumentError, load_json

__all__ = ["ROTATION_PATH", "SIGNED", "TRUSTED", "node_annotations", "rotate", "take"]

log = logging.getLogger("nodeagent.carotation")

ROTATION_PATH = "/ca-rotation"
TRUSTED = "nodeagent.io/ca-trusted"  # the CAs (hashes) a node trusts
SIGNED = "nodeagent.io/ca-signed"  # the CA (hash) that signed a node's certificates
BUNDLE = "kube-root-ca.crt"
MAX_BODY = 64 * 1024


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: Any) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def node_annotations(agent_pki: AgentPki) -> dict[str, str]:
    """What an agent says of its PKI on its Node."""
    return {TRUSTED: ",".join(agent_pki.trusted_hashes()), SIGNED: agent_pki.leaf_ca_hash()}


# --- a server taking a step -------------------------------------------------------------


def take(agent_pki: AgentPki, body: bytes, changed: Callable[[], object]) -> dict[str, Any]:
    """A step another server sent: checked, written, then ``changed()`` (re-issue this
    server's certificates, reload its TLS).  ApiError 400 for anything that does not hold
    together."""
    if len(body) > MAX_BODY:
        raise ApiError.bad_request(f"a CA step is at most {MAX_BODY} bytes")
    try:
        step = load_json(body)
        bundle = x509.load_pem_x509_certificates(step["bundle"].encode())
        keys = {name: pki.key_from_pem(step[name].encode(), name) if step.get(name) else None
                for name in ("key", "nextKey", "previousKey")}
    except (DocumentError, ValueError, KeyError, TypeError, AttributeError,
            pki.PkiError) as exc:
        raise ApiError.bad_request(f"a CA step: {exc}") from None
    _check(agent_pki, bundle, keys)
    apply(agent_pki, bundle, keys)
    changed()
    return {"trusted": agent_pki.trusted_hashes(), "signing": agent_pki.ca_hash()}


def _check(agent_pki: AgentPki, bundle: list[x509.Certificate],
           keys: dict[str, Any]) -> None:
    if not 1 <= len(bundle) <= 2:
        raise ApiError.bad_request("bundle: one CA, or two while rotating")
    for cert in bundle:
        try:
            ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            ca = False
        if not ca:
            raise ApiError.bad_request(f"bundle: {cert.subject.rfc4514_string()} is not a CA")
    hashes = [pki.ca_hash(c) for c in bundle]
    if not set(hashes) & set(agent_pki.trusted_hashes()):
        raise ApiError.bad_request("bundle: it shares no CA with the ones this server trusts")
    publics = [_spki(c.public_key()) for c in bundle]
    if keys["key"] is None or _spki(keys["key"].public_key()) != publics[0]:
        raise ApiError.bad_request("key: not the key of the bundle's first (signing) CA")
    for name in ("nextKey", "previousKey"):
        if keys[name] is not None and _spki(keys[name].public_key()) not in publics:
            raise ApiError.bad_request(f"{name}: not the key of a CA of the bundle")


def _spki(public: Any) -> bytes:
    """A public key as it is compared: its DER SubjectPublicKeyInfo (any algorithm)."""
    return bytes(public.public_bytes(serialization.Encoding.DER,
                                     serialization.PublicFormat.SubjectPublicKeyInfo))


def apply(agent_pki: AgentPki, bundle: list[x509.Certificate], keys: dict[str, Any]) -> None:
    """Write a step: the keys first, then the bundle (ca.crt's first CA and ca.key agree
    again once both are written)."""
    for name, path in (("nextKey", agent_pki.ca_next_key), ("previousKey", agent_pki.ca_old_key)):
        if keys[name] is not None:
            write_atomic(path, _key_pem(keys[name]).encode())
        elif path.exists():
            os.unlink(path)
    write_atomic(agent_pki.ca_key, _key_pem(keys["key"]).encode())
    write_atomic(agent_pki.ca_cert, b"".join(_pem(c) for c in bundle))


# --- the server running the rotation ----------------------------------------------------


def _step(bundle: list[x509.Certificate], key: Any, next_key: Any = None,
          previous_key: Any = None) -> dict[str, Any]:
    return {"bundle": b"".join(_pem(c) for c in bundle).decode(), "key": _key_pem(key),
            "nextKey": _key_pem(next_key) if next_key is not None else None,
            "previousKey": _key_pem(previous_key) if previous_key is not None else None}


async def _everywhere(objects: Any, agent_pki: AgentPki, me: str, tls: ssl.SSLContext,
                      step: dict[str, Any], changed: Callable[[], object]) -> list[str]:
    """The step on every other server, then on this one, then published to the nodes."""
    body = json.dumps(step).encode()
    others = await apiservers.to_other_servers(objects, me, tls, ROTATION_PATH, body,
                                               "application/json", "the CA step")
    take(agent_pki, body, changed)
    await publish(objects, step["bundle"])
    return sorted([me, *others])


async def publish(objects: Any, bundle: str) -> None:
    """The bundle as every namespace's kube-root-ca.crt (the nodes follow kube-system's)."""
    for ns in objects.list(NAMESPACES, None)["items"]:
        name = ns["metadata"]["name"]
        try:
            current = objects.get(CONFIGMAPS, name, BUNDLE)
        except ApiError:
            continue  # the controller makes it, with the bundle of then
        if (current.get("data") or {}).get("ca.crt") != bundle:
            try:
                await objects.update(CONFIGMAPS, name, BUNDLE, {**current, "data": {
                    "ca.crt": bundle}})
            except ApiError as exc:
                log.warning("ca rotation: %s/%s not updated: %s", name, BUNDLE, exc.message)


def _lagging(objects: Any, annotation: str, wanted: str) -> list[str]:
    """The Nodes whose ``annotation`` does not (yet) name ``wanted``."""
    out = []
    for node in objects.list(NODES, None)["items"]:
        said = ((node["metadata"].get("annotations") or {}).get(annotation) or "").split(",")
        if wanted not in said:
            out.append(node["metadata"]["name"])
    return sorted(out)


async def _wait_nodes(objects: Any, annotation: str, wanted: str, timeout_s: float) -> list[str]:
    """Wait (woken by every Node change) until no Node lags; those that still do."""
    watch, _ = objects.store.watch(NODES.prefix(None), 0)
    try:
        with trio.move_on_after(timeout_s):
            while _lagging(objects, annotation, wanted):
                try:
                    await watch.receive()
                except trio.EndOfChannel:
                    watch, _ = objects.store.watch(NODES.prefix(None), 0)
    finally:
        watch.close()
    return _lagging(objects, annotation, wanted)


async def rotate(objects: Any, agent_pki: AgentPki, me: str, tls: ssl.SSLContext,
                 changed: Callable[[], object], *, finish: bool = False,
                 timeout_s: float = 300.0) -> dict[str, Any]:
    """One run of ``nodeagent certs rotate-ca``: as far as the cluster lets it go now."""
    if not agent_pki.is_signer():
        raise ApiError(409, "Conflict", "only a server (it holds the CA's key) rotates the CA")
    cas = agent_pki.ca_certs()
    current = agent_pki.ca()
    report: dict[str, Any] = {}
    if finish:
        if len(cas) != 2 or not agent_pki.ca_old_key.exists():
            raise ApiError(409, "Conflict", "no rotation to finish: run 'nodeagent certs "
                           "rotate-ca' first, until it says the new CA signs")
        new_hash = pki.ca_hash(cas[0])
        lagging = _lagging(objects, SIGNED, new_hash)
        if lagging:
            raise ApiError(409, "Conflict", f"node(s) {', '.join(lagging)} still hold "
                           "certificates of the old CA: finishing would lock them out")
        report["servers"] = await _everywhere(objects, agent_pki, me, tls,
                                              _step([cas[0]], current.key), changed)
        report.update(phase="finished", ca=new_hash)
        log.info("ca rotation finished: %s is the only CA", new_hash)
        return report
    if len(cas) == 1:  # 1. trust both
        new = pki.make_ca()
        report["servers"] = await _everywhere(
            objects, agent_pki, me, tls, _step([cas[0], new.cert], current.key, new.key),
            changed)
        log.info("ca rotation: every server trusts %s as well", pki.ca_hash(new.cert))
        cas = agent_pki.ca_certs()
    if agent_pki.ca_next_key.exists():  # 2. switch, once every node trusts the new CA
        new_cert, new_key = cas[1], pki.load_key(agent_pki.ca_next_key)
        lagging = await _wait_nodes(objects, TRUSTED, pki.ca_hash(new_cert), timeout_s)
        if lagging:
            return {**report, "phase": "trusting", "ca": pki.ca_hash(new_cert),
                    "waitingFor": lagging,
                    "message": f"node(s) {', '.join(lagging)} do not trust the new CA yet; "
                               "run 'nodeagent certs rotate-ca' again once they do"}
        report["servers"] = await _everywhere(
            objects, agent_pki, me, tls, _step([new_cert, cas[0]], new_key,
                                               previous_key=current.key), changed)
        log.info("ca rotation: %s signs now", pki.ca_hash(new_cert))
        cas = agent_pki.ca_certs()
    new_hash = pki.ca_hash(cas[0])
    lagging = await _wait_nodes(objects, SIGNED, new_hash, timeout_s)
    return {**report, "phase": "switched", "ca": new_hash, "waitingFor": lagging,
            "message": ("both CAs are trusted; once the new admin kubeconfig ('nodeagent "
                        "kubeconfig') is handed out, end it with 'nodeagent certs rotate-ca "
                        "--finish'") if not lagging else
                       f"node(s) {', '.join(lagging)} have no certificate of the new CA yet"}
