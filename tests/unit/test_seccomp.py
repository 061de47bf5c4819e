"""The RuntimeDefault filter's program, checked instruction by instruction by running it:
a tiny interpreter of the classic BPF subset it uses, fed seccomp_data as the kernel
would (the real kernel runs it in tests/integration/test_runtime.py)."""

from __future__ import annotations

import struct

from runtime import seccomp


def run(program: bytes, nr: int, arch: int = seccomp.AUDIT_ARCH_X86_64) -> int:
    insns = [struct.unpack("HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    data = struct.pack("iI", nr, arch) + bytes(56)
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:
            acc = struct.unpack_from("I", data, k)[0]
            pc += 1
        elif code == 0x15:
            pc += 1 + (jt if acc == k else jf)
        elif code == 0x35:
            pc += 1 + (jt if acc >= k else jf)
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


def test_denied_syscalls_get_eperm_and_the_rest_pass() -> None:
    prog = seccomp.program()
    eperm = seccomp.SECCOMP_RET_ERRNO | seccomp.EPERM
    for name in ("unshare", "setns", "mount", "keyctl", "bpf", "io_uring_setup", "kexec_load"):
        assert run(prog, seccomp.DENIED_X86_64[name]) == eperm, name
    for nr in (0, 1, 2, 57, 59, 60, 231, 435):  # read write open fork execve exit ... clone3
        assert run(prog, nr) == seccomp.SECCOMP_RET_ALLOW, nr
    assert run(prog, seccomp.X32_SYSCALL_BIT | 1) == eperm  # the x32 ABI's write
    assert run(prog, 4, arch=0x40000003) == seccomp.SECCOMP_RET_KILL_PROCESS  # i386


def test_one_comparison_per_denied_syscall() -> None:
    prog = seccomp.program()
    assert len(prog) // 8 == len(set(seccomp.DENIED_X86_64.values())) + 7
