"""The one compile path: manifests, the Cluster and the lab's previous plan in, the desired
lab out. `up`, `apply`, `delete`, `label`, `up --dry-run`, `graph -f`, every read that needs
more than the stored plan, and the golden tests all call it, so what a dry run shows is what
`up` builds.

    docs ──build──▶ Manifests ──add-ons──▶ ──plan──▶ Plan ──render──▶ DesiredLab

Pure: no root, no kernel, no files read or written (paths are computed, not touched).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from netlab import names
from netlab.errors import InputError
from netlab.features import (
    bgp,
    cni,
    dns,
    gateway,
    hostport,
    ingress,
    kubeproxy,
    kubeproxy_iptables,
    loadbalancer,
    netpol,
    overlay,
    pod_files,
    podnet,
    services,
    underlay,
    volumes,
    workloads,
)
from netlab.intents import (
    Announced,
    Certificate,
    CniAttachment,
    Directory,
    File,
    ForgetUdpFlows,
    Intent,
    Link,
    Netns,
    NetworkIntent,
    Probes,
    Process,
    ReadyWhen,
    SandboxSpec,
    Serve,
    Workload,
    render_text,
)
from netlab.jobs import PodOutcome
from netlab.loader import RawDoc, build, describe, object_key
from netlab.model import Cluster, Manifests, NetworkPolicy, Pod
from netlab.nft import Table
from netlab.plan import Plan, PodPlan, desired_pods, make_plan, revision_pods


@dataclass
class DesiredLab:
    """Everything a lab should be, as data: what the converger diffs and the kernel applies."""

    lab: str
    plan: Plan
    manifests: Manifests  # with the add-ons (cluster DNS, ingress controller)
    network: list[NetworkIntent]  # fabric, outside hosts, nodes, overlay: made once, at `up`
    pods: dict[str, list[NetworkIntent]]  # pod key -> its namespace, veth, address, routes
    files: dict[str, File | Directory | Certificate]  # lab-relative path -> what is there
    rules: dict[str, list[Table]]  # node namespace -> its nftables tables
    announced: dict[str, list[Announced]]  # node namespace -> LoadBalancer addresses it holds
    workloads: dict[str, Workload]  # pod key or host/NAME -> what the agent runs for it
    ready: dict[tuple[str, str], ReadyWhen]  # (owner, container) -> when it is ready
    forget_udp: list[ForgetUdpFlows] = field(default_factory=list)  # vs. the previous plan
    warnings: list[str] = field(default_factory=list)
    # CNI mode: pod key -> what its plugins are called with (netlab.features.cni)
    cni: dict[str, CniAttachment] = field(default_factory=dict)
    # proxyMode iptables: node namespace -> kube-proxy's iptables rules, one set per family
    iptables: dict[str, list[kubeproxy_iptables.Ruleset]] = field(default_factory=dict)

    @property
    def processes(self) -> dict[str, list[Process]]:
        """Every process, resolved, by owner (pod key or host/NAME)."""
        return {k: list(w.processes) for k, w in self.workloads.items() if w.processes}

    @property
    def serves(self) -> dict[str, Serve]:
        """The built-in responder's ports, by owner."""
        return {k: w.serve for k, w in self.workloads.items() if w.serve}

    @property
    def policies(self) -> list[NetworkPolicy]:
        return list(self.manifests.network_policies.values())

    def pod_files(self, key: str) -> list[str]:
        pod = self.plan.pods[key]
        d = pod_dir(pod)
        return [p for p in self.files if p.startswith(d + "/")]

    def text(self) -> str:
        """What `up` builds, as `ip`/`nft`-like lines (`netlab up --dry-run`)."""
        intents: list[Intent] = [*self.network]
        for key in sorted(self.pods):
            intents += self.pods[key]
        for owner in sorted(self.workloads):
            intents += self.workloads[owner].processes
        out = [render_text(intents)]
        out += [f"{a.text()}\n" for _, a in sorted(self.cni.items())]
        out += [f"{serve.text()}\n" for _, serve in sorted(self.serves.items())]
        for path in sorted(self.files):
            out.append(f"{self.files[path].text()}\n")
        for node in self.plan.nodes:
            for a in self.announced.get(node.netns, []):
                how = ("unsolicited neighbour advertisement" if ":" in a.address.cidr
                       else "gratuitous ARP")
                out.append(f"[node.{node.name}] addr add {a.address.cidr} dev {a.address.dev}"
                           f" (LoadBalancer; {how} on {a.dev})\n")
            out.append(f"# nft -f - in node {node.name}\n")
            out.append("".join(t.full() for t in self.rules[node.netns]))
            for r in self.iptables.get(node.netns, []):
                tool = "ip6tables-restore" if r.family == "IPv6" else "iptables-restore"
                out.append(f"# {tool} {' '.join(kubeproxy_iptables.RESTORE_FLAGS)} in node "
                           f"{node.name}\n")
                out.append(kubeproxy_iptables.restore_text(r))
        return "".join(out)

    def to_json(self) -> dict[str, Any]:
        """The dry run as data: the plan (pods with node and addresses, Services with their
        addresses and endpoints), the kernel objects, files, processes, rules, warnings."""
        return {
            "lab": self.lab,
            "plan": self.plan.to_json(),
            "network": [i.text() for i in self.network],
            "pods": {k: [i.text() for i in v] for k, v in sorted(self.pods.items())},
            "files": {p: _file_json(f) for p, f in sorted(self.files.items())},
            "processes": {k: [{"container": p.container, "netns": p.netns,
                               "argv": list(p.argv), "env": dict(p.env)} for p in v]
                          for k, v in sorted(self.processes.items())},
            "restartPolicies": {k: w.restart_policy for k, w in sorted(self.workloads.items())
                                if w.processes},
            "responder": {k: list(v.ports) for k, v in sorted(self.serves.items())},
            "rules": {n.name: "".join(t.full() for t in self.rules[n.netns])
                      for n in self.plan.nodes},
            "loadBalancerAddresses": {n.name: [a.address.cidr for a in
                                               self.announced.get(n.netns, [])]
                                      for n in self.plan.nodes},
            "cni": {k: {"node": a.node_netns, "containerID": a.container_id,
                        "ifname": a.ifname, "cniArgs": dict(a.cni_args),
                        "capabilityArgs": json.loads(a.capability_args)}
                    for k, a in sorted(self.cni.items())},
            "warnings": list(self.warnings),
        }


def _file_json(f: File | Directory | Certificate) -> dict[str, Any]:
    if isinstance(f, File):
        try:
            return {"bytes": len(f.data), "text": f.data.decode()}
        except UnicodeDecodeError:
            return {"bytes": len(f.data)}
    if isinstance(f, Certificate):
        return {"selfSigned": list(f.hosts)}
    return {"directory": True}


def pod_dir(pod: PodPlan) -> str:
    """A pod's directory (files, logs), relative to the lab's state directory."""
    return f"pods/{names.fit(f'{pod.namespace}.', pod.name)}"  # as names.pod_dir


# --- manifests ------------------------------------------------------------------------------


def merge_docs(current: list[RawDoc], incoming: list[RawDoc]) -> list[RawDoc]:
    """kubectl apply: objects in `incoming` replace those with the same kind/ns/name."""
    keys = {object_key(d) for d in incoming if d.kind}
    return [d for d in current if not d.kind or object_key(d) not in keys] + incoming


def remove_docs(current: list[RawDoc], doomed: list[RawDoc]) -> tuple[list[RawDoc], list[str]]:
    """kubectl delete -f: the documents that stay, and the objects that were not there."""
    keys = {object_key(d) for d in doomed if d.kind}
    present = {object_key(d) for d in current if d.kind}
    missing = [describe(k) for k in keys - present if k[0] != "Cluster"]
    kept = [d for d in current if not d.kind or object_key(d) not in keys or d.kind == "Cluster"]
    return kept, missing


def add_cluster_addons(m: Manifests, cluster: Cluster) -> None:
    """The cluster DNS add-on, unless the Cluster turns it off or the user brings their own
    kube-system/kube-dns Service; the ingress controller once it serves an Ingress."""
    docs = []
    if cluster.dns and "kube-system/kube-dns" not in m.services:
        docs += dns.addon_docs(cluster, cluster.nodes[0].name)
    if ingress.served(m, cluster):
        docs += ingress.addon_docs(cluster, cluster.nodes[0].name)
    else:  # no controller renders them: say here why the Ingresses are not served
        m.warnings += ingress.class_warnings(m) + ingress.unserved_warnings(m, cluster)
    docs += gateway.addon_docs(cluster, cluster.nodes[0].name, gateway.served(m))
    if not docs:
        return
    addons = build(docs)
    for key, pod in addons.pods.items():
        m.pods.setdefault(key, pod)
    for key, svc in addons.services.items():
        m.services.setdefault(key, svc)
    for name, ns in addons.namespaces.items():
        m.namespaces.setdefault(name, ns)


def effective_cluster(m: Manifests, previous: Plan | None) -> Cluster:
    """The Cluster of a running lab is fixed at `up`; a document that changes it is refused,
    but for kube-proxy's mode (proxyMode), which a running lab may switch: the old mode's
    rules are removed as kube-proxy's cleanup does."""
    if previous is None:
        return m.cluster or Cluster()
    if m.cluster is not None and m.cluster.proxy_mode != previous.cluster.proxy_mode:
        switched = replace(previous.cluster, proxy_mode=m.cluster.proxy_mode)
        if m.cluster == switched:
            return switched
    if m.cluster is not None and m.cluster != previous.cluster:
        raise InputError("the Cluster of a running lab cannot change (nodes, CIDRs, backend "
                         f"and MTU are fixed at `up`): run `netlab down {previous.lab}` and "
                         "`netlab up` again",
                         file=str(m.cluster.source) if m.cluster.source else None, obj="Cluster")
    return previous.cluster


def manifests(docs: Iterable[RawDoc], cluster: Cluster | None = None,
              label_overrides: dict[str, dict[str, str | None]] | None = None,
              built: Manifests | None = None) -> Manifests:
    """The documents loaded, with `netlab label` changes and the add-ons of `cluster` (by
    default the documents' own Cluster, else the built-in default)."""
    m = built or build(docs)
    m.label_overrides = dict(label_overrides or {})
    add_cluster_addons(m, cluster or m.cluster or Cluster())
    return m


# --- the whole path --------------------------------------------------------------------------


def compile_lab(lab: str, docs: Iterable[RawDoc], previous: Plan | None = None,
                label_overrides: dict[str, dict[str, str | None]] | None = None,
                built: Manifests | None = None,
                readiness: dict[str, tuple[bool, str]] | None = None,
                outcomes: dict[str, PodOutcome] | None = None,
                cni_addresses: dict[str, tuple[str, ...]] | None = None) -> DesiredLab:
    """(documents, previous plan) -> the desired lab. With a previous plan, pods that did not
    change keep their node and addresses and Services their addresses (a running lab). In
    CNI mode, new pods have the addresses their ADD returned (`cni_addresses`), none before
    (the converger compiles again once the plugins ran)."""
    docs = list(docs)
    m = built or build(docs)
    cluster = effective_cluster(m, previous)
    m = manifests(docs, cluster, label_overrides, built=m)
    desired = render(plan_lab(lab, m, cluster, previous, readiness, outcomes, cni_addresses),
                     m)
    if previous is not None:
        stale = kubeproxy.stale_udp_endpoints(previous, desired.plan)
        if stale:
            desired.forget_udp = [ForgetUdpFlows(n.netns, tuple(stale))
                                  for n in desired.plan.nodes]
    return desired


def current(plan: Plan, docs: Iterable[RawDoc],
            label_overrides: dict[str, dict[str, str | None]] | None = None) -> DesiredLab:
    """What a running lab holds: its stored plan rendered with the documents it was given
    (no planning: addresses and placements are the stored ones)."""
    return render(plan, manifests(docs, plan.cluster, label_overrides))


def plan_lab(lab: str, m: Manifests, cluster: Cluster, previous: Plan | None = None,
             readiness: dict[str, tuple[bool, str]] | None = None,
             outcomes: dict[str, PodOutcome] | None = None,
             cni_addresses: dict[str, tuple[str, ...]] | None = None) -> Plan:
    """Pods placed and addressed, then Services (addresses, endpoints of ready pods,
    responder ports)."""
    return services.plan_services(m, make_plan(lab, m, cluster, previous, readiness, outcomes,
                                               cni_addresses), previous, readiness)


def render(plan: Plan, m: Manifests) -> DesiredLab:
    """A planned lab -> its desired kernel state (also used on a stored plan: what a running
    lab holds)."""
    lab_dir = str(names.lab_dir(plan.lab))
    network = order(_network(plan))
    pods = {p.key: order(_pod_network(plan, p)) for p in plan.pods.values()}
    files: dict[str, File | Directory | Certificate] = {}
    for pod in plan.pods.values():
        d = pod_dir(pod)
        files[f"{d}/hosts"] = File(f"{d}/hosts", pod_files.hosts(plan.cluster, pod).encode())
        files[f"{d}/resolv.conf"] = File(f"{d}/resolv.conf", dns.resolv_conf(
            plan.cluster, pod, plan.internet(plan.cluster.primary)).encode())
    warnings = list(m.warnings)
    for f in dns.render_files(plan):
        files[f.path] = f
    ingress_files, ingress_warnings = ingress.render_files(plan, m, lab_dir)
    gateway_files, gateway_warnings = gateway.render_files(plan, m, lab_dir)
    warnings += ingress_warnings + gateway_warnings
    for f in (*ingress_files, *gateway_files):
        files[f.cert if isinstance(f, Certificate) else f.path] = f
    policies = list(m.network_policies.values())
    rules = {n.netns: [*kubeproxy.render_tables(plan, n),
                       *netpol.render_tables(plan, n, policies,
                                             m.cluster_network_policies.values()),
                       *([] if plan.cluster.cni else hostport.render_tables(plan, n))]
             for n in plan.nodes}
    iptables = ({n.netns: [kubeproxy_iptables.render_node(plan, n, f)
                           for f in plan.cluster.families] for n in plan.nodes}
                if plan.cluster.proxy_mode == "iptables" else {})
    attached, cni_warnings = cni.attachments(plan)
    warnings += cni_warnings + _cni_port_warnings(plan)
    held = {n.name: loadbalancer.announced(plan, n) for n in plan.nodes}
    announced = {n.netns: [Announced(a, names.NODE_UNDERLAY_IFACE) for a in held[n.name]]
                 for n in plan.nodes}
    for f in bgp.render_files(plan, {node: tuple(a.cidr.split("/")[0] for a in addresses)
                                     for node, addresses in held.items()}):
        files[f.path] = f
    ready: dict[tuple[str, str], ReadyWhen] = {}
    processes: dict[str, list[Process]] = {}
    raw = underlay.render_processes(plan) + bgp.render_processes(plan)
    for pod in plan.pods.values():
        raw += workloads.render_pod(pod)
    # a StatefulSet pod kept on an older revision renders from that revision's template
    models = {p.key: p for p in revision_pods(desired_pods(m, plan.cluster, plan.jobs), m, plan)}
    sandboxes: dict[str, SandboxSpec] = {}
    fields: dict[str, dict[str, str]] = {}  # pod key -> its downward-API values
    for key, pod in plan.pods.items():
        model = models.get(key)
        if model is None or not any(c.argv for c in (*pod.init_containers, *pod.containers)):
            continue
        fields[key] = _downward(plan, model, pod)
        vols, warned = volumes.pod_volumes(model, m, fields[key])
        warnings += warned
        sandboxes[key] = SandboxSpec(pod.hostname, pod_binds(lab_dir, pod), tuple(vols))
    for p in raw:
        resolved, when = resolve(plan, lab_dir, p, models.get(p.pod), m, warnings,
                                 fields.get(p.pod))
        processes.setdefault(p.pod, []).append(resolved)
        if when is not None:
            ready[(p.pod, p.container)] = when
    serves = {"host/internet": underlay.render_serve(plan),
              **kubeproxy.render_health_servers(plan)}  # healthCheckNodePorts, per node
    for pod in plan.pods.values():
        serve = workloads.render_serve(pod)
        if serve is not None:
            serves[pod.key] = serve
    policy = {p.key: p.restart_policy for p in plan.pods.values()}
    backoff = (plan.cluster.backoff_initial, plan.cluster.backoff_max)
    specs = {k: p.spec for k, p in models.items()}
    loads = {}
    for k in sorted(set(processes) | set(serves) | set(plan.pods)):
        pod = plan.pods.get(k)
        spec = specs.get(k)
        probes = tuple(Probes(c.name, c.readiness_probe, c.liveness_probe, c.startup_probe,
                              tuple((cp.name, cp.container_port) for cp in c.ports if cp.name))
                       for c in (spec.long_running if spec else ())
                       if c.readiness_probe or c.liveness_probe or c.startup_probe)
        loads[k] = Workload(k, tuple(processes.get(k, ())), policy.get(k, "Always"),
                            serves.get(k), backoff,
                            tuple(c.name for c in spec.long_running) if spec else (), probes,
                            pod.ip if pod else "", pod.netns if pod else "", sandboxes.get(k),
                            pod.spec_hash if pod else "")
    return DesiredLab(plan.lab, plan, m, network, pods, files, rules, announced, loads,
                      ready, warnings=warnings, cni=attached, iptables=iptables)


def _cni_port_warnings(plan: Plan) -> list[str]:
    """In CNI mode a hostPort is the plugins' business (portMappings): say so when no plugin
    of the list takes it."""
    if not plan.cluster.cni or not any(p.host_ports and not p.host_network
                                       for p in plan.pods.values()):
        return []
    from netlab.cni import parse_conflist

    if any("portMappings" in p.capabilities
           for p in parse_conflist(plan.cluster.cni_config).plugins):
        return []
    return ["hostPort: no plugin of the CNI network declares the portMappings capability "
            "(add portmap to the list), so hostPorts are not exposed"]


def _network(plan: Plan) -> list[NetworkIntent]:
    out: list[Any] = underlay.render_fabric(plan)
    for node in plan.nodes:
        out += underlay.render_node(plan, node)
        if not plan.cluster.cni:  # in CNI mode the plugins make the pod network's bridge
            out += podnet.render_node_bridge(plan, node)
        out += overlay.render_node(plan, node)
    out += underlay.render_hosts(plan)
    return out


def _pod_network(plan: Plan, pod: PodPlan) -> list[NetworkIntent]:
    if pod.host_network:  # the node's namespace, made with the node
        return []
    if plan.cluster.cni:  # the namespace and lo (containerd's loopback); the plugins the rest
        return [Netns(pod.netns, sysctls=underlay.host_sysctls(plan)),
                Link(pod.netns, "lo", 1, "", up=True)]
    return [*podnet.render_pod_netns(pod), *podnet.render_pod_veth(plan, pod),
            *podnet.render_pod_inside(plan, pod)]


def pod_binds(lab_dir: str, pod: PodPlan) -> tuple[tuple[str, str], ...]:
    """The pod's files bound over the host's: /etc/resolv.conf and /etc/hosts."""
    d = f"{lab_dir}/{pod_dir(pod)}"
    return ((f"{d}/resolv.conf", "/etc/resolv.conf"), (f"{d}/hosts", "/etc/hosts"))


def resolve(plan: Plan, lab_dir: str, p: Process, model: Pod | None = None,
            m: Manifests | None = None, warnings: list[str] | None = None,
            fields: dict[str, str] | None = None) -> tuple[Process, ReadyWhen | None]:
    """A process as features render it -> exactly what is started: its environment (with
    env valueFrom and envFrom resolved), its pod's /etc files bound over the host's, its log
    directory, its volume mounts in the pod's sandbox, and netlab placeholders (the DNS
    server, nginx) replaced by their real command lines. netlab's own servers run outside
    sandboxes: they read the lab's state (zone, nginx.conf) from the host."""
    if p.pod.startswith("host/"):
        host = p.pod.split("/", 1)[1]
        workdir, binds, env = f"hosts/{host}", (), {"HOSTNAME": host}
    elif p.pod.startswith("node/"):  # a node's own daemon (backend bgp's BIRD)
        node = p.pod.split("/", 1)[1]
        workdir, binds, env = f"nodes/{node}", (), {"HOSTNAME": node}
    else:
        pod = plan.pods[p.pod]
        workdir, binds = pod_dir(pod), pod_binds(lab_dir, pod)
        env = {"HOSTNAME": pod.hostname}
    env |= {"NETLAB_LAB": plan.lab, "NETLAB_POD": p.pod, **dict(p.env)}
    mounts: tuple = ()
    own = p.argv[:1] not in ((dns.COMMAND,), (ingress.COMMAND,), (gateway.COMMAND,),
                             (bgp.COMMAND,))
    sandboxed = own and model is not None
    if sandboxed and model is not None and m is not None:
        container = next(c for c in (*model.spec.init_containers, *model.spec.containers)
                         if c.name == p.container)
        if fields is None:
            fields = _downward(plan, model, plan.pods[p.pod])
        resolved, warned = volumes.container_env(model, container, m, fields)
        env |= dict(resolved)
        if warnings is not None:
            warnings += warned
        mounts = volumes.container_mounts(model.spec, container)
    p = Process(p.pod, p.container, p.netns, p.argv, tuple(env.items()), binds, workdir,
                sandboxed, mounts, p.init)
    if p.argv[:1] == (dns.COMMAND,):
        return dns.resolve(plan, lab_dir, p)
    if p.argv[:1] == (ingress.COMMAND,):
        return ingress.resolve(lab_dir, p)
    if p.argv[:1] == (gateway.COMMAND,):
        return gateway.resolve(lab_dir, p)
    if p.argv[:1] == (bgp.COMMAND,):
        return bgp.resolve(plan, lab_dir, p)
    return p, None


def _downward(plan: Plan, model: Pod, pod: PodPlan) -> dict[str, str]:
    """The pod's downward-API values (both families' addresses in a dual-stack lab)."""
    node = plan.node(pod.node)
    families = plan.cluster.families
    return volumes.pod_fields(model, pod.ips(families), pod.node,
                              tuple(node.address(f) for f in families))


def order(intents: list[NetworkIntent]) -> list[NetworkIntent]:
    """The order the kernel is asked in: namespaces first; then every other intent after the
    veth that makes the interface it uses (a veth is created from one namespace with its peer
    born in another: the fabric makes every machine's eth0, a node makes its pods' eth0), so
    a namespace's intents come at the depth its interfaces are made, grouped by namespace
    (one netlink batch each). Within that, each feature's order is kept (a bridge before the
    veths it is master of)."""
    depth: dict[str, int] = {}
    made_by = {i.peer.netns: i.netns for i in intents if isinstance(i, Link) and i.peer}

    def level(netns: str, seen: tuple[str, ...] = ()) -> int:
        if netns not in depth:
            parent = made_by.get(netns)
            depth[netns] = 0 if parent is None or parent in seen else \
                level(parent, (*seen, netns)) + 1
        return depth[netns]

    return sorted(intents, key=lambda i: (0, 0, "") if isinstance(i, Netns) else
                  (1, level(i.netns), i.netns))
