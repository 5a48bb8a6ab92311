"""proxyMode in the Cluster: iptables renders kube-proxy's iptables rules instead of its
nftables table (the masquerade table stays), ipvs is refused with the reason, and a running
lab may switch modes (the only Cluster field it may change): the converger loads the new
mode whole and cleans the old one up, as kube-proxy's cleanup does."""

from __future__ import annotations

import pytest

from netlab.compile import compile_lab
from netlab.converge import Converger, converge_docs
from netlab.errors import InputError
from netlab.kernel.fake import FakeKernel
from netlab.loader import build, read_text
from netlab.state import LabState

LAB = "nlmode"


def lab(mode: str, extra: str = "") -> str:
    return (f"apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec: {{nodes: 2, proxyMode: "
            f"{mode}{extra}}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: w, labels: "
            "{app: w}}\nspec: {containers: [{name: c, image: x, ports: [{containerPort: 80}]}]}"
            "\n---\napiVersion: v1\nkind: Service\nmetadata: {name: w}\nspec: {selector: "
            "{app: w}, ports: [{port: 80}]}\n")


def test_modes_load_and_ipvs_is_refused():
    assert build(read_text(lab("iptables"), "t.yaml")).cluster.proxy_mode == "iptables"
    with pytest.raises(InputError, match="'ipvs' is not available: this kernel has no ip_vs"):
        build(read_text(lab("ipvs"), "t.yaml"))
    with pytest.raises(InputError, match=r"spec\.proxyMode"):
        build(read_text(lab("userspace"), "t.yaml"))


def test_iptables_mode_renders_kube_proxys_iptables_rules():
    d = compile_lab(LAB, read_text(lab("iptables"), "t.yaml"))
    node = d.plan.nodes[0].netns
    refs = [t.ref for t in d.rules[node]]
    assert "ip kube-proxy" not in refs and "ip flannel-ipv4" in refs
    (v4,) = d.iptables[node]
    assert v4.family == "IPv4" and "KUBE-SERVICES" in v4.tables["nat"]
    assert "# iptables-restore --noflush --counters in node node-1" in d.text()
    assert compile_lab(LAB, read_text(lab("nftables"), "t.yaml")).iptables == {}


def test_a_running_lab_switches_modes_both_ways():
    fake, st = FakeKernel(LAB), LabState(LAB)
    docs = read_text(lab("nftables"), "t.yaml")
    Converger(fake, st).converge(None, compile_lab(LAB, docs), docs)
    assert fake.iptables == {}
    converge_docs(fake, st, read_text(lab("iptables"), "t.yaml"))
    node = st.plan.nodes[0].netns
    (loaded,) = fake.iptables[(node, "IPv4")]
    assert "-I PREROUTING" in loaded  # a full load, hooks and all
    assert "kube-proxy" not in str(fake.netns[node].nft.tables)  # the nft table is gone
    converge_docs(fake, st, read_text(lab("nftables"), "t.yaml"))
    cleanup = fake.iptables[(node, "IPv4")][-1]
    assert "-X KUBE-SERVICES" in cleanup and "-D PREROUTING" in cleanup
    # any other Cluster change is still refused on a running lab
    with pytest.raises(InputError, match="the Cluster of a running lab cannot change"):
        converge_docs(fake, st, read_text(lab("iptables", ", backend: host-gw"), "t.yaml"))
