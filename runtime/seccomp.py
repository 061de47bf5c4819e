"""The ``RuntimeDefault`` seccomp filter: the syscalls a container has no business making
answer EPERM, as under Docker's and containerd's default profiles.

Those profiles are allow-lists of about 350 syscalls; what they leave out is the short
list below -- kernel modules and keyrings, mounting and namespaces (the usual first step
of a container escape), clocks, swap, reboot, BPF and perf, io_uring, other processes'
memory.  Denying exactly that list is the same filter for what programs use, and one a
reader can check against the kernel's syscall table.  x32-ABI syscalls are denied too
(their numbers alias the ordinary ones with a high bit set); a syscall of another
architecture (a 32-bit binary) kills the process, as Docker's profile does not allow them
either.

The filter is classic BPF, built here, installed with ``prctl(PR_SET_SECCOMP)`` in the
container's PID 1 right before it execs (no_new_privs is set by then, so no capability
is needed) and inherited by everything the container runs, ``exec`` sessions included.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

__all__ = ["DENIED_X86_64", "RUNTIME_DEFAULT", "install", "program"]

RUNTIME_DEFAULT = "RuntimeDefault"

# x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl).
DENIED_X86_64 = {
    "sysfs": 139, "uselib": 134, "ustat": 136, "syslog": 103, "vhangup": 153, "pivot_root": 155,
    "_sysctl": 156, "acct": 163, "settimeofday": 164, "mount": 165, "umount2": 166,
    "swapon": 167, "swapoff": 168, "reboot": 169, "iopl": 172, "ioperm": 173,
    "create_module": 174, "init_module": 175, "delete_module": 176, "get_kernel_syms": 177,
    "query_module": 178, "quotactl": 179, "nfsservctl": 180, "lookup_dcookie": 212,
    "clock_settime": 227, "mbind": 237, "set_mempolicy": 238, "get_mempolicy": 239,
    "kexec_load": 246, "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272,
    "move_pages": 279, "perf_event_open": 298, "name_to_handle_at": 303,
    "open_by_handle_at": 304, "clock_adjtime": 305, "setns": 308, "process_vm_readv": 310,
    "process_vm_writev": 311, "kcmp": 312, "finit_module": 313, "kexec_file_load": 320,
    "bpf": 321, "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
}

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
EPERM = 1
# struct seccomp_data: int nr; __u32 arch; ...
_NR, _ARCH = 0, 4
# BPF opcodes
_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def program(denied: dict[str, int] | None = None) -> bytes:
    """The filter as ``struct sock_filter[]`` bytes (x86_64)."""
    numbers = sorted(set((denied or DENIED_X86_64).values()))
    n = len(numbers)
    # Layout: 0 ld arch; 1 jeq x86_64 (else kill); 2 ld nr; 3 jge x32 bit (-> deny);
    # 4..4+n-1 jeq nr (-> deny); allow; deny; kill.
    allow = 4 + n
    deny, kill = allow + 1, allow + 2
    out = [_insn(_LD_W_ABS, 0, 0, _ARCH),
           _insn(_JEQ_K, 0, kill - 2, AUDIT_ARCH_X86_64),
           _insn(_LD_W_ABS, 0, 0, _NR),
           _insn(_JGE_K, deny - 4, 0, X32_SYSCALL_BIT)]
    for i, nr in enumerate(numbers):
        at = 4 + i
        out.append(_insn(_JEQ_K, deny - at - 1, 0, nr))
    out += [_insn(_RET_K, 0, 0, SECCOMP_RET_ALLOW),
            _insn(_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM),
            _insn(_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS)]
    return b"".join(out)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def supported() -> bool:
    return platform.machine() in ("x86_64", "AMD64")


def install(profile: str) -> None:
    """Install ``profile`` (RuntimeDefault) on this process; it holds for what it execs.
    Raises OSError (the kernel refused) or ValueError (an architecture without a
    filter here)."""
    if profile != RUNTIME_DEFAULT:
        raise ValueError(f"seccomp profile {profile!r}: only {RUNTIME_DEFAULT} is built in")
    if not supported():
        raise ValueError(f"the {RUNTIME_DEFAULT} seccomp filter is built for x86_64, not "
                         f"{platform.machine()}")
    code = program()
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp filter: {os.strerror(err)}")
