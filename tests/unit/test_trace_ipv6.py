"""The pure parts of the IPv6 packet walk: crafting, summaries, changes, NDP and the
analysis of captured packets marked by their flow label."""

from __future__ import annotations

from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6PacketTooBig,
    IPerror6,
    IPv6,
    UDPerror,
)
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from netlab import trace
from netlab.capture import Captured

A, C, VIP = "fd00:10:244::2", "fd00:10:244:1::2", "fd00:10:96::1"
N1, N2 = "2001:db8:18::2", "2001:db8:18::3"
LABEL = 0x5A5A5


def eth() -> Ether:  # addresses given: scapy would look the destination up otherwise
    return Ether(src="0a:58:0a:f4:00:02", dst="0a:58:0a:f4:00:01")


def frame(pkt) -> Ether:
    return Ether(bytes(eth() / pkt))


def vxlan(inner) -> Ether:
    return Ether(bytes(eth() / IPv6(src=N1, dst=N2, fl=7) / UDP(sport=40000, dport=8472)
                       / VXLAN(vni=1) / eth() / inner))


def syn(src=A, dst=C, hlim=64, dport=80):
    return IPv6(src=src, dst=dst, fl=LABEL, hlim=hlim) / TCP(sport=40001, dport=dport, flags="S")


def test_craft6_marks_the_flow_label():
    pkt = IPv6(trace.craft6(A, C, 80, "tcp", LABEL))
    assert (pkt.src, pkt.dst, pkt.fl, pkt.hlim, pkt[TCP].dport, str(pkt[TCP].flags)) == (
        A, C, LABEL, 64, 80, "S")
    echo = IPv6(trace.craft6(A, C, None, "icmp", LABEL))
    assert echo.nh == 58 and echo.payload.type == 128 and echo.payload.id == LABEL & 0xFFFF
    assert IPv6(trace.craft6(A, C, 53, "udp", LABEL))[UDP].dport == 53


def test_summaries_bracket_ipv6_addresses_and_show_the_hop_limit():
    assert trace._summary(trace._inner(frame(syn())), None) == \
        f"TCP [{A}]:40001 > [{C}]:80 [S] hlim 64"
    pkt = vxlan(syn(hlim=63))
    ip = trace._inner(pkt)
    assert ip.src == A and ip.fl == LABEL
    assert trace._summary(ip, pkt) == (f"VXLAN {N1} > {N2} UDP 8472 vni 1 "
                                       f"[ TCP [{A}]:40001 > [{C}]:80 [S] hlim 63 ]")
    err = frame(IPv6(src=C, dst=A) / ICMPv6DestUnreach(code=4)
                / IPerror6(src=A, dst=C, fl=LABEL) / UDPerror(sport=1, dport=81))
    assert trace._summary(trace._inner(err), None) == \
        f"ICMPv6 {C} > {A} destination unreachable (port unreachable) hlim 64"
    big = frame(IPv6(src="fd00:10:244::1", dst=A) / ICMPv6PacketTooBig(mtu=1430)
                / IPerror6(src=A, dst=C, fl=LABEL))
    assert trace._summary(trace._inner(big), None).endswith("packet too big (mtu 1430) hlim 64")


def test_changes_dnat_snat_hop_limit_and_encapsulation():
    before, after = syn(dst=VIP), syn(hlim=63)
    assert trace._changes(before, after, None, None) == [
        f"DNAT [{VIP}]:80 -> [{C}]:80", "hop limit 64 -> 63 (routed)"]
    masq = IPv6(src=N1, dst="2001:db8:113::1", fl=LABEL, hlim=63) / TCP(sport=5, dport=80)
    out = IPv6(src=A, dst="2001:db8:113::1", fl=LABEL, hlim=64) / TCP(sport=40001, dport=80)
    assert trace._changes(out, masq, None, None) == [
        f"SNAT [{A}]:40001 -> [{N1}]:5", "hop limit 64 -> 63 (routed)"]
    pkt = vxlan(syn(hlim=63))
    inner = trace._inner(pkt)
    assert trace._changes(syn(hlim=63), inner, None, pkt) == [
        f"encapsulated: VXLAN VNI 1 in UDP 8472, outer {N1} > {N2}"]
    assert trace._changes(inner, syn(hlim=63), pkt, None) == ["decapsulated (VXLAN removed)"]


def test_ndp_messages():
    ns = frame(IPv6(src=A, dst="ff02::1:ff00:1") / ICMPv6ND_NS(tgt="fd00:10:244::1"))
    na = frame(IPv6(src="fd00:10:244::1", dst=A) / ICMPv6ND_NA(tgt="fd00:10:244::1")
               / ICMPv6NDOptDstLLAddr(lladdr="0a:58:0a:f4:00:01"))
    assert trace._ndp(ns)[0] == f"NDP neighbour solicitation: who-has fd00:10:244::1 tell {A}"
    assert trace._ndp(na)[0] == \
        "NDP neighbour advertisement: fd00:10:244::1 is-at 0a:58:0a:f4:00:01"
    assert trace._ndp(frame(syn())) is None


def test_a_reply_reflecting_the_flow_label_is_still_a_reply():
    flows: set[tuple] = set()
    request = syn()
    assert trace._classify6(request, LABEL, flows) == "request"
    flows.add(trace._flow(request))
    back = IPv6(src=C, dst=A, fl=LABEL) / TCP(sport=80, dport=40001, flags="SA")
    assert trace._classify6(back, LABEL, flows) == "reply"
    assert trace._classify6(IPv6(src=C, dst=A, fl=3) / ICMPv6EchoReply(id=LABEL & 0xFFFF),
                            LABEL, flows) == "reply"
    assert trace._classify6(IPv6(src=C, dst=A) / ICMPv6DestUnreach()
                            / IPerror6(src=A, dst=C, fl=LABEL), LABEL, flows) == "icmp-error"
    assert trace._classify6(IPv6(src=C, dst=A) / ICMPv6DestUnreach()
                            / IPerror6(src=A, dst=C, fl=LABEL + 1), LABEL, flows) is None


def captured(label: str, t: float, outgoing: bool, pkt) -> Captured:
    return Captured(label, t, outgoing, pkt)


def result() -> trace.TraceResult:
    return trace.TraceResult("a", "c", C, 80, "tcp", None, flow_label=LABEL)


def test_analyse_a_walk_with_ndp_dnat_and_a_reply():
    ns = frame(IPv6(src=A, dst="ff02::1:ff00:1") / ICMPv6ND_NS(tgt="fd00:10:244::1"))
    na = frame(IPv6(src="fd00:10:244::1", dst=A) / ICMPv6ND_NA(tgt="fd00:10:244::1")
               / ICMPv6NDOptDstLLAddr(lladdr="0a:58:0a:f4:00:01"))
    reply = IPv6(src=VIP, dst=A, fl=99) / TCP(sport=80, dport=40001, flags="SA")
    cap = [captured("pod/default/a:eth0", 1.0, True, ns),
           captured("pod/default/a:eth0", 1.001, False, na),
           captured("pod/default/a:eth0", 1.002, True, frame(syn(dst=VIP))),
           captured("node/node-1:cni0", 1.003, False, frame(syn())),
           captured("node/node-1:eth0", 1.004, True, vxlan(syn(hlim=63))),
           captured("pod/default/c:eth0", 1.005, False, frame(syn(hlim=62))),
           captured("pod/default/a:eth0", 1.006, False, frame(reply))]
    r = result()
    r.address = VIP
    trace.analyse(r, cap, [("nl-n1", "trace id 1 ip6 kube-proxy svc rule meta l4proto tcp "
                            "dnat to [fd00:10:244:1::2]:80 (verdict accept)")],
                  {"nl-n1": "node-1"}, "pod/default/a:eth0", {"pod/default/c:eth0"})
    assert [h.kind for h in r.hops] == ["ndp", "ndp", "request", "request", "request",
                                        "request", "reply"]
    assert r.hops[3].changes == (f"DNAT [{VIP}]:80 -> [{C}]:80",)
    assert r.hops[4].encapsulated and r.hops[4].changes == (
        f"encapsulated: VXLAN VNI 1 in UDP 8472, outer {N1} > {N2}",
        "hop limit 64 -> 63 (routed)")
    assert r.delivered and r.reply and r.verdict == \
        "delivered to pod/default/c, reply came back"
    assert r.kernel_verdicts == ["node-1: ip6 kube-proxy svc rule meta l4proto tcp dnat to "
                                 "[fd00:10:244:1::2]:80 (verdict accept)"]
    doc = r.to_json()
    assert doc["flow_label"] == LABEL and doc["ip_id"] is None


def test_analyse_no_ndp_answer_and_packet_too_big():
    ns = frame(IPv6(src="fe80::1", dst="ff02::1:ff00:5") / ICMPv6ND_NS(tgt=C))
    cap = [captured("pod/default/a:eth0", 1.0, True, frame(syn())),
           captured("node/node-2:flannel-v6.1", 1.001, False, frame(syn(hlim=63))),
           captured("node/node-2:cni0", 1.002, True, ns)]
    r = trace.analyse(result(), cap, [], {}, "pod/default/a:eth0", {"pod/default/c:eth0"})
    assert not r.delivered and r.reason == (
        f"no NDP answer: NDP neighbour solicitation: who-has {C} tell fe80::1")
    assert r.died_at == "node/node-2 flannel-v6.1 (in)"
    big = frame(IPv6(src="fd00:10:244::1", dst=A) / ICMPv6PacketTooBig(mtu=1430)
                / IPerror6(src=A, dst=C, fl=LABEL) / TCP(sport=40001, dport=80))
    cap = [captured("pod/default/a:eth0", 1.0, True, frame(syn())),
           captured("pod/default/a:eth0", 1.001, False, big)]
    r = trace.analyse(result(), cap, [], {}, "pod/default/a:eth0", {"pod/default/c:eth0"})
    assert r.reply and r.reason.startswith("too big for the path: ICMPv6 ") and \
        "packet too big (mtu 1430)" in r.reason


def test_ipv4_json_has_no_flow_label():
    r = trace.TraceResult("a", "c", "10.244.1.2", 80, "tcp", 1234)
    assert "flow_label" not in r.to_json() and r.to_json()["ip_id"] == 1234
