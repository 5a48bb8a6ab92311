"""The packet walk: one crafted packet, captured on every interface it crosses.

scapy crafts the packet (a TCP SYN, a UDP datagram or an ICMP echo, with an IP ID chosen
for it) and it is sent from inside SRC through the kernel like any other. Capture points
on every node interface (eth0, cni0, flannel.1, every pod's veth), the underlay switch
ports, the outside hosts and the pods at both ends are open before it leaves. The IP ID
survives routing, NAT and VXLAN, so each capture is the same packet, seen at one hop; the
reply is the reverse of what each hop saw. An nftables trace (`ip id`) on every node names
the rule that dropped or rejected it, if one did.

Over IPv6 (dual-stack labs) the mark is the 20-bit flow label instead: routers, kube-proxy's
DNAT, NAT66 masquerade and flannel-v6.1's VXLAN (the inner header) all leave it alone. The
packet is handed to the kernel by an AF_INET6 raw socket of protocol IPPROTO_RAW (Linux
takes its IPv6 header as given), NDP exchanges take the place of ARP, the hop limit's
decrements are the changes TTL's are, and `ip6 flowlabel` is what the nft trace matches.
"""

from __future__ import annotations

import random
import socket
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from netlab import names, targets
from netlab.capture import Capture, Captured, CapturePoint, interface_label
from netlab.errors import InputError
from netlab.kernel import NftTrace, netns_path
from netlab.kernel.sockets import inside
from netlab.plan import Plan

VXLAN_PORT = 8472


@dataclass(frozen=True)
class Hop:
    index: int
    netns: str  # node/node-1, pod/default/a, host/external, fabric
    iface: str
    direction: str  # out | in
    kind: str  # request | reply | arp | icmp-error
    summary: str
    changes: tuple[str, ...] = ()
    ms: float = 0.0  # since the first hop
    encapsulated: bool = False


@dataclass
class TraceResult:
    src: str
    dst: str
    address: str
    port: int | None
    protocol: str
    ip_id: int | None  # the IPv4 mark (None over IPv6)
    hops: list[Hop] = field(default_factory=list)
    delivered: bool = False
    delivered_to: str | None = None
    reply: bool = False
    verdict: str = ""  # one line for a person
    died_at: str | None = None
    reason: str | None = None
    kernel_verdicts: list[str] = field(default_factory=list)
    pcaps: list[str] = field(default_factory=list)
    seconds: float = 0.0
    flow_label: int | None = None  # the IPv6 mark (only in IPv6 traces)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.flow_label is None:
            del data["flow_label"]
        return data


ICMP6_ERRORS = (1, 2, 3, 4)  # destination unreachable, packet too big, time exceeded, param
ICMP6_ECHO_REPLY = 129


def _v6(ip) -> bool:
    from scapy.layers.inet6 import IPv6

    return isinstance(ip, IPv6)


def _mark(ip) -> int:
    return ip.fl if _v6(ip) else ip.id


def _ttl(ip) -> int:
    return ip.hlim if _v6(ip) else ip.ttl


def _ep(address: str, port: int | None) -> str:
    """address:port ([address]:port for IPv6), or the address alone without a port."""
    if not port:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _outer(encap) -> Any:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6

    return encap[IP] if isinstance(encap.payload, IP) else encap[IPv6]


def _icmp6(ip) -> Any:
    """The ICMPv6 message right after this IPv6 header, or None."""
    l4 = ip.payload
    return l4 if ip.nh == 58 and hasattr(l4, "type") else None


def _icmp6_text(msg) -> str:
    from scapy.layers.inet6 import ICMPv6DestUnreach, ICMPv6PacketTooBig, ICMPv6TimeExceeded

    if msg.type == 128:
        return "echo request"
    if msg.type == ICMP6_ECHO_REPLY:
        return "echo reply"
    if isinstance(msg, ICMPv6DestUnreach):
        return f"destination unreachable ({msg.sprintf('%code%').lower()})"
    if isinstance(msg, ICMPv6PacketTooBig):
        return f"packet too big (mtu {msg.mtu})"
    if isinstance(msg, ICMPv6TimeExceeded):
        return "time exceeded"
    return f"type {msg.type}"


def _inner(pkt) -> Any:
    """The IP (or IPv6) layer of the packet itself (inside VXLAN when encapsulated)."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.vxlan import VXLAN

    if pkt.haslayer(UDP) and pkt[UDP].dport == VXLAN_PORT and not pkt.haslayer(VXLAN):
        # scapy binds VXLAN to 4789 only: decode flannel's port by hand
        pkt[UDP].decode_payload_as(VXLAN)
    if pkt.haslayer(VXLAN):
        pkt = pkt[VXLAN].payload
    if pkt.haslayer(IP):
        return pkt[IP]
    return pkt[IPv6] if pkt.haslayer(IPv6) else None


def _ports(ip) -> tuple[int | None, int | None]:
    l4 = ip.payload
    return getattr(l4, "sport", None), getattr(l4, "dport", None)


def _flow(ip) -> tuple:
    sport, dport = _ports(ip)
    return (ip.src, ip.dst, ip.nh if _v6(ip) else ip.proto, sport, dport)


def _summary(ip, encap) -> str:
    from scapy.layers.inet import ICMP, IP, TCP, UDP

    if _v6(ip):
        return _summary6(ip, encap)
    sport, dport = _ports(ip)
    if ip.haslayer(TCP):
        l4 = f"TCP {ip.src}:{sport} > {ip.dst}:{dport} [{ip[TCP].sprintf('%flags%')}]"
    elif ip.haslayer(UDP):
        l4 = f"UDP {ip.src}:{sport} > {ip.dst}:{dport}"
    elif ip.haslayer(ICMP):
        l4 = f"ICMP {ip.src} > {ip.dst} {ip[ICMP].sprintf('%type%')}"
    else:
        l4 = f"IP {ip.src} > {ip.dst} proto {ip.proto}"
    text = f"{l4} ttl {ip.ttl}"
    if encap is not None:
        outer = encap[IP]
        from scapy.layers.vxlan import VXLAN

        text = (f"VXLAN {outer.src} > {outer.dst} UDP {VXLAN_PORT} vni {encap[VXLAN].vni} "
                f"[ {text} ]")
    return text


def _summary6(ip, encap) -> str:
    from scapy.layers.inet import TCP, UDP
    from scapy.layers.vxlan import VXLAN

    sport, dport = _ports(ip)
    msg = _icmp6(ip)
    if isinstance(ip.payload, TCP):
        l4 = f"TCP {_ep(ip.src, sport)} > {_ep(ip.dst, dport)} [{ip[TCP].sprintf('%flags%')}]"
    elif isinstance(ip.payload, UDP):
        l4 = f"UDP {_ep(ip.src, sport)} > {_ep(ip.dst, dport)}"
    elif msg is not None:
        l4 = f"ICMPv6 {ip.src} > {ip.dst} {_icmp6_text(msg)}"
    else:
        l4 = f"IPv6 {ip.src} > {ip.dst} nh {ip.nh}"
    text = f"{l4} hlim {ip.hlim}"
    if encap is not None:
        outer = _outer(encap)
        text = (f"VXLAN {outer.src} > {outer.dst} UDP {VXLAN_PORT} vni {encap[VXLAN].vni} "
                f"[ {text} ]")
    return text


def _changes(prev, cur, prev_encap, cur_encap) -> list[str]:
    from scapy.layers.vxlan import VXLAN

    if _v6(cur):
        return _changes6(prev, cur, prev_encap, cur_encap)
    from scapy.layers.inet import IP

    out = []
    if prev_encap is None and cur_encap is not None:
        o = cur_encap[IP]
        out.append(f"encapsulated: VXLAN VNI {cur_encap[VXLAN].vni} in UDP {VXLAN_PORT}, "
                   f"outer {o.src} > {o.dst}")
    if prev_encap is not None and cur_encap is None:
        out.append("decapsulated (VXLAN removed)")
    ps, pd = _ports(prev)
    cs, cd = _ports(cur)
    if (prev.dst, pd) != (cur.dst, cd):
        out.append(f"DNAT {prev.dst}{':' + str(pd) if pd else ''} -> "
                   f"{cur.dst}{':' + str(cd) if cd else ''}")
    if (prev.src, ps) != (cur.src, cs):
        out.append(f"SNAT {prev.src}{':' + str(ps) if ps else ''} -> "
                   f"{cur.src}{':' + str(cs) if cs else ''}")
    if prev.ttl != cur.ttl:
        out.append(f"TTL {prev.ttl} -> {cur.ttl} (routed)")
    return out


def _changes6(prev, cur, prev_encap, cur_encap) -> list[str]:
    from scapy.layers.vxlan import VXLAN

    out = []
    if prev_encap is None and cur_encap is not None:
        o = _outer(cur_encap)
        out.append(f"encapsulated: VXLAN VNI {cur_encap[VXLAN].vni} in UDP {VXLAN_PORT}, "
                   f"outer {o.src} > {o.dst}")
    if prev_encap is not None and cur_encap is None:
        out.append("decapsulated (VXLAN removed)")
    ps, pd = _ports(prev)
    cs, cd = _ports(cur)
    if (prev.dst, pd) != (cur.dst, cd):
        out.append(f"DNAT {_ep(prev.dst, pd)} -> {_ep(cur.dst, cd)}")
    if (prev.src, ps) != (cur.src, cs):
        out.append(f"SNAT {_ep(prev.src, ps)} -> {_ep(cur.src, cs)}")
    if prev.hlim != cur.hlim:
        out.append(f"hop limit {prev.hlim} -> {cur.hlim} (routed)")
    return out


def _packet(ip: object, port: int | None, protocol: str, echo: object) -> bytes:
    """`ip` carrying a TCP SYN, a UDP datagram or (any other protocol) the echo request."""
    from scapy.layers.inet import TCP, UDP

    sport = random.randint(33000, 60000)
    if protocol == "tcp":
        pkt = ip / TCP(sport=sport, dport=port, flags="S", seq=random.randint(1, 2**31))
    elif protocol == "udp":
        pkt = ip / UDP(sport=sport, dport=port) / b"netlab-trace\n"
    else:
        pkt = ip / echo
    return bytes(pkt)


def craft(src_ip: str, address: str, port: int | None, protocol: str, ip_id: int) -> bytes:
    from scapy.layers.inet import ICMP, IP

    return _packet(IP(src=src_ip, dst=address, id=ip_id, ttl=64), port, protocol,
                   ICMP(id=ip_id, seq=1) / b"netlab-trace")


def craft6(src_ip: str, address: str, port: int | None, protocol: str, label: int) -> bytes:
    """The IPv6 packet, marked by its flow label (ICMPv6 echo id: the label's low 16 bits)."""
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6

    return _packet(IPv6(src=src_ip, dst=address, fl=label, hlim=64), port, protocol,
                   ICMPv6EchoRequest(id=label & 0xFFFF, seq=1) / b"netlab-trace")


def send(netns: Path, packet: bytes, address: str) -> None:
    """Hand the crafted packet to SRC's kernel (a raw socket, IP header included): it
    routes it, resolves the next hop with ARP (NDP), and sends it out like any other. An
    AF_INET6 raw socket of protocol IPPROTO_RAW takes the IPv6 header as given (Linux sets
    hdrincl for it; IPV6_HDRINCL itself is not an option there)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with inside(netns) as open_socket:
        s = open_socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        s.sendto(packet, (address, 0))
    finally:
        s.close()


def walk(points: list[CapturePoint], trace_netns: list[str], src_netns: Path, src_ip: str,
         address: str, port: int | None, protocol: str, arrival: set[str],
         timeout: float = 1.0) -> tuple[list[Captured], list[tuple[str, str]], int, Capture]:
    """Send one packet and capture it everywhere; returns what was captured, the nft trace
    lines, the mark used (IP ID, or the flow label over IPv6) and the capture (for pcaps)."""
    if ":" in address:
        ip_id = random.randint(1, 0xFFFFF)
        packet = craft6(src_ip, address, port, protocol, ip_id)
        matches, family, bpf = f"ip6 flowlabel {ip_id}", "ip6", "ip6"
    else:
        ip_id = random.randint(1, 0xFFFF)
        packet = craft(src_ip, address, port, protocol, ip_id)
        matches, family, bpf = f"ip id {ip_id}", "ip", "arp or ip"
    with NftTrace({n: matches for n in trace_netns}, family) as trace, \
            Capture(points, bpf=bpf) as cap:
        t0 = time.monotonic()
        send(src_netns, packet, address)
        # wait for the reply to come home, or for the timeout
        while time.monotonic() - t0 < timeout:
            time.sleep(0.02)
            if _reply_home(cap.captured, arrival, ip_id):
                time.sleep(0.05)
                break
    return cap.captured, trace.lines, ip_id, cap


def _is_request(ip, mark: int, flows: set[tuple]) -> bool:
    """The marked packet itself; over IPv6 also not a reply that reflects its flow label."""
    if not _v6(ip):
        return ip.id == mark
    src, dst, proto, sport, dport = _flow(ip)
    return ip.fl == mark and (dst, src, proto, dport, sport) not in flows


def _reply_home(captured: list[Captured], arrival: set[str], ip_id: int) -> bool:
    got_request = False
    flows: set[tuple] = set()
    for c in list(captured):
        ip = _inner(c.packet)
        if ip is None:
            continue
        if _is_request(ip, ip_id, flows):
            got_request = True
            flows.add(_flow(ip))
        elif c.label in arrival and not c.outgoing and got_request:
            src, dst, proto, sport, dport = _flow(ip)
            icmp6 = _icmp6(ip) if _v6(ip) else None
            if (dst, src, proto, dport, sport) in flows or proto == 1 or (
                    icmp6 is not None and icmp6.type in (*ICMP6_ERRORS, ICMP6_ECHO_REPLY)):
                return True
    return False


def _classify6(ip, mark: int, request_flows: set[tuple]) -> str | None:
    """request, icmp-error, reply or None for an IPv6 packet of a walk marked `mark`."""
    from scapy.layers.inet6 import IPerror6

    msg = _icmp6(ip)
    if msg is not None and msg.type in ICMP6_ERRORS:
        return "icmp-error" if ip.haslayer(IPerror6) and ip[IPerror6].fl == mark else None
    if _is_request(ip, mark, request_flows):
        return "request"
    src, dst, proto, sport, dport = _flow(ip)
    if (dst, src, proto, dport, sport) in request_flows or (
            msg is not None and msg.type == ICMP6_ECHO_REPLY and msg.id == mark & 0xFFFF):
        return "reply"
    return None


def _ndp(pkt) -> tuple[str, str, str] | None:
    """(summary, target, source) of a neighbour solicitation or advertisement, else None."""
    from scapy.layers import inet6

    if pkt.haslayer(inet6.ICMPv6ND_NS):
        tgt, src = pkt[inet6.ICMPv6ND_NS].tgt, pkt[inet6.IPv6].src
        return f"NDP neighbour solicitation: who-has {tgt} tell {src}", tgt, src
    if pkt.haslayer(inet6.ICMPv6ND_NA):
        tgt = pkt[inet6.ICMPv6ND_NA].tgt
        option = next((pkt[o] for o in (inet6.ICMPv6NDOptDstLLAddr, inet6.ICMPv6NDOptSrcLLAddr)
                       if pkt.haslayer(o)), None)
        mac = option.lladdr if option is not None else pkt.src
        return f"NDP neighbour advertisement: {tgt} is-at {mac}", tgt, pkt[inet6.IPv6].src
    return None


def analyse(result: TraceResult, captured: list[Captured], trace_lines: list[tuple[str, str]],
            node_of: dict[str, str], src_label: str, dst_labels: set[str],
            wires: dict[str, str] | None = None) -> TraceResult:
    """The walk from what was captured. `wires`: capture label -> the label of the other end
    of its wire (wire_ends), so a packet's arrival is never placed before its departure."""
    from scapy.layers.inet import ICMP, IPerror
    from scapy.layers.l2 import ARP

    v6 = result.flow_label is not None
    ip_id = result.flow_label if v6 else result.ip_id
    request_flows: set[tuple] = set()
    involved_ips: set[str] = {result.address}
    hops: list[Hop] = []
    t_first = None
    prev = prev_encap = None
    for c in captured:
        pkt = c.packet
        netns, _, iface = c.label.rpartition(":")
        direction = "out" if c.outgoing else "in"
        if pkt.haslayer(ARP) or (v6 and _ndp(pkt) is not None):
            continue  # placed below, once the interfaces of the walk are known
        ip = _inner(pkt)
        if ip is None:
            continue
        encap = pkt if ip is not pkt.getlayer(type(ip)) else None
        kind = None
        if v6:
            kind = _classify6(ip, ip_id, request_flows)
            if kind == "request":
                request_flows.add(_flow(ip))
                involved_ips |= {ip.src, ip.dst}
        elif ip.id == ip_id and not ip.haslayer(IPerror):
            kind = "request"
            request_flows.add(_flow(ip))
            involved_ips |= {ip.src, ip.dst}
        elif ip.haslayer(ICMP) and ip.haslayer(IPerror) and ip[IPerror].id == ip_id:
            kind = "icmp-error"
        else:
            src, dst, proto, sport, dport = _flow(ip)
            if (dst, src, proto, dport, sport) in request_flows or (
                    proto == 1 and ip.haslayer(ICMP) and ip[ICMP].type == 0
                    and ip[ICMP].id == ip_id):
                kind = "reply"
        if kind is None:
            continue
        if t_first is None:
            t_first = c.time
        changes: tuple[str, ...] = ()
        if kind == "request":
            if prev is not None:
                changes = tuple(_changes(prev, ip, prev_encap, encap))
            prev, prev_encap = ip, encap
        hops.append(Hop(0, netns, iface, direction, kind, _summary(ip, encap), changes,
                        round((c.time - t_first) * 1000, 3), encap is not None))
    # ARP (NDP) exchanges in the namespaces the walk crossed, about its addresses
    walked = {h.netns for h in hops}
    for c in captured:
        ndp = _ndp(c.packet) if v6 else None
        if ndp is not None:
            netns, _, iface = c.label.rpartition(":")
            what, tgt, sender = ndp
            if netns not in walked or not ({tgt, sender} & involved_ips
                                           or tgt.endswith("::1") or tgt.endswith("::")):
                continue
            t = (c.time - t_first) * 1000 if t_first is not None else 0.0
            hops.append(Hop(0, netns, iface, "out" if c.outgoing else "in", "ndp", what, (),
                            round(t, 3)))
            continue
        if not c.packet.haslayer(ARP):
            continue
        netns, _, iface = c.label.rpartition(":")
        a = c.packet[ARP]
        if netns not in walked or not ({a.psrc, a.pdst} & involved_ips
                                       or a.pdst.endswith((".1", ".0"))):
            continue
        what = (f"ARP who-has {a.pdst} tell {a.psrc}" if a.op == 1 else
                f"ARP {a.psrc} is-at {a.hwsrc}")
        t = (c.time - t_first) * 1000 if t_first is not None else 0.0
        hops.append(Hop(0, netns, iface, "out" if c.outgoing else "in", "arp", what, (),
                        round(t, 3)))
    hops.sort(key=lambda h: h.ms)
    hops = _causal(hops, wires or {})
    start = hops[0].ms if hops else 0.0  # the ARP that precedes the first packet, if any
    result.hops = [Hop(i + 1, h.netns, h.iface, h.direction, h.kind, h.summary, h.changes,
                       round(h.ms - start, 3), h.encapsulated) for i, h in enumerate(hops)]

    requests = [h for h in result.hops if h.kind == "request"]
    arrived = [h for h in requests if f"{h.netns}:{h.iface}" in dst_labels and h.direction == "in"]
    result.delivered = bool(arrived)
    if arrived:
        result.delivered_to = arrived[0].netns
    result.reply = any(h.kind in ("reply", "icmp-error") and f"{h.netns}:{h.iface}" == src_label
                       and h.direction == "in" for h in result.hops)
    # the nftables rules that decided, from the trace
    for netns, line in trace_lines:
        if "(verdict" not in line or " rule " not in line:
            continue
        # (iptables mode: the KUBE- chains the packet jumped through, iptables-nft's rules
        # being nftables rules that the trace sees too)
        if not any(t in line for t in ("drop", "reject", "dnat", "masquerade", "jump ingress-",
                                       "jump egress-", "goto reject-chain", "jump KUBE-",
                                       "goto KUBE-")):
            continue
        entry = f"{node_of.get(netns, netns)}: {line.split(' ', 3)[3]}"
        if entry not in result.kernel_verdicts:
            result.kernel_verdicts.append(entry)
    drops = [v for v in result.kernel_verdicts if "(verdict drop)" in v]
    rejects = [v for v in result.kernel_verdicts if "reject" in v and "(verdict" in v]
    last = requests[-1] if requests else None
    if not result.delivered:
        result.died_at = f"{last.netns} {last.iface} ({last.direction})" if last else "at SRC"
        resolve = "ndp" if v6 else "arp"
        arp_q = [h for h in result.hops if h.kind == resolve and "who-has" in h.summary]
        arp_a = [h for h in result.hops if h.kind == resolve and "is-at" in h.summary]
        too_big = [h for h in result.hops if h.kind == "icmp-error" and "too big" in h.summary]
        if drops:
            rule = drops[-1]
            policy = rule.split('comment "')[1].split('"')[0] if 'comment "' in rule else rule
            result.reason = f"dropped by NetworkPolicy ({policy}): {rule}"
        elif too_big:
            result.reason = f"too big for the path: {too_big[0].summary}"
        elif rejects or any(h.kind == "icmp-error" for h in result.hops):
            result.reason = ("rejected: a Service without endpoints" if any(
                "reject-chain" in v or "without endpoints" in v for v in rejects)
                else f"rejected (ICMP{'v6' if v6 else ''} unreachable came back)")
        elif arp_q and not arp_a:
            result.reason = f"no {resolve.upper()} answer: {arp_q[-1].summary}"
        elif last is None:
            result.reason = "it never left SRC (no route from the source?)"
        else:
            result.reason = (f"not forwarded after {last.netns} {last.iface}: no route to "
                             f"{result.address}, or dropped by the kernel")
    result.verdict = (f"delivered to {result.delivered_to}" if result.delivered else
                      f"died at {result.died_at}: {result.reason}")
    if result.delivered:
        result.verdict += ", reply came back" if result.reply else ", no reply came back"
    return result


def _label(h: Hop) -> str:
    return f"{h.netns}:{h.iface}"


def _causal(hops: list[Hop], wires: dict[str, str]) -> list[Hop]:
    """Hops in time order, but a packet's arrival at one end of a wire after its departure
    from the other end. The two ends are captured by two sockets in two namespaces, and their
    kernel timestamps are not taken at the same point of the path (a departure is stamped
    when the frame is handed to the device, an arrival when the receive path or the reading
    socket gets to it), so two hops microseconds apart can come out swapped. An arrival with
    no unmatched departure before it, and one after it, is moved to just after that one."""
    out = list(hops)
    i = 0
    while i < len(out):
        h = out[i]
        peer = wires.get(_label(h))
        if h.direction == "in" and peer is not None:
            same = (h.kind, h.summary)
            sent = sum(1 for g in out[:i] if g.direction == "out" and _label(g) == peer
                       and (g.kind, g.summary) == same)
            got = sum(1 for g in out[:i] if g.direction == "in" and _label(g) == _label(h)
                      and (g.kind, g.summary) == same)
            if got >= sent:
                j = next((k for k in range(i + 1, len(out)) if out[k].direction == "out"
                          and _label(out[k]) == peer and (out[k].kind, out[k].summary) == same),
                         None)
                if j is not None:
                    out.insert(j + 1, replace(h, ms=max(h.ms, out[j].ms)))
                    del out[i]
                    continue  # a hop moved up into place i: look at it
        i += 1
    return out


def _eth0(owner: str) -> str:
    """The label of a pod's, node's or outside host's eth0 (node/node-1:eth0)."""
    return interface_label(owner, names.POD_IFACE)


def _switch_port(name: str) -> str:
    """The label of a node's or outside host's port on the underlay switch."""
    return interface_label("underlay", name)


def wire_ends(plan: Plan) -> dict[str, str]:
    """The two ends of each veth the walk is captured on, both ways: a node's or outside
    host's eth0 and its port on the underlay switch, a pod's eth0 and its node's veth."""
    pairs = [(_eth0(f"node/{n.name}"), _switch_port(n.name)) for n in plan.nodes]
    pairs += [(_eth0(f"host/{h}"), _switch_port(h)) for h in names.HOSTS]
    pairs += [(_eth0(f"pod/{p.key}"), interface_label(f"node/{p.node}", p.veth))
              for p in plan.pods.values() if not p.host_network and p.veth]
    return {**dict(pairs), **{b: a for a, b in pairs}}


def capture_points(plan: Plan) -> tuple[list[CapturePoint], dict[str, str]]:
    """Every interface of every node (one socket per node), the underlay switch ports,
    the outside hosts, and the eth0 of every pod (a socket each); and the label of the
    interface each address lives on."""
    points: list[CapturePoint] = []
    by_ip: dict[str, str] = {}
    ports = [(n.fabric_port, _switch_port(n.name)) for n in plan.nodes]
    ports += [(names.host_port(h), _switch_port(h)) for h in names.HOSTS]
    points.append(CapturePoint(netns_path(names.fabric_netns(plan.lab)), "*", "underlay",
                               tuple(ports)))
    for n in plan.nodes:
        points.append(CapturePoint(netns_path(n.netns), "*", f"node/{n.name}"))
        for ip in (n.underlay_ip, n.underlay_ip6):
            if ip:
                by_ip[ip] = _eth0(f"node/{n.name}")
    for host in names.HOSTS:
        points.append(CapturePoint(netns_path(names.host_netns(plan.lab, host)), "eth0",
                                   _eth0(f"host/{host}")))
    for ip, host in ((plan.external_ip, "external"), (plan.internet_ip, "internet"),
                     (plan.external_ip6, "external"), (plan.internet_ip6, "internet")):
        if ip:
            by_ip[ip] = _eth0(f"host/{host}")
    for p in plan.pods.values():
        if p.host_network:  # its node's interfaces, captured as the node's
            continue
        points.append(CapturePoint(netns_path(p.netns), names.POD_IFACE,
                                   _eth0(f"pod/{p.key}")))
        for ip in (p.ip, p.ip6):
            if ip:
                by_ip[ip] = _eth0(f"pod/{p.key}")
    return points, by_ip


def source(plan: Plan, t: targets.Target, family: str = "IPv4") -> tuple[str, str]:
    """(address the packet leaves from, label of the interface it leaves by), in `family`."""
    if t.kind == "host":  # the internet host sends from its underlay side
        ip = plan.external(family) if t.name == "external" else plan.gateway(family)
        label = _eth0(f"host/{t.name}")
    elif t.kind == "node":
        node = targets.node(plan, t.name)
        ip, label = node.address(family), _eth0(f"node/{node.name}")
    else:
        pod = targets.pod(plan, t.name)
        ip, label = pod.address(family), _eth0(f"pod/{pod.key}")
    if not ip:
        raise InputError(f"{t.text} has no {family} address: lab {plan.lab} has only "
                         f"{' and '.join(plan.cluster.families)}")
    return ip, label


def destinations(plan: Plan, address: str, port: int, by_ip: dict[str, str]) -> set[str]:
    """Where the packet counts as delivered: the pod or host it is for, or any endpoint
    of the Service it is for (ClusterIP, LoadBalancer address or NodePort), in the
    address's family."""
    family = "IPv6" if ":" in address else "IPv4"
    for svc in plan.services.values():
        vips = (svc.cluster_ip6, svc.lb_ip6) if family == "IPv6" else (svc.cluster_ip,
                                                                        svc.lb_ip)
        nodes = {n.address(family) for n in plan.nodes}
        for p in svc.ports:
            if ((address in vips and p.port == port)
                    or (p.node_port == port and address in nodes)):
                return {by_ip[ep.ip] for ep in p.family_endpoints(family) if ep.ip in by_ip}
    return {by_ip[address]} if address in by_ip else set()


def run(plan: Plan, src: str, dst: str, src_netns: Path, address: str, port: int,
        protocol: str, timeout: float = 1.0, pcap_dir: str | Path | None = None
        ) -> TraceResult:
    """The walk of one packet from `src` to `address` (`dst` as the user wrote it), over
    IPv6 when `address` is an IPv6 one."""
    t0 = time.monotonic()
    v6 = ":" in address
    src_ip, src_label = source(plan, targets.parse(src, plan), "IPv6" if v6 else "IPv4")
    points, labels = capture_points(plan)
    dst_labels = destinations(plan, address, port, labels)
    l4_port = port if protocol != "icmp" else None
    captured, lines, ip_id, cap = walk(points, [n.netns for n in plan.nodes], src_netns,
                                       src_ip, address, l4_port, protocol, {src_label},
                                       timeout)
    result = (TraceResult(src, dst, address, l4_port, protocol, None, flow_label=ip_id) if v6
              else TraceResult(src, dst, address, l4_port, protocol, ip_id))
    analyse(result, captured, lines, {n.netns: n.name for n in plan.nodes}, src_label,
            dst_labels, wire_ends(plan))
    if pcap_dir is not None:
        walked = {f"{h.netns}:{h.iface}" for h in result.hops}
        result.pcaps = [str(p) for p in cap.write_pcaps(Path(pcap_dir),
                                                        lambda c: c.label in walked)]
    result.seconds = round(time.monotonic() - t0, 3)
    return result
