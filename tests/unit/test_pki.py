"""The cluster PKI (nodeagent/pki.py): what each certificate is for, who it names, that a
certificate of another CA does not pass, and that keys stay private."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.x509 import verification as v

from nodeagent import pki


@pytest.fixture(scope="module")
def ca() -> pki.Issued:
    return pki.make_ca()


def _store(ca: pki.Issued) -> v.Store:
    return v.Store([ca.cert])


def _clients(ca: pki.Issued) -> v.ClientVerifier:
    """The web PKI's client policy, but for the SAN a Kubernetes client certificate does
    not carry (its identity is in CN and O); the EKU is still checked."""
    return (v.PolicyBuilder().store(_store(ca))
            .extension_policies(ca_policy=v.ExtensionPolicy.webpki_defaults_ca(),
                                ee_policy=v.ExtensionPolicy.webpki_defaults_ee().may_be_present(
                                    x509.SubjectAlternativeName, v.Criticality.AGNOSTIC, None))
            .build_client_verifier())


def test_the_ca_signs_leaves_only_and_lasts_ten_years(ca):
    bc = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0
    assert ca.cert.issuer == ca.cert.subject
    assert dt.timedelta(days=3649) < pki.check(ca.cert) <= dt.timedelta(days=3650)


def test_a_serving_certificate_verifies_for_its_names_and_addresses_only(ca):
    leaf = pki.issue_serving(ca, "node1", ["node1", "192.168.56.11", "127.0.0.1", "node1"])
    sans = leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in sans] == ["node1", "192.168.56.11", "127.0.0.1"]
    for name in (v.DNSName("node1"), v.IPAddress(ipaddress.ip_address("192.168.56.11"))):
        v.PolicyBuilder().store(_store(ca)).build_server_verifier(name).verify(leaf.cert, [])
    with pytest.raises(v.VerificationError):
        v.PolicyBuilder().store(_store(ca)).build_server_verifier(
            v.DNSName("node2")).verify(leaf.cert, [])
    other = pki.make_ca("another")
    with pytest.raises(v.VerificationError):  # another cluster's CA does not vouch for it
        v.PolicyBuilder().store(_store(other)).build_server_verifier(
            v.DNSName("node1")).verify(leaf.cert, [])


def test_a_client_certificate_names_its_user_and_groups_as_kubernetes_reads_them(ca):
    node = pki.issue_client(ca, "system:node:node1", ("system:nodes",))
    assert pki.identity(node.cert) == ("system:node:node1", ("system:nodes",))
    admin = pki.issue_client(ca, "admin", ("system:masters", "ops"))
    assert pki.identity(admin.cert) == ("admin", ("system:masters", "ops"))
    verified = _clients(ca).verify(node.cert, [])
    assert verified.chain == [node.cert, ca.cert]
    # A client certificate is no server's, and a serving one is no client's.
    with pytest.raises(v.VerificationError):
        v.PolicyBuilder().store(_store(ca)).build_server_verifier(
            v.DNSName("node1")).verify(node.cert, [])
    serving = pki.issue_serving(ca, "node1", ["node1"])
    with pytest.raises(v.VerificationError):
        _clients(ca).verify(serving.cert, [])
    with pytest.raises(v.VerificationError):
        _clients(pki.make_ca("another")).verify(node.cert, [])


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_the_ca_hash_is_the_one_openssl_and_kubeadm_compute(ca, tmp_path):
    path = tmp_path / "ca.crt"
    path.write_bytes(ca.cert_pem)
    pub = subprocess.run(["openssl", "x509", "-in", str(path), "-pubkey", "-noout"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                         capture_output=True, check=True).stdout
    assert pki.ca_hash(ca.cert) == "sha256:" + hashlib.sha256(der).hexdigest()
    assert pki.ca_hash(ca.cert) != pki.ca_hash(pki.make_ca().cert)


def test_keys_are_private_and_a_key_must_match_its_certificate(ca, tmp_path):
    leaf = pki.issue_client(ca, "admin", ("system:masters",))
    cert, key = tmp_path / "admin.crt", tmp_path / "admin.key"
    pki.save(leaf, cert, key)
    assert os.stat(key).st_mode & 0o777 == 0o600 and os.stat(cert).st_mode & 0o777 == 0o600
    assert pki.load(cert, key).cert == leaf.cert
    pki.save(pki.issue_client(ca, "other"), tmp_path / "o.crt", tmp_path / "o.key")
    with pytest.raises(pki.PkiError, match="is not the key of"):
        pki.load(cert, tmp_path / "o.key")
    (tmp_path / "junk.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n")
    with pytest.raises(pki.PkiError):
        pki.load(tmp_path / "junk.crt", key)
    with pytest.raises(pki.PkiError):
        pki.load(tmp_path / "missing.crt", key)


def test_expiry_is_reported_before_and_after(ca):
    then = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    old = pki.issue_client(ca, "old", now=then)
    assert pki.check(old.cert) < dt.timedelta(0)
    fresh = pki.issue_client(ca, "fresh")
    assert dt.timedelta(days=364) < pki.check(fresh.cert) <= dt.timedelta(days=365)


@pytest.mark.parametrize("name", ["", "a b", "http://x", "user@host", "a/b"])
def test_a_name_that_is_no_name_is_refused(ca, name):
    with pytest.raises(pki.PkiError):
        pki.issue_serving(ca, "n", [name])
    with pytest.raises(pki.PkiError):
        pki.issue_serving(ca, "n", [])
