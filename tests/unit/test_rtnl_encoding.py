"""rtnl.encode sends pyroute2's bytes: each message of a batch equals, byte for byte, what
pyroute2's own message classes encode for the same intent (rtnl.reference_encode), for every
intent kind netlab sends and for random values (names of every length and alphabet, indices,
MTUs, MACs, addresses, prefix lengths, VXLAN ids and ports, peer namespace fds), whether the
message is the first of its shape (the template is made) or a later one (the template is
patched)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netlab.intents import Address, Fdb, Link, Neighbour, Netns, Peer, Process, Route, Vxlan
from netlab.kernel import rtnl
from netlab.lab import plan_up
from netlab.loader import read_files

ROOT = Path(__file__).resolve().parents[2]
PEER_NETNS = ("netlab.t.pod.a", "netlab.t.pod.bb", "netlab.t.node.node-1")

names = st.text(st.characters(min_codepoint=33, max_codepoint=0x3FF,
                              blacklist_categories=("Cs",)), min_size=1, max_size=15)
index = st.integers(0, 2**31 - 1)
u32 = st.integers(1, 2**32 - 1)
mac = st.binary(min_size=6, max_size=6).flatmap(
    lambda b: st.sampled_from([":".join(f"{x:02x}" for x in b), ":".join(f"{x:02X}" for x in b)]))
ip4 = st.ip_addresses(v=4).map(str)
ip = st.one_of(ip4, ip4, ip4, st.ip_addresses(v=6).map(str))  # IPv6: pyroute2 encodes it
ip6 = st.ip_addresses(v=6).map(str)
cidr4 = st.builds(lambda a, p: f"{a}/{p}", ip4, st.integers(0, 32))
cidr6 = st.builds(lambda a, p: f"{a}/{p}", ip6, st.integers(0, 128))
cidr = st.one_of(cidr4, cidr4, cidr6)
netns = st.sampled_from(["netlab.t.node.node-1", "netlab.t.fabric"])


def _link(kind: str, **extra) -> st.SearchStrategy[Link]:
    return st.builds(Link, netns=netns, name=names, index=index, kind=st.just(kind),
                     mtu=st.one_of(st.none(), u32), master=st.one_of(st.none(), u32),
                     mac=st.one_of(st.none(), mac), up=st.booleans(), hairpin=st.booleans(),
                     **extra)


peers = st.builds(Peer, netns=st.sampled_from(PEER_NETNS), name=names, index=index,
                  mac=st.one_of(st.none(), mac))
vxlans = st.builds(Vxlan, vni=st.integers(0, 2**32 - 1), local=st.one_of(ip4, ip6),
                   port=st.integers(0, 65535), underlay_index=u32, learning=st.booleans())
links = st.one_of(
    _link("bridge"),
    _link("veth", peer=peers),
    _link("vxlan", vxlan=vxlans),
    _link("", peer=st.one_of(st.none(), peers)),  # `link set`: a peer would be ignored
)
addresses = st.builds(Address, netns=netns, dev=names, index=index, cidr=cidr)
routes = st.one_of(
    st.builds(Route, netns=netns, dst=st.one_of(st.just("default"), cidr4), dev=names,
              oif=u32, gateway=st.one_of(st.none(), ip4), onlink=st.booleans()),
    st.builds(Route, netns=netns, dst=st.one_of(st.just("::/0"), cidr6), dev=names,
              oif=u32, gateway=st.one_of(st.none(), ip6), onlink=st.booleans()))
neighbours = st.builds(Neighbour, netns=netns, dev=names, index=index, ip=ip, mac=mac)
fdbs = st.builds(Fdb, netns=netns, dev=names, index=index, mac=mac, dst=ip)
intents = st.lists(st.one_of(links, addresses, routes, neighbours, fdbs), min_size=1,
                   max_size=25)
fds = st.fixed_dictionaries({n: st.integers(0, 2**32 - 1) for n in PEER_NETNS})


def _same(batch, peer_fds) -> None:
    got = rtnl.encode(batch, peer_fds)
    want = rtnl.reference_encode(batch, peer_fds)
    assert [i for _, i in got] == [i for _, i in want]
    for (g, intent), (w, _) in zip(got, want, strict=True):
        assert g.hex() == w.hex(), intent


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(intents, fds)
def test_encoding_is_pyroute2s_with_templates_reused(batch, peer_fds):
    _same(batch, peer_fds)  # templates made by earlier examples are patched here


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(intents, fds)
def test_encoding_is_pyroute2s_from_a_fresh_cache(batch, peer_fds):
    rtnl._templates.clear()
    _same(batch, peer_fds)  # the first message of each shape makes its template
    _same(batch, peer_fds)  # and every one after it is patched from it


def test_every_kind_netlab_sends_is_templated():
    """The shapes `up` sends are all templated (none falls back to pyroute2 per message)."""
    rtnl._templates.clear()
    batch = [
        Link("n", "underlay", 100, "bridge", mtu=1500),
        Link("n", "cni0", 101, "bridge", mtu=1450, mac="8e:0e:4d:cc:dd:e5"),
        Link("n", "veth5f421a62", 1002, "veth", mtu=1450, master=101, hairpin=True,
             peer=Peer("p", "eth0", 100, "0a:58:0a:f4:04:02")),
        Link("n", "n86af0394", 1001, "veth", mtu=1500, master=100,
             peer=Peer("p", "eth0", 100)),
        Link("n", "flannel.1", 102, "vxlan", mtu=1450, mac="9a:76:08:6f:dd:65",
             vxlan=Vxlan(1, "172.18.0.2", 8472, 100)),
        Link("p", "lo", 1, ""),
        Link("p", "eth0", 100, "", mtu=1450),
        Address("p", "eth0", 100, "10.244.4.2/22"),
        Route("p", "default", "eth0", 100, gateway="10.244.4.1"),
        Route("n", "10.244.8.0/22", "flannel.1", 102, gateway="10.244.8.0", onlink=True),
        Route("n", "10.96.0.0/12", "cni0", 101),
        Neighbour("n", "flannel.1", 102, "10.244.4.0", "0a:94:4d:c0:13:10"),
        Fdb("n", "flannel.1", 102, "0a:94:4d:c0:13:10", "172.18.0.3"),
    ]
    _same(batch, {"p": 9})
    assert rtnl._templates and all(t is not None for t in rtnl._templates.values())


@pytest.mark.parametrize("scenario", sorted(p for p in (ROOT / "scenarios").iterdir()
                                            if p.is_dir() or p.suffix == ".yaml"),
                         ids=lambda p: p.name)
def test_scenarios_encode_as_pyroute2_does(scenario: Path):
    """Every netlink intent every scenario's `up` sends."""
    _, desired = plan_up(read_files([scenario]), [scenario], "t")
    batch = [i for i in desired.network + [i for p in desired.pods.values() for i in p]
             if not isinstance(i, Netns | Process)]
    peer_fds = {i.peer.netns: 40 + n for n, i in enumerate(batch)
                if isinstance(i, Link) and i.peer}
    _same(batch, peer_fds)


def test_values_of_another_form_raise_as_pyroute2_does():
    """A MAC that pyroute2's neighbour encoder cannot read fails the same way either path."""
    bad = Neighbour("n", "x", 5, "10.0.0.1", "a:b:c:d:e:f")
    with pytest.raises(Exception) as ref:
        rtnl.reference_encode([bad], {})
    with pytest.raises(type(ref.value)):
        rtnl.encode([bad], {})


def test_ipv6_messages_are_templated_too():
    """A dual-stack lab sends as many IPv6 addresses, routes and neighbours as IPv4 ones:
    they are patched templates, not pyroute2 encodings each (~0.5 ms apiece)."""
    rtnl._templates.clear()
    batch = [Address("netlab.t.pod.a", "eth0", 100, "fd00:10:244:1::5/64"),
             Route("netlab.t.pod.a", "::/0", "eth0", 100, gateway="fd00:10:244:1::1"),
             Route("netlab.t.node.node-1", "fd00:10:244:2::/64", "flannel-v6.1", 5,
                   gateway="fd00:10:244:2::", onlink=True),
             Neighbour("netlab.t.node.node-1", "flannel-v6.1", 5, "fd00:10:244:2::",
                       "0a:58:0a:f4:01:00"),
             Fdb("netlab.t.node.node-1", "flannel-v6.1", 5, "0a:58:0a:f4:01:00",
                 "2001:db8:18::3"),
             Link("netlab.t.node.node-1", "flannel-v6.1", 5, "vxlan", mtu=1430,
                  mac="0a:58:0a:f4:01:00", vxlan=Vxlan(1, "2001:db8:18::2", 8472, 2))]
    _same(batch, {})
    made = {k[0]: t for k, t in rtnl._templates.items()}
    assert all(made[k] is not None for k in ("address", "route", "neighbour", "link")), made


def test_route_destinations_equal_what_ip_route_lists():
    """One dump over a route netlink socket (what `up` polls for BGP's routes) finds the
    main table's destinations, both families, as `ip route` lists them (read-only: this
    namespace's own table)."""
    import json
    import shutil
    import subprocess

    if shutil.which("ip") is None:
        pytest.skip("no ip(8)")
    want = set()
    for family in ("-4", "-6"):
        out = subprocess.run(["ip", "-j", family, "route", "show", "table", "main"],
                             capture_output=True, text=True, check=True).stdout
        for r in json.loads(out or "[]"):
            dst = r["dst"]
            if dst != "default":
                want.add(dst if "/" in dst else f"{dst}/{128 if ':' in dst else 32}")
    sock = rtnl.open_socket()
    try:
        assert rtnl.route_destinations(sock) == want
        assert rtnl.route_destinations(sock) == want  # the socket stays usable
    finally:
        sock.close()
