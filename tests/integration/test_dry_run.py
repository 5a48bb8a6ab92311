"""`netlab up --dry-run` shows exactly what `up` builds, for every scenario: the same plan
(nodes, pods with their nodes and addresses, Services with their addresses and endpoints,
add-ons), the same files, the same processes with the same command lines, the same
namespaces and addresses, and the same nftables tables and chains in every node."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from manifests import wait_until

from netlab import names
from netlab.compile import compile_lab
from netlab.intents import Address, Certificate, File, Netns
from netlab.lab import plan_up
from netlab.loader import read_files

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p for p in (ROOT / "scenarios").iterdir()
                   if p.is_dir() or p.suffix == ".yaml")


def _json(netns: str, *argv: str) -> object:
    r = subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True,
                       check=True)
    return json.loads(r.stdout)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_dry_run_is_what_up_builds(scenario: Path, netlab_lab, netlab_lab_name):
    _, desired = plan_up(read_files([scenario]), [scenario], netlab_lab_name)
    lab = netlab_lab(scenario, name=netlab_lab_name)
    cni = desired.plan.cluster.cni
    if cni:  # CNI mode: the plugins give the addresses, which a dry run cannot know
        found = {k: p.ips(lab.plan.cluster.families) for k, p in lab.plan.pods.items()
                 if not p.host_network}
        assert not any(desired.plan.pods[k].ip or desired.plan.pods[k].ip6 for k in found)
        desired = compile_lab(lab.name, read_files([scenario]), cni_addresses=found)
    assert lab.plan.to_json() == desired.plan.to_json()

    root = names.lab_dir(lab.name)
    for path, f in desired.files.items():
        if isinstance(f, File):
            assert (root / path).read_bytes() == f.data, path
        elif isinstance(f, Certificate):
            assert (root / f.cert).exists() and (root / f.key).exists(), path
        else:
            assert (root / f.path).is_dir(), path

    status = lab._agent_status()  # every container the agent runs, also those that ended
    for owner, processes in desired.processes.items():
        recorded = {c["container"]: c for c in status["containers"] if c["owner"] == owner}
        assert set(recorded) == {p.container for p in processes}, owner
        for p in processes:
            r = recorded[p.container]
            if r["state"] != "running":
                continue  # a container command that has finished (or waits to restart)
            try:
                cmdline = Path(f"/proc/{r['pid']}/cmdline").read_bytes().split(b"\0")[:-1]
            except FileNotFoundError:
                continue
            argv = [a.decode() for a in cmdline]
            # the recorded process is the command itself (no wrapper left); nginx rewrites
            # its command line into a title that still contains it
            assert argv == list(p.argv) or " ".join(p.argv) in " ".join(argv), (
                owner, p.container, argv)

    made = {i.name for i in desired.network if isinstance(i, Netns)}
    made |= {i.name for v in desired.pods.values() for i in v if isinstance(i, Netns)}
    assert {p.name for p in names.NETNS_DIR.iterdir()
            if p.name.startswith(names.lab_prefix(lab.name))} == made
    for key, intents in desired.pods.items():
        pod = desired.plan.pods[key]
        want = {i.cidr for i in intents if isinstance(i, Address)}
        have = {f"{a['local']}/{a['prefixlen']}" for link in _json(pod.netns, "ip", "-j",
                                                                    "addr", "show", "eth0")
                for a in link["addr_info"] if _planned(a)}
        if cni:  # the plugins' addresses (and prefixes): the plan has what they gave
            want = set(pod.ips(desired.plan.cluster.families))
            have = {a.split("/")[0] for a in have}
        assert have == want, key

    # Service rules follow readiness after up (a crashing pod leaves its endpoints): compare
    # with the same compile given the readiness the lab's agent has reported since
    def rules_differ() -> list[tuple[str, str]]:
        st = lab._state(fresh=True)
        assert st.plan is not None
        now = compile_lab(lab.name, st.docs, readiness=st.readiness, cni_addresses={
            k: p.ips(st.plan.cluster.families) for k, p in st.plan.pods.items()} if cni
            else None)
        wrong = []
        for node in now.plan.nodes:
            for table in now.rules[node.netns]:
                listed = _json(node.netns, "nft", "-j", "list", "table", table.family,
                               table.name)
                chains = {o["chain"]["name"] for o in listed["nftables"] if "chain" in o}
                if chains != set(table.chains):
                    wrong.append((node.name, table.name))
        return wrong

    assert wait_until(lambda: not rules_differ(), timeout=3), rules_differ()
    for node in desired.plan.nodes:
        lb = {a.address.cidr for a in desired.announced.get(node.netns, [])}
        held = {f"{a['local']}/{a['prefixlen']}" for link in _json(node.netns, "ip", "-j",
                                                                    "addr", "show", "lo")
                for a in link["addr_info"] if _planned(a)} - {"127.0.0.1/8", "::1/128"}
        # IPv6 LoadBalancer addresses sit on eth0, deprecated (never a source address)
        held |= {f"{a['local']}/{a['prefixlen']}" for link in _json(node.netns, "ip", "-j",
                                                                     "addr", "show", "eth0")
                 for a in link["addr_info"] if _planned(a) and a.get("preferred_life_time") == 0}
        assert held == lb, node.name


def _planned(a: dict) -> bool:
    """An address netlab adds: IPv4, or global IPv6 (dual-stack; not the link-local one the
    kernel gives every interface)."""
    return a["family"] == "inet" or (a["family"] == "inet6" and a.get("scope") == "global")
