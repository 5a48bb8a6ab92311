"""The sandbox helper's build and request encoding (netlab/kernel/pause_helper.c); what it
makes is proven in tests/integration/test_sandbox.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from netlab import names
from netlab.errors import KernelError
from netlab.kernel import ns
from netlab.kernel import sandbox as sbx


def test_a_request_is_its_field_count_then_each_field_nul_ended():
    assert sbx.encode_request(["/run/netns/a", "", "x"]) == b"3\0/run/netns/a\0\0x\0"
    assert sbx.encode_request([]) == b"0\0"
    with pytest.raises(KernelError, match="NUL"):
        sbx.encode_request(["a\0b"])


def test_the_source_compiles_without_a_warning(tmp_path):
    cc = shutil.which("cc")
    assert cc, "no C compiler: scripts/setup.sh installs gcc"
    done = subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o",
                           str(tmp_path / "helper"), str(sbx.HELPER_SOURCE)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def state_root(tmp_path, monkeypatch):
    monkeypatch.setattr(names, "STATE_ROOT", tmp_path)
    monkeypatch.setattr(ns, "ensure_state_tmpfs", lambda path: None)
    monkeypatch.setattr(sbx, "_built", {})
    return tmp_path


def test_built_once_into_the_state_root_under_the_hash_of_its_source(state_root):
    path = sbx.helper_binary()
    assert path.startswith(f"{state_root}/.pause-helper/")
    assert path.endswith("/netlab-pause-helper") and os.access(path, os.X_OK)
    os.utime(path, (0, 0))
    sbx._built.clear()
    assert sbx.helper_binary() == path and os.stat(path).st_mtime == 0  # not built again
    assert [p.name for p in (state_root / ".pause-helper").iterdir()] == [path.split("/")[-2]]


def test_without_a_compiler_it_says_what_to_install(state_root, monkeypatch):
    monkeypatch.setenv("CC", "netlab-no-such-compiler")
    with pytest.raises(KernelError, match="apt-get install gcc"):
        sbx.helper_binary()


def test_a_source_that_does_not_compile_gives_the_compilers_message(state_root, tmp_path,
                                                                    monkeypatch):
    bad = tmp_path / "pause_helper.c"
    bad.write_text("int main(void) { return undeclared; }\n")
    monkeypatch.setattr(sbx, "HELPER_SOURCE", bad)
    with pytest.raises(KernelError, match=r"(?s)cannot build the sandbox helper.*undeclared"):
        sbx.helper_binary()
    assert not list((state_root / ".pause-helper").rglob("*tmp"))  # no half-built file


def test_threads_asking_at_once_build_it_once(state_root, monkeypatch):
    calls = []

    def build(digest: str) -> str:
        calls.append(digest)
        time.sleep(0.05)  # long enough for the other threads to ask meanwhile
        path = state_root / digest
        path.touch(mode=0o755)
        return str(path)

    monkeypatch.setattr(sbx, "_build", build)
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: sbx.helper_binary(), range(4)))
    assert len(calls) == 1 and len(set(paths)) == 1


def test_a_helper_removed_meanwhile_is_built_again(state_root):
    path = sbx.helper_binary()
    os.unlink(path)
    assert sbx.helper_binary() == path and os.access(path, os.X_OK)
