"""Run a command in a VM lab guest through its serial console (a root shell there) and
print what it printed: python serialshell.py SOCKET 'CMD'.  Also imported by the VM
tests."""

from __future__ import annotations

import re
import socket
import sys
import time
import uuid


def run(sock_path: str, command: str, timeout_s: float = 120.0) -> str:
    """The command's output (its own echo and the prompt left out)."""
    marker = f"__vmlab_{uuid.uuid4().hex[:8]}__"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(sock_path)
        s.settimeout(1.0)
        # A fresh line first (the console may hold a half-typed one, or a login banner).
        s.sendall(b"\x03\n")
        time.sleep(0.5)
        s.sendall(f"{command}; echo {marker}$((1+1))\n".encode())
        buf = b""
        deadline = time.monotonic() + timeout_s
        while f"{marker}2".encode() not in buf:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer to {command!r} in {timeout_s:.0f} s")
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            buf += chunk
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.decode(errors="replace")).replace("\r", "")
    out = text.split(f"{marker}2")[0]
    # Drop everything up to and including the echoed command line.
    echo = f"echo {marker}$((1+1))"
    if echo in out:
        out = out.split(echo, 1)[1]
    return out.strip("\n")


if __name__ == "__main__":
    print(run(sys.argv[1], sys.argv[2]))
