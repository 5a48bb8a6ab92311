"""backend bgp: Calico's routing model — a BGP speaker (BIRD 2) in every node announces the
node's pod block(s) and learns the others', so the routes between nodes are BIRD's
(`proto bird`), not written by netlab. No encapsulation: the pod network is routed on the
underlay, as with flannel's host-gw, but by a routing protocol.

Per node (Calico's defaults, calico/node's confd templates):
- AS 64512, router id the node's IPv4 underlay address (IPv6-only: 10.255.x.y from the node's
  number, BIRD's router id being 32 bits);
- its own block(s) as a static blackhole route (Calico installs one for each block it owns,
  so traffic to an unallocated address of the block is dropped, not sent back out), announced
  to the peers and never written to the node's own kernel table (its cni0 route serves it);
- an iBGP full mesh with every other node, per family over that family's underlay (Calico
  peers IPv4 and IPv6 separately); or, with `bgp.routeReflector: NODE`, every node peers with
  that node only and it reflects (rr client);
- learned routes go to the kernel (protocol kernel: export BGP routes, import nothing), with
  `gateway direct` (the peers share the underlay);
- with `bgp.external`, an eBGP session per family with the `external` router (another AS),
  announcing the pod blocks and the LoadBalancer addresses the node announces; `external`
  runs BIRD too and installs what it learns, so outside clients reach pods directly.
Timers are short (keepalive 1 s, hold 3 s, connect and error waits 1 s) so that `up` returns
with every route present and a stopped speaker's routes are withdrawn within seconds.

Pure: the configuration text (golden-tested) and the process that runs it. BIRD runs in the
node's namespace with its control socket in the lab's state (`birdc -s`), supervised by the
lab's agent like any pod's process; it never runs on the host.
"""

from __future__ import annotations

import ipaddress

from netlab import names
from netlab.intents import File, Process, ReadyWhen, Reload
from netlab.plan import NodePlan, Plan

DIR = "bgp"  # per speaker: bgp/<node>/bird.conf, bird.ctl (control socket), bird.pid
COMMAND = "netlab-bird"  # the process's placeholder argv[0], resolved by `resolve`
EXTERNAL = "external"  # the outside router's speaker name (backend bgp with bgp.external)
TIMERS = ("    hold time 3;\n    keepalive time 1;\n    connect retry time 1;\n"
          "    connect delay time 0;\n    error wait time 1, 5;\n")


def speakers(plan: Plan) -> list[str]:
    """The BGP speakers of a lab: every node, and `external` when it peers."""
    if plan.cluster.backend != "bgp":
        return []
    return [n.name for n in plan.nodes] + ([EXTERNAL] if plan.cluster.bgp_external else [])


def directory(speaker: str) -> str:
    return f"{DIR}/{speaker}"


def socket_path(lab_dir: str, speaker: str) -> str:
    return f"{lab_dir}/{directory(speaker)}/bird.ctl"


def _router_id(plan: Plan, node: NodePlan) -> str:
    if node.underlay_ip:
        return node.underlay_ip
    return str(ipaddress.IPv4Address(0x0AFF0000 + node.number))  # 10.255.x.y


def _peer_name(name: str, family: str) -> str:
    """A BIRD protocol name: letters, digits and underscores."""
    return f"{name.replace('-', '_').replace('.', '_')}_v{'6' if family == 'IPv6' else '4'}"


def peers(plan: Plan, node: NodePlan) -> list[tuple[str, str, int, bool]]:
    """The node's BGP sessions: (peer name, peer address, peer AS, route-reflector client),
    per family: the full mesh, or the route reflector's."""
    c = plan.cluster
    out = []
    rr = c.bgp_route_reflector
    for family in c.families:
        for other in plan.nodes:
            if other.name == node.name:
                continue
            if rr and node.name != rr and other.name != rr:
                continue  # clients peer with the reflector only
            out.append((_peer_name(other.name, family), other.address(family), c.bgp_as,
                        bool(rr) and node.name == rr))
        if c.bgp_external:
            out.append((_peer_name(EXTERNAL, family), plan.external(family),
                        c.bgp_external_as, False))
    return out


def render_config(plan: Plan, node: NodePlan, lb_addresses: tuple[str, ...] = ()) -> str:
    """bird.conf of a node. `lb_addresses`: the LoadBalancer addresses the node announces on
    the underlay, announced to the external router (Calico's service IP advertisement)."""
    c = plan.cluster
    lines = [f"# rendered by netlab for node {node.name} of lab {plan.lab} (backend bgp); "
             "do not edit",
             "log stderr all;",
             f"router id {_router_id(plan, node)};",
             "",
             "protocol device {\n  scan time 10;\n}",
             ""]
    for family in c.families:
        v = "6" if family == "IPv6" else "4"
        block = node.pod_cidr6 if v == "6" else node.pod_cidr
        lines += ["# the node's pod block: a blackhole, as Calico installs for the blocks it "
                  "owns (cni0's\n# route, more preferred, serves the pods; an address of the "
                  "block no pod has is dropped)",
                  f"protocol static pods{v} {{\n  ipv{v};\n  route {block} blackhole;\n}}",
                  ""]
        lbs = [a for a in lb_addresses if (":" in a) == (v == "6")]
        if lbs:
            lines += ["# the LoadBalancer addresses this node announces (to the external "
                      "router only)",
                      f"protocol static services{v} {{\n  ipv{v};\n"
                      + "".join(f"  route {a}/{128 if v == '6' else 32} blackhole;\n"
                                for a in lbs) + "}", ""]
        lines += ["# the kernel gets what BGP learned (proto bird) and the block's blackhole, "
                  "at metric 1024\n# (below cni0's connected route); nothing comes from it",
                  f"protocol kernel kernel{v} {{\n  metric 1024;\n  ipv{v} {{\n"
                  "    import none;\n"
                  f"    export where source = RTS_BGP || proto = \"pods{v}\";\n  }};\n}}",
                  ""]
    numbers = {n.address(f): n.number for n in plan.nodes for f in c.families}
    for name, address, asn, rr_client in peers(plan, node):
        v = "6" if ":" in address else "4"
        ebgp = asn != c.bgp_as
        # one side of each iBGP pair connects, the other listens (the lower-numbered node):
        # two BIRDs connecting to each other at once collide, and the loser waits seconds
        passive = not ebgp and node.number < numbers.get(address, 0)
        # iBGP: the node's own block (a reflector also reflects what it learned); eBGP
        # (the external router): the block and the LoadBalancer addresses
        export = ("where source = RTS_STATIC" if ebgp else
                  f"where proto = \"pods{v}\"" + (" || source = RTS_BGP" if rr_client else ""))
        lines.append(
            f"protocol bgp {name} {{\n"
            f"    local as {c.bgp_as};\n"
            f"    neighbor {address} as {asn};\n"
            + ("    direct;\n" if not ebgp else "")  # iBGP: multihop unless told
            + ("    rr client;\n" if rr_client else "")
            + ("    passive on;\n" if passive else "")
            + TIMERS
            + f"    ipv{v} {{\n      import {'none' if ebgp else 'all'};\n"
            f"      export {export};\n"
            + ("      gateway direct;\n" if not ebgp else "")
            + "    };\n}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_external(plan: Plan) -> str:
    """bird.conf of the `external` router: an eBGP session per node and family, importing
    the pod blocks and LoadBalancer addresses into its kernel table."""
    c = plan.cluster
    rid = plan.external_ip or "10.255.255.254"
    lines = [f"# rendered by netlab for the external router of lab {plan.lab}; do not edit",
             "log stderr all;", f"router id {rid};", "",
             "protocol device {\n  scan time 10;\n}", ""]
    for family in c.families:
        v = "6" if family == "IPv6" else "4"
        lines += [f"protocol kernel kernel{v} {{\n  ipv{v} {{\n    import none;\n"
                  "    export where source = RTS_BGP;\n  };\n  merge paths on;\n}", ""]
        for node in plan.nodes:
            lines.append(
                f"protocol bgp {_peer_name(node.name, family)} {{\n"
                f"    local as {c.bgp_external_as};\n"
                f"    neighbor {node.address(family)} as {c.bgp_as};\n"
                + TIMERS
                + f"    ipv{v} {{\n      import all;\n      export none;\n    }};\n}}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def netns(plan: Plan, speaker: str) -> str:
    """The network namespace a speaker's BIRD runs in."""
    if speaker == EXTERNAL:
        return names.host_netns(plan.lab, "external")
    return plan.node(speaker).netns


def _owner(speaker: str) -> str:
    return f"host/{EXTERNAL}" if speaker == EXTERNAL else f"node/{speaker}"


def render_files(plan: Plan, announced: dict[str, tuple[str, ...]]) -> list[File]:
    """Each speaker's bird.conf, checked with `bird -p` and reloaded (SIGHUP: BIRD
    reconfigures, keeping the sessions whose settings did not change). `announced`: node ->
    the LoadBalancer addresses it holds."""
    out = []
    for speaker in speakers(plan):
        d = directory(speaker)
        text = render_external(plan) if speaker == EXTERNAL else \
            render_config(plan, plan.node(speaker), announced.get(speaker, ())
                          if plan.cluster.bgp_external else ())
        out.append(File(f"{d}/bird.conf", text.encode(),
                        Reload(netns(plan, speaker), ("bird", "-p", "-c", "{}"),
                               f"{d}/bird.pid")))
    return out


def render_processes(plan: Plan) -> list[Process]:
    """One BIRD per speaker, in its namespace."""
    return [Process(_owner(s), "bird", netns(plan, s), (COMMAND, s)) for s in speakers(plan)]


def parse_protocols(text: str) -> list[tuple[str, str, str]]:
    """The BGP rows of `birdc show protocols`: (name, state, info), e.g.
    ("node_2_v4", "up", "Established"), ("node_3_v4", "start", "Active Socket: ...")."""
    out = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) >= 5 and parts[1] == "BGP":
            out.append((parts[0], parts[3], parts[5].strip() if len(parts) > 5 else ""))
    return out


def expected_routes(plan: Plan, speaker: str) -> tuple[str, ...]:
    """The prefixes BGP must have put in a speaker's kernel table: every other node's pod
    block(s) (through the reflector too); all of them for the external router (netlab
    writes it no pod routes then: features/underlay.py)."""
    return tuple(n.of("pod_cidr", f) for n in plan.nodes if n.name != speaker
                 for f in plan.cluster.families)


def resolve(plan: Plan, lab_dir: str, p: Process) -> tuple[Process, ReadyWhen]:
    """bird in the foreground (-f) on the speaker's configuration, its control socket and
    pid file in the lab's state; ready once the kernel table holds every route BGP must
    bring (so `up` returns with the routes present).

    Meanwhile every speaker's control socket is connected to now and then (`wake`): BIRD
    before 2.14 (Debian 12 has 2.0.12) decides whether to sleep before it runs the events
    that its work events schedule, so the UPDATEs a session's first route feed schedules can
    wait for the speaker's next timer, up to a keepalive period, in about half of the `up`s
    measured; a connection wakes its loop and they go out (fixed upstream by "IO: Fix race
    condition in event processing", BIRD commit 6a242b3)."""
    speaker = p.argv[1]
    d = f"{lab_dir}/{directory(speaker)}"
    argv = ("bird", "-f", "-c", f"{d}/bird.conf", "-s", f"{d}/bird.ctl",
            "-P", f"{d}/bird.pid")
    return (Process(p.pod, p.container, p.netns, argv, p.env, p.binds, p.workdir),
            ReadyWhen(p.pod, p.container, f"{directory(speaker)}/bird.pid", 0,
                      netns=p.netns, routes=expected_routes(plan, speaker),
                      wake=tuple(f"{directory(s)}/bird.ctl" for s in speakers(plan))))
