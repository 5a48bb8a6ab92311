"""What a CNI plugin developer checks about a chained plugin of their own, with a real lab
per test: cni-plugin/bin/portblock runs after bridge + host-local + portmap (CNI mode,
cni-plugin/lab.yaml) and drops new TCP connections to port 8080 of every pod. Probes show
the effect, `check` shows it is exactly the plugin's (NetworkPolicy allows everything here),
CNI CHECK notices a rule lost behind the plugin's back, DEL removes what ADD made."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

from netlab.cni import CniPluginError
from netlab.pytest_plugin import leftovers

HERE = Path(__file__).resolve().parent / "cni-plugin"
PLACEHOLDER = "/PATH/TO/examples/cni-plugin/bin"  # lab.yaml's binDir entry for bin/
BLOCKED, OPEN = 8080, 80

pytestmark = [
    pytest.mark.netlab(nft=True),
    pytest.mark.skipif(not all(Path("/usr/lib/cni", p).exists()
                               for p in ("bridge", "host-local", "portmap")),
                       reason="/usr/lib/cni lacks bridge, host-local or portmap: install "
                              "containernetworking-plugins"),
]


def lab_yaml() -> str:
    """lab.yaml with the absolute path of bin/ (binDir must be absolute)."""
    plugin = HERE / "bin" / "portblock"
    assert plugin.is_file() and plugin.stat().st_mode & 0o111, f"{plugin} must be executable"
    text = (HERE / "lab.yaml").read_text()
    assert PLACEHOLDER in text
    return text.replace(PLACEHOLDER, str(plugin.parent))


def pod_manifest(name: str) -> str:
    return f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\n"


class Rule(NamedTuple):
    packets: int
    container_id: str
    handle: str


RULE = re.compile(rf'ip daddr (?P<ip>\S+) tcp dport {BLOCKED} ct state new counter packets '
                  r'(?P<packets>\d+) .*drop comment "cbr0/(?P<id>\w+)/eth0" # handle (?P<h>\d+)')


def portblock_rules(lab, node: str) -> dict[tuple[str, str], Rule]:
    """portblock's rules in the node's namespace: (chain, pod IP) -> Rule."""
    r = lab.exec(f"node/{node}", ["nft", "-a", "list", "ruleset"])
    assert r.ok, r.stderr
    rules, table, chain = {}, "", ""
    for line in r.stdout.splitlines():
        words = line.split()
        if words[:1] == ["table"]:
            table = " ".join(words[1:3])
        elif words[:1] == ["chain"]:
            chain = words[1]
        elif table == "inet cni-portblock" and (m := RULE.search(line)):
            rules[(chain, m["ip"])] = Rule(int(m["packets"]), m["id"], m["h"])
    return rules


def test_blocked_port_is_dropped_on_every_path(netlab_lab):
    lab = netlab_lab(yaml=lab_yaml())
    web1, web2 = lab.pod("web-1").ip, lab.pod("web-2").ip
    paths = [("client", "web-1"),        # same node: bridged (br_netfilter -> forward hook)
             ("client", "web-2"),        # other node: routed through VXLAN
             ("node/node-1", "web-1"),   # from the node itself (output hook)
             ("client", "svc/web")]      # through kube-proxy's DNAT
    results = lab.probe_many([(s, d, port) for s, d in paths for port in (OPEN, BLOCKED)],
                             timeout=0.5)
    for r in results:
        if r.port == OPEN:
            assert r.connected and r.answered_by in ("default/web-1", "default/web-2"), r
        else:  # dropped, not refused: nothing answers, the responder never sees it
            assert r.result == "timeout", (r, "bridged traffic (same node) meets the forward "
                                              "hook only with br_netfilter loaded")
    # the pod itself listens on 8080: its own traffic to it never meets the node
    assert lab.probe("web-1", "web-1", BLOCKED).connected

    # the drops are the plugin's: its per-pod rules counted them, in the nodes' namespaces
    node1, node2 = portblock_rules(lab, "node-1"), portblock_rules(lab, "node-2")
    client = lab.pod("client").ip
    assert set(node1) == {(c, ip) for c in ("forward", "output") for ip in (web1, client)}
    assert set(node2) == {("forward", web2), ("output", web2)}
    assert node1[("output", web1)].packets >= 1  # from node-1
    assert node1[("forward", web1)].packets + node2[("forward", web2)].packets >= 3
    assert node2[("forward", web2)].packets >= 1  # the client's, routed to node-2


def test_check_mismatches_are_exactly_the_blocked_port(netlab_lab):
    lab = netlab_lab(yaml=lab_yaml())
    report = lab.check(timeout=0.5)
    # No NetworkPolicy: the semantics allow every pair on every declared port (80, 8080).
    # The kernel agrees on port 80; on 8080 every pair differs, and portblock says why.
    pods = ["default/client", "default/web-1", "default/web-2"]
    assert {(m.src, m.dst, m.port) for m in report.mismatches} == {
        (s, d, BLOCKED) for s in pods for d in ("default/web-1", "default/web-2") if s != d}
    assert all((m.expected, m.observed, m.result) == ("allowed", "denied", "timeout")
               for m in report.mismatches)
    assert all(p.match and p.answered_by == p.dst for p in report.probes if p.port == OPEN)
    assert len(report.probes) == 8  # 4 ordered pairs into the web pods x 2 ports


def test_check_notices_a_lost_rule_and_del_removes_the_rest(netlab_lab):
    lab = netlab_lab(yaml=lab_yaml())
    web1, client = lab.pod("web-1").ip, lab.pod("client").ip
    attached = lab.cni_check("web-1")  # CNI CHECK: every plugin of the chain is content
    assert attached["plugins"] == ["bridge", "portmap", "portblock"]
    rules = portblock_rules(lab, "node-1")
    assert rules[("output", web1)].container_id == attached["containerID"]

    # a rule of web-1 disappears behind the plugin's back: its CHECK says which
    gone = rules[("output", web1)].handle
    assert lab.exec("node/node-1", ["nft", "delete", "rule", "inet", "cni-portblock",
                                    "output", "handle", gone]).ok
    with pytest.raises(CniPluginError) as e:
        lab.cni_check("web-1")
    assert (e.value.plugin, e.value.command, e.value.code) == ("portblock", "CHECK", 103)
    assert f"missing: output: {web1} tcp dport {{{BLOCKED}}} drop" in e.value.details

    # deleting the pod runs DEL: the rest of web-1's rules go, the client's stay
    lab.delete(manifests=[pod_manifest("web-1")])
    assert set(portblock_rules(lab, "node-1")) == {("forward", client), ("output", client)}
    # DEL of the node's last attachment removes the table with its rules
    lab.delete(manifests=[pod_manifest("client")])
    assert "cni-portblock" not in lab.exec("node/node-1", ["nft", "list", "tables"]).stdout
    assert "cni-portblock" in lab.exec("node/node-2", ["nft", "list", "tables"]).stdout

    # down DELs the rest; nothing of the lab is left, and the host never had the table
    lab.down()
    assert leftovers(lab.name) == []
    host = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                          check=True, timeout=10)
    assert "cni-portblock" not in host.stdout
