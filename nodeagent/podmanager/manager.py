"""The pod manager: runs the pods bound to this node, with kubelet's semantics.

One worker task per pod, each a level-triggered loop over that pod alone
(``sync_pod``), woken by a change of the Pod, of a ConfigMap, Secret or
Service, of its containers (the runtime relist), of a probe, or by a timer
(a back-off coming due).  A slow image pull or a 30 s grace period holds only
its own pod.  Each pass: sandbox -> volumes -> images per imagePullPolicy ->
init containers in order -> containers (restarted per restartPolicy with
crash-loop back-off, or on a failed liveness probe) -> probes -> status.

Deletion drops no request: the endpoints controller removes a pod from its
Services the moment it is marked for deletion; the worker waits until no
Endpoints list the pod's IP and the proxies had a moment to apply that, runs
preStop hooks, then SIGTERM, the grace period, SIGKILL, removes containers,
volumes and sandbox, and finally deletes the Pod object.

An agent restart adopts what runs: containers are found by their ids
(``<pod uid>_<name>_<attempt>``) in the launcher, readiness comes back from
the prober's persisted state, nothing is restarted; containers and sandboxes
of pods no longer bound here are removed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import trio

from netns.sandbox import Sandbox
from nodeagent.api.objects import now_rfc3339
from nodeagent.api.status import ApiError
from nodeagent.backoff import Backoff
from nodeagent.events import EventRecorder
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import CONFIGMAPS, ENDPOINTS, PODS, SECRETS, SERVICES
from nodeagent.objects.podutil import default_pull_policy, parse_time, pod_qos_class
from nodeagent.podmanager.attach import AttachSession
from nodeagent.podmanager.env import EnvError, command_line, container_env
from nodeagent.podmanager.runtime import Attempt, ExecSession, RuntimeClient
from nodeagent.podmanager.satokens import PodTokens
from nodeagent.podmanager.secrets import RemoteSecrets
from nodeagent.podmanager.spec import (
    container_id,
    container_spec,
    parse_container_id,
)
from nodeagent.podmanager.status import (
    ContainerRecord,
    RestartBackoff,
    conditions,
    container_status,
    pod_phase,
)
from nodeagent.podmanager.volumes import VolumeError, Volumes, read_only_volumes
from nodeagent.proxy.service import RulesProgress
from nodeagent.reconcile import reconcile
from probes.handlers import HttpGet
from probes.spec import handler_for
from probes.state import Kind
from probes.worker import ContainerProbe, Prober
from runtime.images import Image, ImageError, ImageStore, normalize_name
from runtime.protocol import ContainerState, ContainerStatus, LauncherError
from runtime.qos import container_cgroup, pod_cgroup
from runtime.registry import RegistryClient, RegistryUnreachable
from runtime.spec import Mount, spec_to_dict

__all__ = ["PodManager"]

log = logging.getLogger("nodeagent.podmanager")

assert PODS and ENDPOINTS and SERVICES and CONFIGMAPS and SECRETS
RESYNC_S = 10.0
SANDBOX_SWEEP_S = 60.0
PULL_PROGRESS_S = 5.0
MIB = 1 << 20
DIAL_TIMEOUT_S = 10.0  # pods/portforward: a connect inside the pod network
PROXY_MARGIN_S = 0.5  # for other nodes' proxies to apply an endpoint removal
Obj = dict[str, Any]


@dataclass
class PodWorker:
    uid: str
    pod: Obj | None
    wake: trio.Event = field(default_factory=trio.Event)
    sandbox: Sandbox | None = None
    volume_paths: dict[str, str] = field(default_factory=dict)
    probed: tuple[str, ...] = ()  # container ids the prober has
    started_at: str | None = None
    status_written: Obj | None = None
    status_written_rv: int = 0  # the pod's resourceVersion our last status write made
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> reason, message
    image_backoff: dict[str, Backoff] = field(default_factory=dict)  # image -> its pulls'
    image_retry_at: dict[str, float] = field(default_factory=dict)  # image -> next pull
    exits_seen: set[str] = field(default_factory=set)  # container ids fed to the back-off
    killing: set[str] = field(default_factory=set)  # container ids stopped for liveness
    volumes_at: int = -1  # the config generation its volumes were last set up at
    done: bool = False


class PodManager:
    def __init__(self, objects: Objects, node: str, runtime: RuntimeClient, images: ImageStore,
                 state_dir: str, *, net: dict[str, Any] | None, node_ip: str = "",
                 registry: RegistryClient | None = None, cgroup_parent: str = "nodeagent",
                 rules_applied: RulesProgress | None = None,
                 secrets: RemoteSecrets | None = None,
                 tokens: PodTokens | None = None) -> None:
        self.objects, self.node, self.runtime, self.images = objects, node, runtime, images
        # The pod network (cidr, bridge, netns_prefix, ipam_dir); None: pods share the
        # node's network namespace and address (as hostNetwork pods do).
        self.net, self.node_ip, self.cgroup_parent = net, node_ip, cgroup_parent
        self.registry = registry or RegistryClient(images)
        self.rules_applied = rules_applied  # this node's service rules' progress
        # A node that is not a server asks a server for its pods' Secrets (its copy has
        # none); None: they are in the store.
        self.secrets = secrets
        self.tokens = tokens  # the pods' ServiceAccount tokens (None: the cluster has none)
        self.state_dir = state_dir
        self.volumes = Volumes(os.path.join(state_dir, "pods"), self._lookup, self._token)
        self.events = EventRecorder(objects, "kubelet", node)
        self.backoff = RestartBackoff()
        self.prober = Prober(os.path.join(state_dir, "probes.json"), self._probe_changed)
        self.workers: dict[str, PodWorker] = {}
        self._image_ids: dict[str, str] = {}  # image as the pod names it -> manifest digest
        self._next_sandbox_sweep = -math.inf
        self._config_generation = 0  # bumped by every ConfigMap, Secret or Service change
        self._nursery: trio.Nursery | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.prober.run)
            await nursery.start(self.runtime.run_relist, self._wake)
            if self.net is not None:
                await self.runtime.ensure_bridge(self.net)
            await nursery.start(reconcile, "podmanager", self.objects.store,
                                [PODS.prefix(None)], self.sync)
            await nursery.start(reconcile, "podmanager-config", self.objects.store,
                                [r.prefix(None) for r in (CONFIGMAPS, SECRETS, SERVICES)],
                                self._config_changed)
            log.info("pod manager running node=%s adopted=%d", self.node,
                     len(self.runtime.containers))
            task_status.started()

    def _event(self, obj: Obj, type_: str, reason: str, message: str,
               field_path: str | None = None) -> None:
        """Record an event without holding up the pod (kubelet's recorder is a queue too)."""
        assert self._nursery is not None
        self._nursery.start_soon(self.events.record, obj, type_, reason, message, field_path)

    def _wake(self, uids: set[str]) -> None:
        for uid in uids:
            w = self.workers.get(uid)
            if w is not None:
                w.wake.set()

    async def sync(self) -> float | None:
        """Start, update and end pod workers to match the pods bound here."""
        assert self._nursery is not None
        mine = {p["metadata"]["uid"]: p for p in self.objects.list(PODS, None)["items"]
                if (p.get("spec") or {}).get("nodeName") == self.node}
        for uid, pod in mine.items():
            w = self.workers.get(uid)
            if w is None:
                w = self.workers[uid] = PodWorker(uid, pod)
                self._nursery.start_soon(self._worker, w)
            elif w.pod is not None and w.pod["metadata"].get("resourceVersion") == \
                    pod["metadata"].get("resourceVersion"):
                continue  # unchanged (often the worker's own status write): no pass needed
            w.pod = pod
            w.wake.set()
        for uid, w in self.workers.items():
            if uid not in mine and w.pod is not None:
                w.pod = None  # gone from the API: stop it
                w.wake.set()
        # Containers of pods this agent has no worker for (deleted while it was down).
        known = set(mine) | set(self.workers)
        for uid in {parsed[0] for parsed in map(parse_container_id, self.runtime.containers)
                    if parsed}:
            if uid not in known:
                w = self.workers[uid] = PodWorker(uid, None)
                self._nursery.start_soon(self._worker, w)
        now = trio.current_time()
        if self.net is not None and now >= self._next_sandbox_sweep:
            # Sandboxes of pods that vanished while nobody watched (a crash): rare, so a
            # sweep now and then, not a launcher call on every pod change.
            self._next_sandbox_sweep = now + SANDBOX_SWEEP_S
            await self.runtime.reconcile_sandboxes(self.net, set(mine) | set(self.workers))
        return None

    async def _config_changed(self) -> float | None:
        """A ConfigMap, Secret or Service changed: every pod may mount or name it."""
        self._config_generation += 1
        for w in self.workers.values():
            w.wake.set()
        return None

    async def _worker(self, w: PodWorker) -> None:
        retry = Backoff(1.0, 30.0)
        while not w.done:
            w.wake = trio.Event()
            try:
                again = await self.sync_pod(w)
                retry.reset()
            except (ApiError, LauncherError, OSError) as exc:
                log.warning("pod %s: %s", w.uid, exc)
                again = retry.next()
            except Exception:
                log.exception("pod %s: sync failed", w.uid)
                again = retry.next()
            if w.done:
                break
            with trio.move_on_after(again if again is not None else RESYNC_S):
                await w.wake.wait()
        self.workers.pop(w.uid, None)

    # --- one pod --------------------------------------------------------------------------

    async def sync_pod(self, w: PodWorker) -> float | None:
        pod = w.pod
        if pod is None:
            await self._kill(w, None, grace_s=2.0)
            await self._cleanup(w)
            w.done = True
            return None
        if pod["metadata"].get("deletionTimestamp"):
            await self._terminate(w, pod)
            return None
        spec = pod.get("spec") or {}
        policy = spec.get("restartPolicy", "Always")
        w.started_at = w.started_at or (pod.get("status") or {}).get("startTime") or now_rfc3339()
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return None  # finished: nothing runs again
        if w.sandbox is None and self.net is not None and not spec.get("hostNetwork"):
            try:
                w.sandbox = await self.runtime.create_sandbox(self.net, w.uid)
            except LauncherError as exc:
                self._event(pod, "Warning", "FailedCreatePodSandBox",
                                         f"Failed to create pod sandbox: {exc}")
                await self._write_status(w, pod)
                return 5.0
        if self.secrets is not None and await self.secrets.prefetch(pod):
            self._config_generation += 1
        if self.tokens is not None and await self.tokens.refresh(pod):
            w.volumes_at = -1  # a new token: this pod's volumes are written again
        try:
            # A pod's volumes follow its (immutable) spec and the ConfigMaps and Secrets it
            # names: set up once, then again only after one of those changed.
            if w.volumes_at != self._config_generation:
                generation = self._config_generation
                w.volume_paths = await trio.to_thread.run_sync(self.volumes.setup, pod)
                w.volumes_at = generation
        except (VolumeError, OSError) as exc:
            self._event(pod, "Warning", "FailedMount", f"MountVolume.SetUp failed: {exc}")
            await self._write_status(w, pod)
            return 5.0
        self._note_exits(w, pod)
        now = trio.current_time()
        again: float | None = None
        attempts = self.runtime.of_pod(w.uid)
        # Init containers, in order: each must exit 0 before the next starts.
        init_done = True
        for c in spec.get("initContainers") or []:
            latest = attempts.get(c["name"], [])
            st = latest[0].state if latest else None
            if st is not None and st.status == ContainerStatus.EXITED and st.exit_code == 0:
                continue
            init_done = False
            if st is not None and st.status == ContainerStatus.RUNNING:
                break
            wait = await self._maybe_start(w, pod, c, latest, policy if policy != "Always"
                                           else "OnFailure", now)
            if wait is not None:
                again = wait if again is None else min(again, wait)
            break
        if init_done:
            for c in spec.get("containers") or []:
                latest = attempts.get(c["name"], [])
                st = latest[0].state if latest else None
                if st is not None and st.status == ContainerStatus.RUNNING:
                    if self._liveness_failed(w.uid, c["name"]) and st.id not in w.killing:
                        w.killing.add(st.id)  # once: the stop escalates to SIGKILL itself
                        self._event(
                            pod, "Normal", "Killing", f"Container {c['name']} failed liveness "
                            "probe, will be restarted", f"spec.containers{{{c['name']}}}")
                        await self._stop(st.id, _grace(pod))
                    continue
                wait = await self._maybe_start(w, pod, c, latest, policy, now)
                if wait is not None:
                    again = wait if again is None else min(again, wait)
            # Ephemeral containers (kubectl debug): each started once, never restarted.
            for c in spec.get("ephemeralContainers") or []:
                if not attempts.get(c["name"]):
                    wait = await self._maybe_start(w, pod, c, [], "Never", now)
                    if wait is not None:
                        again = wait if again is None else min(again, wait)
            await self._ensure_probes(w, pod)
        await self._write_status(w, pod)
        due = self.tokens.next_refresh(pod) if self.tokens is not None else None
        if due is not None:
            again = due if again is None else min(again, due)
        return again

    async def _maybe_start(self, w: PodWorker, pod: Obj, c: Obj,
                           latest: list[Attempt], policy: str, now: float) -> float | None:
        """Start the container's next attempt if the policy and the back-off allow."""
        name = c["name"]
        key = f"{w.uid}/{name}"
        attempt = 0
        if latest:
            last_attempt, st = latest[0]
            if st.status == ContainerStatus.CREATED:
                return 1.0  # being started
            code = st.exit_code
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                return None
            attempt = last_attempt + 1
            left = self.backoff.waiting(key, now)
            if left > 0:
                w.waiting[name] = ("CrashLoopBackOff",
                                   self.backoff.message(key, name, pod["metadata"]["name"]))
                return left
        pid_namespace = None
        if target := c.get("targetContainerName"):
            shared = self.runtime.running(w.uid).get(target)
            if shared is None or not shared.pid:
                w.waiting[name] = ("ContainerCreating", f"container {target} is not running")
                return 1.0
            pid_namespace = f"/proc/{shared.pid}/ns/pid"  # its processes are the debugger's
        image = await self._image(w, pod, c)
        if image is None:
            return max(0.5, w.image_retry_at.get(c["image"], now + 1) - now)
        try:
            env = container_env(pod, c, self._lookup, self._services(pod))
        except EnvError as exc:
            w.waiting[name] = ("CreateContainerConfigError", str(exc))
            self._event(pod, "Warning", "Failed", f"Error: {exc}",
                                     _field_of(pod, name))
            return 5.0
        cid = container_id(w.uid, name, attempt)
        try:
            rootfs, hosts = await trio.to_thread.run_sync(
                lambda: (self.images.mount_rootfs(cid, image), self._hosts_file(w, pod)))
            mounts = [*Volumes.mounts(c, w.volume_paths, read_only_volumes(pod)), hosts]
        except (ImageError, VolumeError, OSError) as exc:
            w.waiting[name] = ("CreateContainerError", str(exc))
            self._event(pod, "Warning", "Failed", f"Error: {exc}",
                                     _field_of(pod, name))
            return 5.0
        qos = pod_qos_class(pod["spec"].get("containers") or [])
        spec = container_spec(
            pod, c, image, rootfs=rootfs, env=env,
            argv=command_line(c, env, image.entrypoint, image.cmd), mounts=mounts,
            netns_path=w.sandbox.path if w.sandbox else None,
            cgroup_path=container_cgroup(pod_cgroup(self.cgroup_parent, qos, w.uid), cid),
            pid_namespace=pid_namespace)
        if not spec.args:
            w.waiting[name] = ("CreateContainerError", "no command specified")
            return 5.0
        # Keep the previous attempt for `logs --previous`, remove older ones.
        for _older, st in latest[1:]:
            await self._remove_container(st.id)
        log_dir = os.path.join(self.state_dir, "logs", _log_dir(pod), name)
        os.makedirs(log_dir, exist_ok=True)
        try:
            await self.runtime.run(cid, spec_to_dict(spec), os.path.join(log_dir, f"{attempt}.log"),
                                   stdin=bool(c.get("stdin")), stdin_once=bool(c.get("stdinOnce")))
        except LauncherError as exc:
            w.waiting[name] = ("RunContainerError" if exc.reason != "InvalidSpec"
                               else "CreateContainerError", str(exc))
            self._event(pod, "Warning", "Failed", f"Error: {exc}",
                                     _field_of(pod, name))
            if latest:
                self.backoff.exited(key, now, now)
            return 5.0
        w.waiting.pop(name, None)
        self._event(pod, "Normal", "Created", f"Created container {name}",
                                 _field_of(pod, name))
        self._event(pod, "Normal", "Started", f"Started container {name}",
                                 _field_of(pod, name))
        return None

    async def _image(self, w: PodWorker, pod: Obj, c: Obj) -> Image | None:
        ref = c["image"]
        name = normalize_name(ref)
        policy = c.get("imagePullPolicy") or default_pull_policy(ref)
        field_path = _field_of(pod, c['name'])
        have: Image | None = None
        with contextlib.suppress(ImageError):
            have = self.images.get(name)
        if policy == "Never" or (policy == "IfNotPresent" and have is not None):
            if have is None:
                msg = f'Container image "{ref}" is not present with pull policy of Never'
                w.waiting[c["name"]] = ("ErrImageNeverPull", msg)
                self._event(pod, "Warning", "ErrImageNeverPull", msg, field_path)
                return None
            self._event(pod, "Normal", "Pulled",
                        f'Container image "{ref}" already present on machine', field_path)
            self._image_ids[ref] = have.digest
            return have
        now = trio.current_time()
        if w.image_retry_at.get(ref, 0) > now:
            w.waiting[c["name"]] = ("ImagePullBackOff", f'Back-off pulling image "{ref}"')
            return None
        self._event(pod, "Normal", "Pulling", f'Pulling image "{ref}"', field_path)
        t0 = time.monotonic()
        try:
            image = await self._pull_reporting(pod, ref, field_path)
        except ImageError as exc:
            if have is not None and policy == "Always" and isinstance(exc, RegistryUnreachable):
                # The registry cannot be reached: the copy here is what we have.
                self._image_ids[ref] = have.digest
                return have
            w.waiting[c["name"]] = ("ErrImagePull", str(exc))
            self._event(pod, "Warning", "Failed",
                                     f'Failed to pull image "{ref}": {exc}', field_path)
            # kubelet's image back-off: 10 s, doubling to 5 minutes.
            backoff = w.image_backoff.setdefault(ref, Backoff(10.0, 300.0))
            w.image_retry_at[ref] = now + backoff.next()
            return None
        w.image_backoff.pop(ref, None)
        w.image_retry_at.pop(ref, None)
        self._image_ids[ref] = image.digest
        self._event(pod, "Normal", "Pulled", f'Successfully pulled image "{ref}" in '
                                 f"{time.monotonic() - t0:.3f}s", field_path)
        return image

    async def _pull_reporting(self, pod: Obj, ref: str, field_path: str) -> Image:
        """Pull, and every PULL_PROGRESS_S say how far it got: a big image on a slow link
        is then visible in ``describe pod`` as moving, not stuck."""
        got: dict[str, int] = {}
        sizes: dict[str, int] = {}

        def progress(digest: str, so_far: int, size: int) -> None:
            got[digest], sizes[digest] = so_far, size

        async def report() -> None:
            while True:
                await trio.sleep(PULL_PROGRESS_S)
                self._event(pod, "Normal", "Pulling",
                            f'Pulling image "{ref}": {sum(got.values()) / MIB:.1f} MiB of '
                            f"{sum(sizes.values()) / MIB:.1f} MiB", field_path)

        failed: ImageError | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(report)
            try:
                image = await self.registry.pull(ref, progress)
            except ImageError as exc:  # raised out of the nursery it would come as a group
                failed = exc
            finally:
                nursery.cancel_scope.cancel()
        if failed is not None:
            raise failed
        return image

    # --- probes ---------------------------------------------------------------------------

    async def _ensure_probes(self, w: PodWorker, pod: Obj) -> None:
        running = self.runtime.running(w.uid)
        ids = tuple(sorted(st.id for st in running.values()))
        if ids == w.probed:
            return
        w.probed = ids
        ip = w.sandbox.ip if w.sandbox else "127.0.0.1"
        probes = []
        for c in pod["spec"].get("containers") or []:
            st = running.get(c["name"])
            if st is None:
                continue
            for kind, field_name in ((Kind.STARTUP, "startupProbe"),
                                     (Kind.LIVENESS, "livenessProbe"),
                                     (Kind.READINESS, "readinessProbe")):
                if c.get(field_name):
                    params, handler = handler_for(c[field_name], c, ip, self._exec_for(st.id))
                    probes.append(ContainerProbe(c["name"], st.id, kind, params, handler))
        if probes:
            self.prober.add_pod(w.uid, probes)
        else:
            self.prober.remove_pod(w.uid)

    def _exec_for(self, cid: str):
        async def run(args: list[str], timeout_s: float) -> tuple[int, str]:
            return await self.runtime.exec(cid, args, timeout_s)
        return run

    def _probe_changed(self, uid: str, container: str, kind: Kind, passing: bool,
                       message: str) -> None:
        w = self.workers.get(uid)
        if w is None:
            return
        w.wake.set()
        if not passing and w.pod is not None and self._nursery is not None:
            reason = f"{kind.value.capitalize()} probe failed: {message}" \
                if not message.startswith("Liveness probe failed") else message
            self._event(w.pod, "Warning", "Unhealthy", reason, f"spec.containers{{{container}}}")

    def _liveness_failed(self, uid: str, name: str) -> bool:
        state = self.prober.states.get((uid, name, Kind.LIVENESS))
        return state is not None and state.restart_requested

    async def exec(self, pod: Obj, container: str, argv: list[str], stdin: bool,
                   tty: bool) -> ExecSession:
        """Start a command in the pod's running container; its stdio is streamed (pods/exec)."""
        st = self._running(pod, container)
        try:
            return await self.runtime.exec_attach(st.id, argv, stdin=stdin, tty=tty)
        except LauncherError as exc:
            raise ApiError(500, "InternalError", f"exec in container {container}: {exc}") from exc

    async def attach(self, pod: Obj, container: str, argv: list[str], stdin: bool,
                     tty: bool) -> AttachSession:
        """Attach to the container's own process (pods/attach): its output from now on and,
        if its spec keeps one, its stdin.  ``argv`` is not used (exec's signature)."""
        st = self._running(pod, container)
        writer = None
        if stdin:
            try:
                writer = await self.runtime.attach_stdin(st.id)
            except LauncherError as exc:
                raise ApiError.bad_request(
                    f"container {container} in pod {pod['metadata']['name']} takes no stdin "
                    f"(set stdin: true in its spec): {exc}") from exc

        def running() -> bool:
            now = self.runtime.running(pod["metadata"]["uid"]).get(container)
            return now is not None and now.id == st.id
        return AttachSession(st.log_path, writer, tty, running)

    def _running(self, pod: Obj, container: str) -> ContainerState:
        """The container's running attempt; 400 if it is not running."""
        st = self.runtime.running(pod["metadata"]["uid"]).get(container)
        if st is None:
            raise ApiError.bad_request(f'container {container} is not running in pod '
                                       f'{pod["metadata"]["name"]}')
        return st

    async def dial(self, pod: Obj, port: int) -> trio.SocketStream:
        """A connection to the port inside the pod's network namespace (pods/portforward):
        through any running container of the pod, as they share the namespace."""
        running = self.runtime.running(pod["metadata"]["uid"])
        if not running:
            raise ApiError.bad_request(f'pod {pod["metadata"]["name"]} has no running '
                                       "container: it cannot be forwarded to")
        try:
            with trio.fail_after(DIAL_TIMEOUT_S):
                return await self.runtime.dial(next(iter(running.values())).id, port)
        except trio.TooSlowError:
            raise OSError(errno.ETIMEDOUT, f"no answer in {DIAL_TIMEOUT_S:g}s") from None
        except LauncherError as exc:
            raise OSError(errno.ECONNREFUSED, str(exc)) from exc

    # --- stopping -------------------------------------------------------------------------

    async def _terminate(self, w: PodWorker, pod: Obj) -> None:
        """Graceful deletion: out of the endpoints, preStop, SIGTERM, grace, SIGKILL, gone."""
        grace = _grace(pod)
        deadline = trio.current_time() + grace
        ip = (pod.get("status") or {}).get("podIP")
        if ip and grace > 0:
            with trio.move_on_after(min(grace / 2, 10.0)):
                while self._in_endpoints(pod["metadata"]["namespace"], ip):  # noqa: ASYNC110
                    await trio.sleep(0.1)  # the store is polled: a watch for one IP is no simpler
                if self.rules_applied is not None:  # this node's rules: known exactly
                    await self.rules_applied.wait_for(self.objects.store.revision)
            # Other nodes' proxies (with the cluster) are not observed: give them a moment.
            await trio.sleep(min(PROXY_MARGIN_S, grace / 4))
        log.info("pod stopping %s/%s ip=%s", pod["metadata"]["namespace"], pod["metadata"]["name"], ip)
        await self._kill(w, pod, grace_s=max(0.0, deadline - trio.current_time()))
        await self._cleanup(w)
        try:
            await self.objects.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"],
                                      grace_period_s=0, preconditions_uid=w.uid)
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise
        log.info("pod deleted %s/%s", pod["metadata"]["namespace"], pod["metadata"]["name"])
        w.done = True

    def _in_endpoints(self, namespace: str, ip: str) -> bool:
        for ep in self.objects.list(ENDPOINTS, namespace)["items"]:
            for subset in ep.get("subsets") or []:
                if any(a.get("ip") == ip for a in subset.get("addresses") or []):
                    return True
        return False

    async def _kill(self, w: PodWorker, pod: Obj | None, grace_s: float) -> None:
        running = self.runtime.running(w.uid)
        if pod is not None:
            async with trio.open_nursery() as nursery:
                for c in pod["spec"].get("containers") or []:
                    hook = ((c.get("lifecycle") or {}).get("preStop"))
                    st = running.get(c["name"])
                    if hook and st is not None:
                        nursery.start_soon(self._pre_stop, w, pod, c, st.id, hook, grace_s)
        for st in running.values():
            await self._stop(st.id, grace_s)
        with trio.move_on_after(grace_s + 5):
            while self.runtime.running(w.uid):
                await trio.sleep(0.2)
                await self.runtime.relist()

    async def _pre_stop(self, w: PodWorker, pod: Obj, c: Obj, cid: str, hook: Obj,
                        grace_s: float) -> None:
        with trio.move_on_after(grace_s):
            if hook.get("exec"):
                code, out = await self.runtime.exec(cid, list(hook["exec"].get("command") or []),
                                                    grace_s)
                ok, message = code == 0, out
            elif hook.get("httpGet"):
                h = hook["httpGet"]
                ip = w.sandbox.ip if w.sandbox else "127.0.0.1"
                ok, message = await HttpGet(h.get("host") or ip, int(h.get("port") or 80),
                                            h.get("path") or "/")(grace_s)
            else:
                return
            if not ok:
                self._event(pod, "Warning", "FailedPreStopHook",
                                         f"PreStopHook failed: {message.strip()[:200]}",
                                         f"spec.containers{{{c['name']}}}")

    async def _stop(self, cid: str, grace_s: float) -> None:
        with contextlib.suppress(LauncherError):
            await self.runtime.stop(cid, grace_s)

    async def _remove_container(self, cid: str) -> None:
        with contextlib.suppress(LauncherError):
            await self.runtime.delete(cid)
        await trio.to_thread.run_sync(self.images.remove_rootfs, cid)

    async def _cleanup(self, w: PodWorker) -> None:
        self.prober.remove_pod(w.uid)
        for attempts in self.runtime.of_pod(w.uid).values():
            for _, st in attempts:
                await self._remove_container(st.id)
        await self.runtime.relist()
        await trio.to_thread.run_sync(self.volumes.teardown, w.uid)
        if self.net is not None:
            with contextlib.suppress(LauncherError):
                await self.runtime.delete_sandbox(self.net, w.uid)
        w.sandbox = None
        self.backoff.forget_prefix(f"{w.uid}/")
        if self.tokens is not None:
            self.tokens.forget(set(self.workers) - {w.uid})

    # --- status ---------------------------------------------------------------------------

    def _restarts(self, pod: Obj, st: ContainerState, init: bool) -> bool:
        """Will this exited container be started again (restartPolicy)?"""
        policy = pod["spec"].get("restartPolicy", "Always")
        if init and policy == "Always":
            policy = "OnFailure"  # init containers never restart after success
        return policy == "Always" or (policy == "OnFailure" and st.exit_code != 0)

    def _note_exits(self, w: PodWorker, pod: Obj) -> None:
        """Feed each exit of a container that will restart to the crash-loop back-off, once."""
        spec = pod["spec"]
        now = trio.current_time()
        for init, containers in ((True, spec.get("initContainers") or []),
                                 (False, spec.get("containers") or [])):
            history = self.runtime.of_pod(w.uid)
            for c in containers:
                at = history.get(c["name"])
                if not at or at[0].state.status != ContainerStatus.EXITED or at[0].state.id in w.exits_seen:
                    continue
                st = at[0].state
                w.exits_seen.add(st.id)
                if self._restarts(pod, st, init):
                    self.backoff.exited(f"{w.uid}/{c['name']}", _mono(st.started_at, now),
                                        _mono(st.finished_at, now))

    def _records(self, w: PodWorker, pod: Obj, containers: list[Obj],
                 init: bool = False, ephemeral: bool = False) -> list[ContainerRecord]:
        """Each container's status; an ephemeral one is never ready and never restarts."""
        history = self.runtime.of_pod(w.uid)
        out = []
        for c in containers:
            rec = ContainerRecord(c["name"], c["image"])
            attempts = history.get(c["name"], [])
            rec.image_id = self._image_ids.get(c["image"], "")
            if not attempts:
                rec.reason, rec.message = w.waiting.get(
                    c["name"], ("PodInitializing" if init else "ContainerCreating", ""))
                out.append(rec)
                continue
            rec.restart_count = attempts[0][0]
            st = attempts[0].state
            rec.container_id = f"nodeagent://{st.id}"
            if len(attempts) > 1 and attempts[1].state.status == ContainerStatus.EXITED:
                rec.last_state = {"terminated": _terminated(attempts[1].state)}
            if st.status == ContainerStatus.RUNNING:
                rec.state, rec.started_at = "running", _k8s_time(st.started_at)
                readiness = self.prober.passing(w.uid, c["name"], Kind.READINESS)
                startup = self.prober.passing(w.uid, c["name"], Kind.STARTUP)
                rec.started = startup is not False
                rec.ready = not init and not ephemeral and rec.started and readiness is not False
            elif st.status == ContainerStatus.EXITED and not ephemeral and \
                    self._restarts(pod, st, init):
                # Waiting for its next attempt; the one that ended is the last state.
                rec.last_state = {"terminated": _terminated(st)}
                key = f"{w.uid}/{c['name']}"
                rec.reason, rec.message = w.waiting.get(c["name"], (
                    "CrashLoopBackOff", self.backoff.message(key, c["name"], pod["metadata"]["name"])))
            elif st.status == ContainerStatus.EXITED:
                rec.state = "terminated"
                term = _terminated(st)
                rec.exit_code, rec.reason = term["exitCode"], term["reason"]
                rec.message = st.message
                rec.started_at, rec.finished_at = term.get("startedAt"), term.get("finishedAt")
            out.append(rec)
        return out

    async def _write_status(self, w: PodWorker, pod: Obj) -> None:
        spec = pod.get("spec") or {}
        init = self._records(w, pod, spec.get("initContainers") or [], init=True)
        main = self._records(w, pod, spec.get("containers") or [])
        debuggers = self._records(w, pod, spec.get("ephemeralContainers") or [], ephemeral=True)
        policy = spec.get("restartPolicy", "Always")
        old = pod.get("status") or {}
        initialized = all(r.state == "terminated" and r.exit_code == 0 for r in init)
        status: Obj = {
            "phase": pod_phase(policy, init, main),
            "conditions": conditions(old.get("conditions"), now_rfc3339(), initialized=initialized,
                                     containers_ready=bool(main) and all(r.ready for r in main)),
            "hostIP": self.node_ip or None,
            "startTime": w.started_at,
            "containerStatuses": [container_status(r) for r in main],
            "qosClass": pod_qos_class(spec.get("containers") or []),
        }
        if init:
            status["initContainerStatuses"] = [container_status(r) for r in init]
        if debuggers:
            status["ephemeralContainerStatuses"] = [container_status(r) for r in debuggers]
        if w.sandbox is not None:
            status["podIP"] = w.sandbox.ip
            status["podIPs"] = [{"ip": w.sandbox.ip}]
        elif (pod.get("spec") or {}).get("hostNetwork") and self.node_ip:
            status["podIP"] = self.node_ip  # the node's network is the pod's
            status["podIPs"] = [{"ip": self.node_ip}]
        if self.node_ip:
            status["hostIPs"] = [{"ip": self.node_ip}]
        status = {k: v for k, v in status.items() if v is not None}
        if status == old or (status == w.status_written and _rv(pod) <= w.status_written_rv):
            # Written already, and the pod seen is not newer than our write.  A newer one
            # with another status was changed by someone else (the node lifecycle marks a
            # dead node's pods not ready): ours is written again.
            w.status_written = status
            return
        for _ in range(3):
            try:
                fresh = await self.objects.update(PODS, pod["metadata"]["namespace"],
                                                  pod["metadata"]["name"], {**pod, "status": status},
                                                  subresource="status")
                w.status_written, w.status_written_rv = status, _rv(fresh)
                w.pod = fresh
                return
            except ApiError as exc:
                if exc.code != 409:
                    raise
                pod = self.objects.get(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])

    # --- lookups --------------------------------------------------------------------------

    def _token(self, pod: Obj, source: Obj) -> tuple[str | None, str]:
        if self.tokens is None:
            return None, "this node gets no ServiceAccount tokens"
        return self.tokens.get(pod, source), self.tokens.error(pod)

    def _lookup(self, kind: str, namespace: str, name: str) -> Obj | None:
        if kind == "Secret" and self.secrets is not None:
            return self.secrets.get(namespace, name)
        res = CONFIGMAPS if kind == "ConfigMap" else SECRETS
        try:
            return self.objects.get(res, namespace, name)
        except ApiError:
            return None

    def _services(self, pod: Obj) -> list[Obj]:
        """The Services whose variables a container gets: its namespace's, and the
        ``kubernetes`` Service wherever it runs."""
        ns = pod["metadata"]["namespace"]
        services = list(self.objects.list(SERVICES, ns)["items"])
        if ns != "default":
            try:
                services.append(self.objects.get(SERVICES, "default", "kubernetes"))
            except ApiError:
                pass
        return services

    def _hosts_file(self, w: PodWorker, pod: Obj) -> Mount:
        """/etc/hosts with the pod's own name, as kubelet writes it."""
        path = os.path.join(self.state_dir, "pods", w.uid, "etc-hosts")
        ip = w.sandbox.ip if w.sandbox else "127.0.0.1"
        name = pod["spec"].get("hostname") or pod["metadata"]["name"]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
                    "::1\tlocalhost ip6-localhost ip6-loopback\n"
                    f"{ip}\t{name}\n")
        return Mount("/etc/hosts", "bind", path, ("rbind",))


def _field_of(pod: Obj, name: str) -> str:
    """The container's field path, as events name it: ``spec.initContainers{setup}``."""
    for key in ("initContainers", "ephemeralContainers"):
        if any(c.get("name") == name for c in pod["spec"].get(key) or []):
            return f"spec.{key}{{{name}}}"
    return f"spec.containers{{{name}}}"


def _rv(pod: Obj) -> int:
    rv = pod["metadata"].get("resourceVersion") or "0"
    return int(rv) if rv.isdigit() else 0


def _grace(pod: Obj) -> float:
    meta = pod["metadata"]
    g = meta.get("deletionGracePeriodSeconds")
    if g is None:
        g = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    return float(max(0, int(g)))


def _log_dir(pod: Obj) -> str:
    m = pod["metadata"]
    return f"{m['namespace']}_{m['name']}_{m['uid']}"


def _k8s_time(stamp: str | None) -> str | None:
    """The runtime's nanosecond stamps as the API writes times (seconds)."""
    return f"{stamp[:19]}Z" if stamp else None


def _terminated(st: ContainerState) -> Obj:
    code = st.exit_code
    out = {"exitCode": code, "reason": st.reason or ("Completed" if code == 0 else "Error"),
           "message": st.message or None, "startedAt": _k8s_time(st.started_at),
           "finishedAt": _k8s_time(st.finished_at), "containerID": f"nodeagent://{st.id}"}
    return {k: v for k, v in out.items() if v is not None}


def _mono(stamp: str | None, now: float) -> float:
    """An RFC 3339 time on Trio's clock (for back-off arithmetic)."""
    if not stamp:
        return now
    return now - max(0.0, time.time() - parse_time(stamp))
