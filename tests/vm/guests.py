"""How the VM tests reach the guests of either lab: a root shell in VM i and its power
switch.  scripts/vmlab runs them against its own qemu VMs (the serial console is a root
shell; power off = kill qemu) or, with VMLAB_SSH_CONFIG set, against the VMs `vagrant up`
made (ssh as Vagrant's user with sudo; power off = libvirt's destroy)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from serialshell import run as serial_run

VMLAB_DIR = Path(os.environ.get("VMLAB_DIR", "/var/lib/nodeagent-vmlab"))
SSH_CONFIG = os.environ.get("VMLAB_SSH_CONFIG", "")
# The cluster admin's kubeconfig (VM 1's, copied out by scripts/vmlab).
KUBECONFIG = Path(os.environ.get("VMLAB_KUBECONFIG", str(VMLAB_DIR / "admin.kubeconfig")))


def running() -> str | None:
    """Why no lab is there to test, or None."""
    if SSH_CONFIG:
        return None if Path(SSH_CONFIG).exists() else f"no {SSH_CONFIG}: scripts/vmlab vagrant-test"
    return None if (VMLAB_DIR / "vm1" / "qemu.pid").exists() else \
        "no VM lab running: scripts/vmlab test starts one"


def sh(i: int, command: str, timeout_s: float = 300) -> str:
    """Run a shell command as root in VM i; its output."""
    if SSH_CONFIG:
        p = subprocess.run(["ssh", "-F", SSH_CONFIG, f"node{i}", "sudo", "sh", "-c",
                            _quote(command)], capture_output=True, text=True, timeout=timeout_s)
        return p.stdout + p.stderr
    return serial_run(str(VMLAB_DIR / f"vm{i}" / "console.sock"), command, timeout_s=timeout_s)


def power_off(i: int) -> None:
    """Pull VM i's plug: no shutdown, its network gone at once."""
    if SSH_CONFIG:
        subprocess.run(["virsh", "-q", "-c", "qemu:///system", "destroy", f"nodeagent-node{i}"],
                       check=True, capture_output=True, timeout=60)
    else:
        os.kill(int((VMLAB_DIR / f"vm{i}" / "qemu.pid").read_text()), signal.SIGKILL)


def _quote(command: str) -> str:
    return "'" + command.replace("'", "'\\''") + "'"
