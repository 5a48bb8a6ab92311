"""NetworkPolicy rendered into nftables, pinned by a golden file (NETLAB_UPDATE_GOLDEN=1
regenerates it), and the properties that matter checked by name."""

from __future__ import annotations

import os
from pathlib import Path

from netlab.compile import plan_lab as full_plan
from netlab.features.netpol import render_node
from netlab.loader import load

HERE = Path(__file__).parent
LAB = HERE.parent / "integration" / "netpol_lab.yaml"


def rendered(node: str = "node-1") -> str:
    m = load([LAB, HERE / "policies_scenario.yaml"])
    plan = full_plan("golden", m, m.cluster)
    return render_node(plan, plan.node(node), m.network_policies.values()).full()


def test_golden():
    text = rendered()
    path = HERE / "golden" / "netpol-node-1.nft"
    if os.environ.get("NETLAB_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_shape():
    text = rendered()
    # x/a is on node-1: it gets an ingress chain (isolated by two policies) and an egress one
    assert "add element ip netlab-policy ingress-pods { 10.244.0.2 : jump ingress-x/a }" in text
    assert "add element ip netlab-policy egress-pods { 10.244.0.2 : jump egress-x/a }" in text
    # y/a is on node-1 but not isolated: no chain, no element
    assert "ingress-y/a" not in text
    # AND of namespace and pod selectors resolved to y/b and y/c only
    assert "ip saddr { 10.244.1.3, 10.244.2.3 } meta l4proto tcp th dport 80 return" in text
    assert "ip saddr 172.18.0.0/24 ip saddr != { 172.18.0.0/28 } meta l4proto udp th dport 81" \
        in text
    # egress: a named port resolves per destination pod, a range stays a range
    assert "meta l4proto tcp th dport 80-81 return" in text
    assert "ip daddr 10.244.0.4 meta l4proto udp th dport 81 return" in text
    # x/a ingress + egress on node-1, each: remembered in @dropped (tcp, udp, sctp), then plain
    assert text.count(" drop comment ") == 2 * 2
    assert text.count("add @dropped { ip saddr . meta l4proto . th sport } drop") == 2
    assert "ct state established,related accept" in text


def test_long_comments_are_cut_uniquely():
    from netlab.nft.table import COMMENT_MAX, comment

    ns, long_a, long_b = "n" * 63, "p" * 200 + "a", "p" * 200 + "b"
    a, b = comment(f"{ns}/{long_a}", " ingress[12]"), comment(f"{ns}/{long_b}", " ingress[12]")
    for c in (a, b):
        text = c.removeprefix('comment "').removesuffix('"')
        assert len(text) == COMMENT_MAX and text.startswith(ns + "/ppp")
        assert text.endswith(" ingress[12]")
    assert a != b
    assert comment("x/short", " egress[0]") == 'comment "x/short egress[0]"'
