"""The launcher: one small single-threaded process per node that starts and keeps containers.

Why a separate process: nothing may fork inside the agent's Trio process, and
containers must outlive the agent (kill -9 included) with their exit statuses
and logs still collected.  The launcher is a child subreaper, so every
container it starts is its child and it reaps them all -- no monitor process
per container (containerd runs a shim each, conmon does the same for podman).
It relays each container's stdout/stderr into a CRI log file and writes each
container's state to ``STATE_DIR/<id>/state.json`` atomically, so a restarted
agent reads it back.  If the launcher itself restarts, containers still running
are re-attached by PID and start time (guarding against PID reuse) and watched
with a pidfd; their exit code is then unknown and recorded as such.

Where things are: the wire protocol in runtime/protocol.py; the loop, reaping and
state on disk in launcher_loop.py, and what it keeps of each container in
launcher_state.py; container ops in launcher_containers.py; exec and attach in
launcher_exec.py; the blocking client in runtime/client.py.  Ops for other libraries
(the pods' network sandboxes, netns/launcher_ops.py) are handed in by whoever starts
the launcher (``python -m runtime launcher``).
"""

from __future__ import annotations

from runtime.launcher_containers import ContainerOps
from runtime.launcher_exec import ExecOps

__all__ = ["Launcher"]


class Launcher(ContainerOps, ExecOps):
    """LauncherLoop with every container and exec op; ``serve()`` runs it."""
