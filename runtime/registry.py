"""Pulling (and pushing) images over the OCI distribution API, with httpx on Trio.

A reference is ``[REGISTRY/]NAME[:TAG|@DIGEST]``; without a registry it is
Docker Hub (``library/`` added for single names).  Pull: the manifest (an
index picks linux/<this arch>), the config, then the layers concurrently,
each streamed to a partial file that a retry resumes with a Range request,
and every blob checked against its digest before it enters the store.  Auth:
anonymous, Basic, or the Bearer token flow (``WWW-Authenticate: Bearer
realm=...,service=...`` -> token endpoint -> retry), as Docker clients do.
Registries on loopback speak plain HTTP; others HTTPS unless listed insecure.
Failures are :class:`ImageError` with reason ErrImagePull and a message naming
the reference and the cause.

A registry is not trusted beyond its digests (containerd's limits):

- a manifest is at most 4 MiB and is read under that cap; a blob is at most its
  descriptor's size (and MAX_BLOB_BYTES), a download that runs longer is cut;
- credentials go only to the registry they are for, and to the token realm its
  own challenge names, and only over HTTPS (plain HTTP only on loopback, where
  the test registries live);
- every request, redirects included, goes to the registry's host, its realm, or
  a host listed in ``redirect_hosts`` (Docker Hub's CDN by default), and never
  from HTTPS down to HTTP.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from runtime.images import (
    MEDIA_INDEX,
    MEDIA_MANIFEST,
    Image,
    ImageError,
    ImageStore,
    _hex,
    is_index,
    manifest_descriptors,
)

__all__ = ["Reference", "RegistryClient", "RegistryUnreachable", "parse_reference"]

ACCEPT = ", ".join((*MEDIA_MANIFEST, *MEDIA_INDEX))
DOCKER_HUB = "registry-1.docker.io"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # containerd's limit
MAX_BLOB_BYTES = 32 * 1024 ** 3
MAX_TOKEN_BYTES = 1024 * 1024
MAX_LAYERS = 512
# Where the big public registries send blob downloads (hosts and their subdomains): Docker
# Hub's CDN, GHCR's, ECR's S3, GCR and Artifact Registry's storage, ACR's blob store.  A
# pull follows a redirect there, to the registry's own host and its subdomains, and to
# nothing else (never an address, never a cloud's metadata service).
DEFAULT_REDIRECT_HOSTS = ("docker.io", "docker.com", "githubusercontent.com", "amazonaws.com",
                          "googleapis.com", "blob.core.windows.net")
Progress = Callable[[str, int, int], None]  # (digest, bytes so far, total)


@dataclass(frozen=True)
class Reference:
    registry: str
    name: str
    tag: str | None
    digest: str | None

    @property
    def ref(self) -> str:
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        host = "" if self.registry == DOCKER_HUB else self.registry + "/"
        return f"{host}{self.name}" + (f"@{self.digest}" if self.digest else f":{self.tag}")


_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


def parse_reference(text: str) -> Reference:
    rest, _, digest_text = text.partition("@")
    digest = digest_text or None
    registry = DOCKER_HUB
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, rest = first, remainder
    tag = None
    if ":" in rest.rsplit("/", 1)[-1]:
        rest, tag = rest.rsplit(":", 1)
    if registry == DOCKER_HUB and "/" not in rest:
        rest = "library/" + rest
    if not _NAME.match(rest):
        raise ImageError("InvalidImageName", f'invalid reference format: "{text}"')
    if tag is not None and not re.match(r"^[\w][\w.-]{0,127}$", tag):
        raise ImageError("InvalidImageName", f'invalid tag in "{text}"')
    if digest is not None:
        _hex(digest)
    return Reference(registry, rest, tag if tag or digest else "latest", digest)


class RegistryUnreachable(ImageError):
    """The registry could not be reached at all (no route, refused, no such host): a node
    may then run the copy of an image it already has, as kubelet does offline."""

    def __init__(self, message: str) -> None:
        super().__init__("ErrImagePull", message)


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    """One download failing cancels the others; the caller wants that one failure."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_leaf(exc)
        if not isinstance(exc, trio.Cancelled):
            return exc
    return group


def _private(url: str) -> bool:
    """Whether credentials may travel to ``url``: HTTPS, or plain HTTP on loopback."""
    parsed = httpx.URL(url)
    return parsed.scheme == "https" or _host_is_loopback(parsed.host)


def _descriptor_size(ref: Reference, desc: dict[str, Any]) -> int:
    size = desc.get("size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_BLOB_BYTES:
        raise ImageError("ErrImagePull", f"pulling {ref}: blob {desc.get('digest')} has an "
                         f"impossible size {size!r}")
    return size


async def _read_capped(resp: httpx.Response, limit: int, what: str) -> bytes:
    declared = resp.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ImageError("ErrImagePull", f"pulling {what}: the answer is over {limit} bytes")
    chunks, total = [], 0
    async for chunk in resp.aiter_bytes():
        total += len(chunk)
        if total > limit:
            raise ImageError("ErrImagePull", f"pulling {what}: the answer is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def partial_dir_ready(path: str) -> None:
    os.makedirs(path, exist_ok=True)


def _host(registry: str) -> str:
    """The host of a registry's ``HOST[:PORT]`` (``[::1]:5000`` -> ``::1``)."""
    return httpx.URL(f"http://{registry}").host


def _host_is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _under(host: str, domains: tuple[str, ...] | set[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


class RegistryClient:
    def __init__(self, store: ImageStore, *, insecure: tuple[str, ...] = (),
                 credentials: dict[str, tuple[str, str]] | None = None,
                 concurrency: int = 4, timeout_s: float = 60.0,
                 redirect_hosts: tuple[str, ...] = DEFAULT_REDIRECT_HOSTS) -> None:
        self.store = store
        self.insecure = insecure
        self.credentials = credentials or {}
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.redirect_hosts = redirect_hosts
        self._tokens: dict[tuple[str, str], str] = {}
        self._realms: set[str] = set()  # token endpoints' hosts that challenges named

    def _client(self, ref: Reference) -> httpx.AsyncClient:
        """A client whose every request (redirects too) is checked against the hosts a pull
        may reach (the module's docstring)."""
        registry_host = _host(ref.registry)

        async def check(request: httpx.Request) -> None:
            url = request.url
            if url.scheme != "https" and not _host_is_loopback(url.host) \
                    and ref.registry not in self.insecure:
                raise ImageError("ErrImagePull", f"pulling {ref}: refusing plain HTTP to "
                                 f"{url.host}")
            if not _under(url.host, (registry_host,)) and url.host not in self._realms \
                    and not _under(url.host, self.redirect_hosts):
                raise ImageError("ErrImagePull", f"pulling {ref}: refusing to follow the "
                                 f"registry to {url.host}, which is not an allowed host")
        return httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=True,
                                 event_hooks={"request": [check]})

    def _base(self, ref: Reference) -> str:
        scheme = "http" if _host_is_loopback(_host(ref.registry)) or ref.registry in self.insecure \
            else "https"
        return f"{scheme}://{ref.registry}/v2/{ref.name}"

    async def _request(self, http: httpx.AsyncClient, method: str, url: str, ref: Reference,
                       scope: str, *, capped: int = MAX_TOKEN_BYTES, **kw: Any) -> httpx.Response:
        """A request with auth: on 401, answer the challenge once and retry.  The answer's
        body is read up to ``capped`` bytes (ImageError past that)."""
        headers = dict(kw.pop("headers", {}) or {})
        key = (ref.registry, scope)
        if key in self._tokens:
            headers["Authorization"] = self._tokens[key]

        async def send() -> httpx.Response:
            request = http.build_request(method, url, headers=headers, **kw)
            resp = await http.send(request, stream=True)
            try:
                body = await _read_capped(resp, capped, f"{ref}: {url}")
            finally:
                await resp.aclose()
            return httpx.Response(resp.status_code, headers=resp.headers, content=body,
                                  request=request)
        resp = await send()
        if resp.status_code != 401:
            return resp
        challenge = resp.headers.get("www-authenticate", "")
        auth = await self._answer(http, ref, challenge, scope)
        if auth is None:
            raise ImageError("ErrImagePull", f"pulling {ref}: unauthorized: authentication "
                             "required")
        self._tokens[key] = auth
        headers["Authorization"] = auth
        resp = await send()
        if resp.status_code == 401:
            raise ImageError("ErrImagePull", f"pulling {ref}: unauthorized: credentials refused")
        return resp

    async def _answer(self, http: httpx.AsyncClient, ref: Reference, challenge: str,
                      scope: str) -> str | None:
        creds = self.credentials.get(ref.registry)
        kind, _, params_text = challenge.partition(" ")
        params = dict(re.findall(r'(\w+)="([^"]*)"', params_text))
        if kind.lower() == "basic":
            if creds is None or not _private(self._base(ref)):
                return None
            return httpx.BasicAuth(*creds)._auth_header
        if kind.lower() != "bearer" or "realm" not in params:
            return None
        try:
            realm = httpx.URL(params["realm"])
        except httpx.InvalidURL:
            return None
        if realm.scheme not in ("http", "https") or not realm.host:
            return None
        if creds is not None and not _private(str(realm)):
            raise ImageError("ErrImagePull", f"pulling {ref}: the token realm {realm.host} is "
                             "not HTTPS; credentials are not sent there")
        self._realms.add(realm.host)
        query = {"service": params.get("service", ""), "scope": params.get("scope", scope)}
        async with http.stream("GET", realm, params=query,
                               auth=httpx.BasicAuth(*creds) if creds else None) as token_resp:
            body_bytes = await _read_capped(token_resp, MAX_TOKEN_BYTES, f"{ref}: token")
        if token_resp.status_code != 200:
            return None
        try:
            body = json.loads(body_bytes)
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            return None
        return f"Bearer {token}" if isinstance(token, str) and token else None

    # --- pull -------------------------------------------------------------------------------

    async def pull(self, text: str, progress: Progress | None = None) -> Image:
        ref = parse_reference(text)
        scope = f"repository:{ref.name}:pull"
        base = self._base(ref)
        try:
            async with self._client(ref) as http:
                manifest_digest, manifest = await self._manifest(http, ref, base, scope, ref.ref)
                if is_index(manifest):
                    manifest_digest = ImageStore.pick_platform(manifest)
                    manifest_digest, manifest = await self._manifest(http, ref, base, scope,
                                                                     manifest_digest)
                config, layers = manifest_descriptors(manifest, "ErrImagePull")
                if len(layers) > MAX_LAYERS:
                    raise ImageError("ErrImagePull", f"pulling {ref}: more than {MAX_LAYERS} "
                                     "layers")
                blobs = [config["digest"]] + [layer["digest"] for layer in layers]
                sizes = {d["digest"]: _descriptor_size(ref, d) for d in [config, *layers]}
                limiter = trio.CapacityLimiter(self.concurrency)
                try:
                    async with trio.open_nursery() as nursery:
                        for digest in blobs:
                            nursery.start_soon(self._blob, http, ref, base, scope, digest,
                                               sizes[digest], limiter, progress)
                except BaseExceptionGroup as group:
                    raise _first_leaf(group) from group
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise RegistryUnreachable(f"pulling {ref}: {type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise ImageError("ErrImagePull", f"pulling {ref}: {type(exc).__name__}: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise ImageError("ErrImagePull", f"pulling {ref}: malformed manifest: {exc}") from exc
        name = text if ref.digest is None else str(ref)
        # Tagging unpacks the layers: file work, off the event loop.
        return await trio.to_thread.run_sync(self.store.tag, name, manifest_digest)

    async def _manifest(self, http: httpx.AsyncClient, ref: Reference, base: str, scope: str,
                        which: str) -> tuple[str, dict[str, Any]]:
        resp = await self._request(http, "GET", f"{base}/manifests/{which}", ref, scope,
                                   headers={"Accept": ACCEPT}, capped=MAX_MANIFEST_BYTES)
        if resp.status_code == 404:
            raise ImageError("ErrImagePull", f"pulling {ref}: manifest unknown: {which} not found")
        if resp.status_code != 200:
            raise ImageError("ErrImagePull", f"pulling {ref}: registry answered "
                             f"{resp.status_code} for the manifest")
        data = resp.content
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        expected = which if which.startswith("sha256:") else resp.headers.get("docker-content-digest")
        if expected and expected != digest:
            raise ImageError("ErrImagePull", f"pulling {ref}: manifest digest mismatch: expected "
                             f"{expected}, got {digest}")
        manifest = json.loads(data)
        if not isinstance(manifest, dict):
            raise ImageError("ErrImagePull", f"pulling {ref}: the manifest is not an object")
        self.store.put_blob(data)
        return digest, manifest

    async def _blob(self, http: httpx.AsyncClient, ref: Reference, base: str, scope: str,
                    digest: str, size: int, limiter: trio.CapacityLimiter,
                    progress: Progress | None) -> None:
        if self.store.has_blob(digest):
            if progress:
                progress(digest, size, size)
            return
        async with limiter:
            partial_dir = os.path.join(self.store.root, "blobs", "partial")
            await trio.to_thread.run_sync(partial_dir_ready, partial_dir)
            partial = os.path.join(partial_dir, _hex(digest))
            for _attempt in range(3):
                have = await trio.to_thread.run_sync(_size, partial)
                if size and have >= size:
                    # Whole already (a pull cancelled between download and commit): a Range
                    # past the end gets nothing useful from a registry.  Verify it instead;
                    # a bad one is dropped by _commit, so the error names the mismatch.
                    break
                headers = {"Range": f"bytes={have}-"} if have else {}
                try:
                    await self._download(http, ref, base, scope, digest, partial, have, headers,
                                         size, progress)
                    break
                except (httpx.TransportError, trio.TooSlowError):
                    continue  # resume from what arrived
            else:
                raise ImageError("ErrImagePull", f"pulling {ref}: blob {digest}: download failed "
                                 "three times")
            await trio.to_thread.run_sync(self._commit, partial, digest)

    def _commit(self, partial: str, digest: str) -> None:
        """Verify a finished download into the store; a bad one is dropped, not kept."""
        try:
            with open(partial, "rb") as f:
                self.store.put_blob_stream(f, digest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)

    async def _download(self, http: httpx.AsyncClient, ref: Reference, base: str, scope: str,
                        digest: str, partial: str, have: int, headers: dict[str, str],
                        size: int, progress: Progress | None) -> None:
        """Stream one blob to its partial file (appending when the registry honours Range)."""
        url = f"{base}/blobs/{digest}"
        key = (ref.registry, scope)
        for _ in range(2):
            request_headers = dict(headers)
            if key in self._tokens:
                request_headers["Authorization"] = self._tokens[key]
            async with http.stream("GET", url, headers=request_headers) as resp:
                if resp.status_code == 401:
                    await resp.aread()
                    auth = await self._answer(http, ref, resp.headers.get("www-authenticate", ""),
                                              scope)
                    if auth is None:
                        raise ImageError("ErrImagePull", f"pulling {ref}: unauthorized")
                    self._tokens[key] = auth
                    continue
                if resp.status_code not in (200, 206):
                    await resp.aread()
                    raise ImageError("ErrImagePull", f"pulling {ref}: blob {digest}: registry "
                                     f"answered {resp.status_code}")
                resumed = resp.status_code == 206
                done = have if resumed else 0
                limit = size or MAX_BLOB_BYTES
                async with await trio.open_file(partial, "ab" if resumed else "wb") as f:
                    async for chunk in resp.aiter_bytes(1 << 20):
                        done += len(chunk)
                        if done > limit:
                            raise ImageError("ErrImagePull", f"pulling {ref}: blob {digest} "
                                             f"is longer than its {limit} bytes")
                        await f.write(chunk)
                        if progress:
                            progress(digest, done, size)
                return
        raise ImageError("ErrImagePull", f"pulling {ref}: unauthorized")

    # --- push (scripts and tests fill a registry with it) ------------------------------------

    async def push(self, image: Image, text: str) -> str:
        ref = parse_reference(text)
        scope = f"repository:{ref.name}:pull,push"
        base = self._base(ref)
        manifest_bytes = self.store.read_blob(image.digest)
        manifest = json.loads(manifest_bytes)
        async with self._client(ref) as http:
            for desc in [manifest["config"], *manifest["layers"]]:
                digest = desc["digest"]
                head = await self._request(http, "HEAD", f"{base}/blobs/{digest}", ref, scope)
                if head.status_code == 200:
                    continue
                start = await self._request(http, "POST", f"{base}/blobs/uploads/", ref, scope)
                if start.status_code != 202:
                    raise ImageError("ErrImagePush", f"pushing {ref}: upload refused "
                                     f"({start.status_code})")
                # The upload URL carries its own state in the query: add the digest to it.
                location = httpx.URL(base).join(start.headers["location"]).copy_merge_params(
                    {"digest": digest})
                put = await self._request(http, "PUT", str(location), ref, scope,
                                          content=self.store.read_blob(digest),
                                          headers={"Content-Type": "application/octet-stream"})
                if put.status_code != 201:
                    raise ImageError("ErrImagePush", f"pushing {ref}: blob {digest} refused "
                                     f"({put.status_code}: {put.text[:200]})")
            resp = await self._request(http, "PUT", f"{base}/manifests/{ref.ref}", ref, scope,
                                       content=manifest_bytes,
                                       headers={"Content-Type": manifest.get("mediaType",
                                                                            MEDIA_MANIFEST[0])})
            if resp.status_code != 201:
                raise ImageError("ErrImagePush", f"pushing {ref}: manifest refused "
                                 f"({resp.status_code}: {resp.text[:200]})")
        return image.digest
