"""Helpers for tests that run containers: a busybox bundle, and leaving no cgroup behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runtime.cgroups import V1Driver

ROOT = Path(__file__).resolve().parents[1]


def build_bundle(path: Path) -> Path:
    """An OCI bundle with a busybox rootfs (scripts/images/busybox_bundle.py)."""
    subprocess.run([sys.executable, str(ROOT / "scripts/images/busybox_bundle.py"), str(path)],
                   check=True, capture_output=True)
    return path


def remove_cgroup_tree(parent: str) -> None:
    """Kill every process under ``parent`` (cgroup v1) and remove its cgroups."""
    driver = V1Driver()
    for ctrl in driver.controllers:
        base = Path(driver.root) / ctrl / parent
        if not base.exists():
            continue
        for d in sorted((p for p in base.rglob("*") if p.is_dir()), reverse=True):
            rel = str(d.relative_to(Path(driver.root) / ctrl))
            driver.kill_all(rel)
            driver.delete(rel)
        driver.kill_all(parent)
        base.rmdir()
