"""vagrant/Vagrantfile is valid for Vagrant (the libvirt provider's settings included),
for the default three VMs and for another count."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

VAGRANT_DIR = Path(__file__).resolve().parents[2] / "vagrant"


@pytest.mark.parametrize("nodes", ["3", "5"])
def test_vagrant_validate_passes(nodes, tmp_path):
    if shutil.which("vagrant") is None:
        pytest.skip("vagrant is not installed (scripts/test installs vagrant and "
                    "vagrant-libvirt as root)")
    env = {**os.environ, "NODEAGENT_NODES": nodes, "VAGRANT_HOME": str(tmp_path / "home"),
           "VAGRANT_DOTFILE_PATH": str(tmp_path / "dot"), "VAGRANT_CHECKPOINT_DISABLE": "1"}
    p = subprocess.run(["vagrant", "validate"], cwd=VAGRANT_DIR, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0 and "validated successfully" in p.stdout, p.stdout + p.stderr
