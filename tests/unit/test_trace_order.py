"""The order of a walk's hops: capture time, but never an arrival at one end of a wire
before the departure from its other end (two sockets' timestamps can disagree)."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from netlab import trace
from netlab.capture import Captured
from netlab.compile import compile_lab
from netlab.loader import read_text

EXT, NODE = "172.18.0.254", "172.18.0.2"
MARK = 4242
WIRES = {"host/external:eth0": "underlay:external", "underlay:external": "host/external:eth0",
         "node/node-1:eth0": "underlay:node-1", "underlay:node-1": "node/node-1:eth0"}


def frame(pkt) -> Ether:
    return Ether(bytes(Ether(src="0a:58:0a:f4:00:02", dst="0a:58:0a:f4:00:01") / pkt))


def syn() -> Ether:
    return frame(IP(src=EXT, dst=NODE, id=MARK) / TCP(sport=40001, dport=30080, flags="S"))


def syn_ack() -> Ether:
    return frame(IP(src=NODE, dst=EXT, id=7) / TCP(sport=30080, dport=40001, flags="SA"))


def walk_of(cap: list[Captured], wires: dict[str, str] | None = WIRES
            ) -> tuple[list[tuple], trace.TraceResult]:
    r = trace.analyse(trace.TraceResult("external", "node/node-1", NODE, 30080, "tcp", MARK),
                      cap, [], {}, "host/external:eth0", {"node/node-1:eth0"}, wires)
    return [(h.netns, h.iface, h.direction, h.kind) for h in r.hops], r


def test_an_arrival_stamped_before_its_departure_is_put_after_it():
    cap = [Captured("host/external:eth0", 1.000, True, syn()),
           Captured("underlay:external", 1.001, False, syn()),
           Captured("underlay:node-1", 1.002, True, syn()),
           Captured("node/node-1:eth0", 1.003, False, syn()),
           Captured("node/node-1:eth0", 1.004, True, syn_ack()),
           Captured("underlay:node-1", 1.005, False, syn_ack()),
           # the external host's socket stamped the reply's arrival before the switch's
           # socket stamped its departure (the flake this guards against)
           Captured("host/external:eth0", 1.0060, False, syn_ack()),
           Captured("underlay:external", 1.0061, True, syn_ack())]
    hops, r = walk_of(cap)
    assert hops[-2:] == [("underlay", "external", "out", "reply"),
                         ("host/external", "eth0", "in", "reply")]
    assert r.reply and r.delivered
    ms = [h.ms for h in r.hops]
    assert ms == sorted(ms)  # the moved hop takes its departure's time
    # without the wires, time alone decides (and gets it wrong)
    hops, _ = walk_of(cap, None)
    assert hops[-1] == ("underlay", "external", "out", "reply")


def test_in_order_walks_and_repeated_packets_are_left_alone():
    cap = [Captured("host/external:eth0", 1.000, True, syn()),
           Captured("underlay:external", 1.001, False, syn()),
           Captured("host/external:eth0", 1.010, True, syn()),  # a retransmission
           Captured("underlay:external", 1.011, False, syn())]
    hops, _ = walk_of(cap)
    assert [h[:3] for h in hops] == [("host/external", "eth0", "out"),
                                     ("underlay", "external", "in")] * 2


def test_wire_ends_pair_each_veth_both_ways():
    plan = compile_lab("t", read_text(
        "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec: {nodes: 2}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {nodeName: node-2, "
        "containers: [{name: c}]}\n", "t.yaml")).plan
    wires = trace.wire_ends(plan)
    pod = plan.pods["default/a"]
    assert wires["pod/default/a:eth0"] == f"node/node-2:{pod.veth}"
    assert wires[f"node/node-2:{pod.veth}"] == "pod/default/a:eth0"
    assert wires["node/node-1:eth0"] == "underlay:node-1"
    assert wires["underlay:external"] == "host/external:eth0"
