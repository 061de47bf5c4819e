"""libnftables in-process: an ``nft -f`` transaction without starting a process.

Starting ``nft`` costs about 15 ms before it does anything, which is more than a
one-service update should take; libnftables (Debian's libnftables1, which the
nft command itself uses) runs the same transaction from a buffer.  Network
namespaces are per thread, so each :class:`Nft` owns one thread that joined
the target namespace once and serves every transaction there; nothing else in
the process changes namespace, and callers (Trio via ``to_thread``) just wait
for the answer.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import threading

__all__ = ["Nft", "NftError", "available"]

CLONE_NEWNET = 0x40000000


class NftError(Exception):
    pass


def _lib() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("nftables") or "libnftables.so.1"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    return lib


_LIB = _lib()


def available() -> bool:
    return _LIB is not None


class Nft:
    """A libnftables context living in one thread inside ``netns_name`` (None: ours)."""

    def __init__(self, netns_name: str | None = None) -> None:
        if _LIB is None:
            raise NftError("libnftables is not installed (Debian: libnftables1)")
        self._jobs: queue.Queue[tuple[str, queue.Queue[str | None]] | None] = queue.Queue()
        ready: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, args=(netns_name, ready),
                                        name=f"nft-{netns_name or 'self'}", daemon=True)
        self._thread.start()
        problem = ready.get()
        if problem is not None:
            raise NftError(problem)

    def _serve(self, netns_name: str | None, ready: queue.Queue[str | None]) -> None:
        assert _LIB is not None
        try:
            if netns_name:
                fd = os.open(f"/run/netns/{netns_name}", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6",
                                       use_errno=True)
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, os.strerror(err))
                finally:
                    os.close(fd)
        except OSError as exc:
            ready.put(f"cannot enter network namespace {netns_name}: {exc}")
            return
        ctx = _LIB.nft_ctx_new(0)
        _LIB.nft_ctx_buffer_output(ctx)
        _LIB.nft_ctx_buffer_error(ctx)
        ready.put(None)
        try:
            while (job := self._jobs.get()) is not None:
                script, answer = job
                rc = _LIB.nft_run_cmd_from_buffer(ctx, script.encode())
                answer.put(None if rc == 0 else
                           (_LIB.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace"))
        finally:
            _LIB.nft_ctx_free(ctx)

    def run(self, script: str) -> None:
        """Run one transaction; raises NftError with nft's message if it is refused."""
        answer: queue.Queue[str | None] = queue.Queue()
        self._jobs.put((script, answer))
        error = answer.get()
        if error is not None:
            raise NftError(error.strip()[:2000] or "nft refused the transaction")

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(5)
