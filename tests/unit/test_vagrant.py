"""CI cannot boot a VM: it checks the Vagrantfile's syntax, and that the VM is provisioned
by the one set-up script CI itself runs (test.sh -> scripts/setup.sh)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VAGRANTFILE = ROOT / "vagrant" / "Vagrantfile"


@pytest.mark.skipif(shutil.which("ruby") is None, reason="ruby is not installed (scripts/"
                    "setup.sh installs it)")
def test_vagrantfile_syntax():
    r = subprocess.run(["ruby", "-c", str(VAGRANTFILE)], capture_output=True, text=True)
    assert r.returncode == 0 and "Syntax OK" in r.stdout, r.stderr


def test_one_install_path():
    text = VAGRANTFILE.read_text()
    assert 'config.vm.box = "debian/bookworm64"' in text
    assert "bash scripts/setup.sh" in text
    assert "bash scripts/setup.sh" in (ROOT / "test.sh").read_text()
    assert "bash scripts/setup.sh" in (ROOT / "quickstart.sh").read_text()
