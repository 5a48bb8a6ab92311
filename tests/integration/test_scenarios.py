"""Every scenario's expectations pass with real traffic (`netlab test`, as a CI job runs
it); the course's broken exercise fails with its hint; the JUnit report has the shape CI
systems read."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p for p in (ROOT / "scenarios").iterdir()
                   if (p.is_dir() or p.suffix == ".yaml") and p.name != "exercise-broken")


def netlab_test(path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netlab", "test", str(path), *extra],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_scenario_expectations_pass(scenario: Path):
    r = netlab_test(scenario)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 failed" in r.stdout


def test_every_scenario_folder_teaches_something():
    for p in SCENARIOS:
        if p.is_dir():
            assert (p / "README.md").exists(), f"{p.name} has no README.md"


def test_broken_exercise_fails_with_its_hint(tmp_path: Path):
    report = tmp_path / "report.xml"
    r = netlab_test(ROOT / "scenarios" / "exercise-broken", "--junit", str(report))
    assert r.returncode == 1
    assert ("Service default/pod-x-service has no endpoints: no pod in namespace default has "
            "labels app=pod-x") in " ".join(r.stdout.split())
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert len(cases) == 2 and all(c.get("name") and c.get("classname") for c in cases)
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == 1 and "pod-x-service" in failed[0].find("failure").get("message")
    assert all(c.find("system-out") is not None for c in cases)


SERVICE_SCENARIOS = [ROOT / "scenarios" / n for n in (
    "services.yaml", "clusterip-service", "nodeport", "loadbalancer", "two-tier",
    "dns-headless-externalname", "selectorless-external-db")]


@pytest.mark.parametrize("scenario", SERVICE_SCENARIOS, ids=lambda p: p.name)
def test_service_scenarios_pass_in_iptables_mode(scenario: Path, netlab_lab):
    """The same Expectations hold with kube-proxy in its iptables mode: the scenario's
    documents as written, its Cluster switched to `proxyMode: iptables`."""
    import copy

    from netlab.loader import read_files

    docs = []
    for d in read_files([scenario]):
        doc = copy.deepcopy(d.doc)
        if d.kind == "Cluster":
            doc.setdefault("spec", {})["proxyMode"] = "iptables"
        docs.append(doc)
    if not any(d.get("kind") == "Cluster" for d in docs):
        docs.append({"apiVersion": "netlab.dev/v1alpha1", "kind": "Cluster",
                     "spec": {"proxyMode": "iptables"}})
    lab = netlab_lab(manifests=docs)
    assert lab.plan.cluster.proxy_mode == "iptables"
    lab.settle(timeout=20)
    outcomes = lab.test()
    assert outcomes, "the scenario has no Expectations"
    failed = [o for o in outcomes if not o.passed]
    assert not failed, [(o.title, o.evidence, o.hint) for o in failed]
