"""Gateway API in a lab: netlab's controller (netlab.gateway.controller) and one nginx data
plane per Gateway it serves.

Each served Gateway gets an add-on pod in namespace netlab-gateway (as Envoy Gateway runs
its proxies in envoy-gateway-system) behind a LoadBalancer Service with
externalTrafficPolicy Local, so the client's address reaches nginx; the Service's ports are
the Gateway's HTTP and HTTPS listener ports and its addresses are the Gateway's
status.addresses. The pod's nginx.conf is rendered purely from the objects
(netlab.gateway.nginx), checked with `nginx -t` and reloaded gracefully on change, as the
Ingress controller's (features/ingress.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from netlab.gateway import nginx
from netlab.gateway.api import Gateway
from netlab.gateway.controller import (
    CONTROLLER_NAME,
    SUPPORTED_PROTOCOLS,
    Reconciled,
    builtin_class,
    reconcile,
)
from netlab.intents import Certificate, Directory, File, Process, ReadyWhen, Reload
from netlab.loader import RawDoc
from netlab.model import Cluster, Manifests
from netlab.plan import Plan

NAMESPACE = "netlab-gateway"
COMMAND = "netlab-gateway"  # the data plane container's placeholder command
DIR = "gateway"  # the data planes' files, one directory per pod, in the lab's state
LABEL = "gateway.networking.k8s.io/gateway-name"  # as Envoy Gateway and Istio label theirs
OWNER = "netlab.dev/gateway"  # "ns.name" of the Gateway a data plane pod serves


def served(m: Manifests) -> list[Gateway]:
    """The Gateways netlab's controller serves: their class (the built-in `netlab`, or a
    GatewayClass of that or any name) names netlab's controllerName. The controller says
    why the others are not served."""
    classes = {c.key: c for c in m.gateway_classes.values()}
    classes.setdefault(builtin_class().key, builtin_class())
    return sorted((g for g in m.gateways.values()
                   if (c := classes.get(g.class_name)) is not None
                   and c.controller_name == CONTROLLER_NAME), key=lambda g: g.key)


def pod_name(gw: Gateway) -> str:
    """The data plane's pod (and Service) name: NAMESPACE-NAME, shortened with a hash when
    it would not be a valid DNS label (63 characters)."""
    name = f"{gw.meta.namespace}-{gw.meta.name}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-')}-{digest}"


def ports(gw: Gateway) -> list[tuple[int, str]]:
    """(port, protocol) of the Gateway's listeners netlab serves, one per port (the first
    listener's protocol on a port; the controller reports protocol conflicts)."""
    out: dict[int, str] = {}
    for li in gw.listeners:
        if li.protocol in SUPPORTED_PROTOCOLS:
            out.setdefault(li.port, li.protocol)
    return sorted(out.items())


def addon_docs(cluster: Cluster, node: str, gateways: list[Gateway]) -> list[RawDoc]:
    src = "<netlab add-on: gateway>"
    docs = [RawDoc({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
                   src)] if gateways else []
    for gw in gateways:
        listening = ports(gw)
        if not listening:  # nothing to serve: the controller says why (no address)
            continue
        name = pod_name(gw)
        labels = {"app.kubernetes.io/name": "netlab-gateway", LABEL: gw.meta.name[:63],
                  OWNER: name}
        docs.append(RawDoc(
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels,
                          "annotations": {"netlab.dev/responder": "off",
                                          "netlab.dev/gateway": gw.key}},
             "spec": {"nodeName": node, "containers": [{
                 "name": "nginx", "image": "nginx", "command": [COMMAND, name],
                 "ports": [{"name": f"{proto.lower()}-{port}", "containerPort": port}
                           for port, proto in listening]}]}}, src))
        docs.append(RawDoc(
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
             "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                      **({"ipFamilyPolicy": "PreferDualStack"} if cluster.dual_stack else {}),
                      "selector": {OWNER: name},
                      "ports": [{"name": f"{proto.lower()}-{port}", "port": port,
                                 "targetPort": port} for port, proto in listening]}}, src))
    return docs


def service_key(gw: Gateway) -> str:
    return f"{NAMESPACE}/{pod_name(gw)}"


def reconciled(plan: Plan, m: Manifests) -> Reconciled:
    """Every decision of the controller over the lab's objects: status and data planes.
    A Gateway's addresses are its Service's LoadBalancer addresses."""
    addresses = {}
    for gw in served(m):
        svc = plan.services.get(service_key(gw))
        if svc is not None:
            addresses[gw.key] = svc.lb_ips
    return reconcile(m.gateway_classes.values(), m.gateways.values(), m.http_routes.values(),
                     m.reference_grants.values(), services=plan.services,
                     namespaces=plan.namespaces, secrets=m.secrets, addresses=addresses,
                     families=plan.cluster.families)


def render_files(plan: Plan, m: Manifests, lab_dir: str
                 ) -> tuple[list[File | Directory | Certificate], list[str]]:
    """Each data plane's files: nginx.conf (checked with `nginx -t` and reloaded gracefully
    when nginx runs), the listeners' certificates and keys (from their Secrets: an HTTPS
    listener without a usable one is not programmed), nginx's temporary directories; and
    the controller's warnings."""
    if not m.gateways:
        return [], []
    result = reconciled(plan, m)
    out: list[File | Directory | Certificate] = []
    for gw in served(m):
        pod = plan.pods.get(service_key(gw))
        cfg = result.configs.get(gw.key)
        if pod is None or cfg is None:
            continue
        d = f"{DIR}/{pod.name}"
        out += [Directory(f"{d}/tmp/{t}") for t in ("body", "proxy", "fastcgi", "uwsgi",
                                                    "scgi")]
        out += [File(f"{d}/{name}", data) for name, data in sorted(cfg.files.items())]
        conf = nginx.render(cfg, Path(lab_dir) / d, ipv6=plan.cluster.ipv6)
        out.append(File(f"{d}/nginx.conf", conf.encode(),
                        Reload(pod.netns, ("nginx", "-t", "-q", "-c", "{}"),
                               f"{d}/nginx.pid")))
    return out, result.warnings


def resolve(lab_dir: str, p: Process) -> tuple[Process, ReadyWhen]:
    """nginx in the foreground on the data plane's configuration; ready once it has written
    its pid file, which it does after opening its listening sockets."""
    d = f"{DIR}/{p.argv[1]}"
    argv = ("nginx", "-c", f"{lab_dir}/{d}/nginx.conf", "-g", "daemon off;")
    return (Process(p.pod, p.container, p.netns, argv, p.env, p.binds, p.workdir),
            ReadyWhen(p.pod, p.container, f"{d}/nginx.pid", 0))
