"""pytest plugin (registered as `netlab` through the pytest11 entry point).

Fixtures:
  netlab_lab       a factory: `lab = netlab_lab("scenario.yaml")` or
                   `netlab_lab(yaml="...")` brings a lab up and tears it down after the test,
                   whatever happens (failure, error, Ctrl-C).
  netlab_lab_name  a lab name unique to this test, session and xdist worker, for tests that
                   manage a lab themselves (the session sweep still watches it).

Marker:
  @pytest.mark.netlab   skip, with the reason, where labs cannot run (not root, no network
                        namespaces, missing tools); `@pytest.mark.netlab(nft=True)` also needs nft.

At session end a sweep fails the run loudly if anything of a lab made by this session is
left (namespaces, processes, mounts, state), and removes it.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netlab import names

_SESSION = secrets.token_hex(2)  # 4 hex chars, shared by the workers' names of one run
_STASH_KEY = pytest.StashKey[set]()


def requirements_missing(nft: bool = False) -> str | None:
    """Why labs cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "netlab labs need root (network namespaces, veths): run pytest as root"
    if not os.path.exists("/proc/self/ns/net"):
        return "this kernel has no network namespaces (/proc/self/ns/net is missing)"
    for tool in ("nsenter", "unshare", "ping", *(("nft",) if nft else ())):
        if shutil.which(tool) is None:
            return (f"{tool} is not installed: `sudo bash scripts/setup.sh` in a netlab "
                    "checkout installs what labs need")
    return None


def session_prefix() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    digits = re.sub(r"\D", "", worker)
    return f"t{_SESSION}{'w' + digits if worker else ''}-"


def unique_name(nodeid: str, n: int = 0) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", nodeid.split("::")[-1].lower()).strip("-")[:16].strip("-")
    digest = hashlib.sha256(f"{nodeid}/{n}".encode()).hexdigest()[:4]
    return f"{session_prefix()}{slug or 'lab'}-{digest}"[: names.LAB_NAME_MAX].rstrip("-")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "netlab(nft=False): needs root and network namespaces "
                                       "to build netlab labs; skipped with the reason otherwise")
    config.stash[_STASH_KEY] = set()


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("netlab")
    if marker is not None:
        reason = requirements_missing(nft=bool(marker.kwargs.get("nft")))
        if reason:
            pytest.skip(reason)


@pytest.fixture
def netlab_lab_name(request: pytest.FixtureRequest) -> str:
    name = unique_name(request.node.nodeid)
    request.config.stash[_STASH_KEY].add(name)
    return name


@pytest.fixture
def netlab_lab(request: pytest.FixtureRequest) -> Iterator[Callable[..., object]]:
    from netlab.lab import Lab, down

    made: list[str] = []

    def factory(*files: str | Path, yaml: str | None = None, manifests: tuple = (),
                name: str | None = None) -> Lab:
        reason = requirements_missing()
        if reason:
            pytest.skip(reason)
        lab_name = name or unique_name(request.node.nodeid, len(made))
        request.config.stash[_STASH_KEY].add(lab_name)
        made.append(lab_name)
        return Lab.up(*files, manifests=(*manifests, *((yaml,) if yaml else ())), name=lab_name)

    try:
        yield factory
    finally:
        for lab_name in made:
            down(lab_name)


def shared_lab(request: pytest.FixtureRequest, *files: str | Path, yaml: str | None = None,
               label: str = "") -> object:
    """A lab for a module- or session-scoped fixture (one lab, many tests), named like the
    factory's, watched by the sweep, and torn down when the fixture's scope ends:

        @pytest.fixture(scope="module")
        def lab(request):
            return shared_lab(request, "scenario.yaml")
    """
    from netlab.lab import Lab, down

    reason = requirements_missing()
    if reason:
        pytest.skip(reason)
    name = unique_name(f"{request.node.nodeid}::{label}")
    request.config.stash[_STASH_KEY].add(name)
    request.addfinalizer(lambda: down(name))
    return Lab.up(*files, manifests=(yaml,) if yaml else (), name=name)


def leftovers(lab: str) -> list[str]:
    """What remains on this machine of `lab`, described for a person."""
    from netlab.kernel import lab_mounts, lab_netns, lab_pids

    found = [f"network namespace {n}" for n in lab_netns(lab)]
    found += [f"process {pid}" for pid in lab_pids(lab)]
    found += [f"mount {m}" for m in lab_mounts(lab)]
    if names.lab_dir(lab).exists():
        found.append(f"state directory {names.lab_dir(lab)}")
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.geteuid() != 0:
        return
    from netlab.kernel import all_labs, destroy_lab

    ours = set(session.config.stash.get(_STASH_KEY, set()))
    ours |= {lab for lab in all_labs() if lab.startswith(session_prefix())}
    report = {lab: leftovers(lab) for lab in sorted(ours)}
    report = {lab: items for lab, items in report.items() if items}
    if not report:
        return
    lines = ["netlab: test labs were left behind (teardown is broken):"]
    for lab, items in report.items():
        lines += [f"  lab {lab}: {item}" for item in items]
        destroy_lab(lab)
    text = "\n".join(lines)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "netlab leftovers", red=True, bold=True)
        reporter.write_line(text, red=True)
    else:
        print(text)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
