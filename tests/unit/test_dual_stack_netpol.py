"""NetworkPolicy in both families: the `ip6 netlab-policy` table of a dual-stack lab (the
same chains over the pods' IPv6 addresses, ipBlocks of their own family only, neighbour
discovery and replies never dropped), the engine deciding per family, and ipBlock
validation of IPv6 CIDRs as the API server does it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from netlab.compile import plan_lab as full_plan
from netlab.errors import InputError
from netlab.features.netpol import render_node, render_tables
from netlab.loader import build, read_text
from netlab.policy.engine import engine_for

CLUSTER = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec: {{nodes: 2, dns: false, podCIDR: "{cidr}"}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: x, labels: {{ns: x}}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: y, labels: {{ns: y}}}}
"""
DUAL = "10.244.0.0/16,fd00:10:244::/56"


def pod(ns: str, name: str, node: str) -> str:
    return f"""---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}, labels: {{pod: {name}}}}}
spec:
  nodeName: {node}
  containers: [{{name: c, ports: [{{name: http, containerPort: 80}}]}}]
"""


PODS = pod("x", "a", "node-1") + pod("x", "b", "node-2") + pod("y", "c", "node-1")

DENY = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""
FROM_Y = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{port: 80}]}]
"""
BLOCKS = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: blocks, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - ipBlock: {cidr: 172.18.0.0/24, except: [172.18.0.0/28]}
    - ipBlock: {cidr: "2001:db8:18::/64", except: ["2001:db8:18::/120"]}
"""
V4_ONLY = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: v4-only, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}}]}]
"""


def lab(policies: str, cidr: str = DUAL):
    m = build(read_text(CLUSTER.format(cidr=cidr) + PODS + policies, "t.yaml"))
    return m, full_plan("dnp", m, m.cluster)


def tables(policies: str, node: str = "node-1", cidr: str = DUAL) -> list[str]:
    m, plan = lab(policies, cidr)
    return [t.full() for t in render_tables(plan, plan.node(node), m.network_policies.values())]


# --- enforcement: the rendered tables ------------------------------------------------------


def test_single_stack_renders_one_table_unchanged():
    m, plan = lab(DENY + FROM_Y, "10.244.0.0/16")
    (only,) = render_tables(plan, plan.node("node-1"), m.network_policies.values())
    assert only.full() == render_node(plan, plan.node("node-1"),
                                      m.network_policies.values()).full()
    assert "ip6" not in only.full() and "icmpv6" not in only.full()


def test_dual_stack_ipv4_table_is_the_single_stack_one():
    """The IPv4 table of a dual-stack lab is what the same lab renders in IPv4 alone."""
    v4, _ = tables(DENY + FROM_Y + BLOCKS)
    (single,) = tables(DENY + FROM_Y + BLOCKS, cidr="10.244.0.0/16")
    assert v4 == single
    assert "2001:db8" not in v4  # the IPv6 block is not in the IPv4 table


def test_default_deny_in_ipv6_with_ndp_and_replies_first():
    _, v6 = tables(DENY)
    assert "add table ip6 netlab-policy" in v6
    assert "add map ip6 netlab-policy ingress-pods { type ipv6_addr : verdict ; }" in v6
    ndp = ("icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, "
           "nd-neighbor-advert } accept")
    for chain in ("forward", "input"):
        rules = [line.split(f"netlab-policy {chain} ", 1)[1] for line in v6.splitlines()
                 if line.startswith(f"add rule ip6 netlab-policy {chain} ")]
        # replies (ICMPv6 errors are related) and neighbour discovery before any pod's chain
        assert rules[:3] == ["ct state established,related accept", ndp,
                             "ip6 saddr vmap @egress-pods"], rules
    assert ("add rule ip6 netlab-policy forward ip6 daddr vmap @ingress-pods" in v6)
    # x/a on node-1 is isolated by its IPv6 address; y/c is not isolated
    assert "add element ip6 netlab-policy ingress-pods { fd00:10:244::2 : jump ingress-x/a }" \
        in v6
    assert "add rule ip6 netlab-policy ingress-x/a drop comment" in v6
    assert "ingress-y/c" not in v6


def test_allow_from_namespace_expands_to_ipv6_pod_addresses():
    v4, v6 = tables(DENY + FROM_Y)
    _, plan = lab(DENY + FROM_Y)
    c = plan.pods["y/c"]
    assert f"ip saddr {{ {c.ip} }} meta l4proto tcp th dport 80 return" in v4
    assert (f"add rule ip6 netlab-policy ingress-x/a ip6 saddr {{ {c.ip6} }} meta l4proto tcp "
            'th dport 80 return comment "x/from-y ingress[0]"') in v6


def test_ipblocks_go_to_their_own_family_with_except():
    v4, v6 = tables(BLOCKS)
    assert "ip saddr 172.18.0.0/24 ip saddr != { 172.18.0.0/28 } return" in v4
    assert "2001:db8" not in v4
    assert ("ip6 saddr 2001:db8:18::/64 ip6 saddr != { 2001:db8:18::/120 } return "
            'comment "x/blocks ingress[0]"') in v6
    assert "172.18" not in v6


def test_ipv4_only_rule_allows_no_ipv6_but_isolates():
    _, v6 = tables(V4_ONLY)
    chain = [line for line in v6.splitlines() if "netlab-policy ingress-x/a " in line]
    # no rule returns: only the drop (remembered in @dropped for probes, then plain)
    assert len(chain) == 2 and all(line.endswith(
        'drop comment "x/a: isolated for ingress, no rule allows"') for line in chain), chain
    assert "add @dropped { ip6 saddr . meta l4proto . th sport }" in chain[0]


def test_egress_named_port_per_ipv6_destination():
    policy = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {}}], ports: [{port: http}]}]
"""
    _, v6 = tables(policy)
    _, plan = lab(policy)
    a, b = plan.pods["x/a"], plan.pods["x/b"]
    assert f"add element ip6 netlab-policy egress-pods {{ {a.ip6} : jump egress-x/a }}" in v6
    assert (f"ip6 daddr {{ {a.ip6}, {b.ip6} }} ip6 daddr {b.ip6} meta l4proto tcp "
            "th dport 80 return") in v6


@pytest.mark.skipif(shutil.which("nft") is None or shutil.which("unshare") is None,
                    reason="needs nft and unshare")
def test_ipv6_table_is_valid_nft(tmp_path):
    """nft itself accepts the IPv6 table (checked with -c in a fresh network namespace)."""
    _, v6 = tables(DENY + FROM_Y + BLOCKS)
    f = tmp_path / "t.nft"
    f.write_text(v6)
    r = subprocess.run(["unshare", "-n", "nft", "-c", "-f", str(f)], capture_output=True,
                       text=True)
    if r.returncode and "Operation not permitted" in r.stderr:
        pytest.skip("no permission for a network namespace")
    assert r.returncode == 0, r.stderr


# --- the engine, per family ------------------------------------------------------------------


def test_engine_same_answer_in_both_families_for_selectors():
    m, plan = lab(DENY + FROM_Y)
    e = engine_for(plan, m.network_policies.values())
    a, b, c = (e.pods[k] for k in ("x/a", "x/b", "y/c"))
    for fam in ("IPv4", "IPv6"):
        assert e.decide(c, a, 80, "TCP", fam).allowed, fam
        assert not e.decide(c, a, 81, "TCP", fam).allowed, fam
        assert not e.decide(b, a, 80, "TCP", fam).allowed, fam
        assert e.decide(c, a, 80, "TCP", fam).family == fam
    # an address names its pod and its family
    d = e.decide(c.ip6, a.ip6, 80, "TCP")
    assert d.allowed and d.family == "IPv6"
    assert not e.decide(b.ip6, a.ip6, 80, "TCP").allowed


def test_engine_ipblock_decides_per_family():
    m, plan = lab(BLOCKS + V4_ONLY.replace("10.0.0.0/8", "10.244.0.0/16"))
    e = engine_for(plan, m.network_policies.values())
    a, b = e.pods["x/a"], e.pods["x/b"]
    # b is inside the IPv4 block 10.244.0.0/16 but its IPv6 address is in no block
    assert e.decide(b, a, 80, "TCP", "IPv4").allowed
    assert not e.decide(b, a, 80, "TCP", "IPv6").allowed
    # the external host: IPv4 in 172.18.0.0/24 minus /28, IPv6 in 2001:db8:18::/64 minus /120
    assert e.decide("172.18.0.254", a, 80, "TCP").allowed
    assert not e.decide("172.18.0.5", a, 80, "TCP").allowed
    assert e.decide("2001:db8:18::fe", a, 80, "TCP").family == "IPv6"
    assert not e.decide("2001:db8:18::fe", a, 80, "TCP").allowed  # inside the except /120
    assert e.decide("2001:db8:18::1:fe", a, 80, "TCP").allowed
    assert not e.decide("2001:db8:19::1", a, 80, "TCP").allowed


def test_engine_node_ipv6_addresses_reach_their_pods():
    m, plan = lab(DENY)
    e = engine_for(plan, m.network_policies.values())
    node = plan.node("node-1")
    d = e.decide(node.gateway6, e.pods["x/a"], 80, "TCP")
    assert d.allowed and "own node" in d.reason
    assert not e.decide(plan.node("node-2").underlay_ip6, e.pods["x/a"], 80, "TCP").allowed


# --- the loader ----------------------------------------------------------------------------


def block(cidr: str, *excepts: str) -> str:
    ex = f", except: [{', '.join(repr(e) for e in excepts)}]" if excepts else ""
    return f"""---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: b, namespace: x}}
spec:
  podSelector: {{}}
  ingress: [{{from: [{{ipBlock: {{cidr: {cidr!r}{ex}}}}}]}}]
"""


def load_block(cidr: str, *excepts: str):
    return build(read_text(CLUSTER.format(cidr=DUAL) + block(cidr, *excepts), "t.yaml"))


def test_loader_accepts_ipv6_cidr_and_except():
    m = load_block("2001:db8::/64", "2001:db8::/80", "2001:db8:0:0:1::/80")
    (peer,) = m.network_policies["x/b"].ingress[0].peers
    assert peer.ip_block.cidr == "2001:db8::/64"
    assert peer.ip_block.except_ == ("2001:db8::/80", "2001:db8:0:0:1::/80")


@pytest.mark.parametrize("cidr,excepts", [
    ("2001:db8::/64", ("2001:db8::/64",)),  # equal: not a strict subset
    ("2001:db8::/64", ("2001:db9::/80",)),  # outside
    ("2001:db8::/64", ("10.0.0.0/8",)),  # another family
    ("10.0.0.0/8", ("2001:db8::/80",)),
])
def test_loader_except_must_be_a_strict_subset(cidr, excepts):
    with pytest.raises(InputError, match="must be a strict subset of `cidr`") as e:
        load_block(cidr, *excepts)
    assert "except[0]" in str(e.value)


def test_loader_refuses_invalid_ipv6():
    with pytest.raises(InputError, match="is not a valid IPv6 CIDR"):
        load_block("2001:db8::g/64")
    with pytest.raises(InputError, match="is not a valid IPv4 CIDR"):
        load_block("10.0.0.300/8")


def test_loader_ipv4_mapped_is_ipv4_with_the_api_servers_warning():
    m = load_block("::ffff:10.0.0.0/104")
    (peer,) = m.network_policies["x/b"].ingress[0].peers
    assert peer.ip_block.cidr == "10.0.0.0/8"
    assert any('spec.ingress[0].from[0].ipBlock.cidr: non-standard CIDR value '
               '"::ffff:10.0.0.0/104" will be considered invalid in a future Kubernetes '
               'release: use "10.0.0.0/8"' in w for w in m.warnings), m.warnings
