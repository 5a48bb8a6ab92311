"""Ingress: an nginx ingress controller inside the lab, as ingress-nginx builds it.

The controller is an add-on pod (namespace ingress-nginx) behind a LoadBalancer Service
with externalTrafficPolicy Local, so the client's address reaches nginx. This module
renders nginx.conf from every Ingress the lab's controller serves (pure; see
`why_not_served` for the IngressClass rules): upstreams are the Service's
endpoints (pod addresses), paths follow the Ingress pathType rules, TLS uses the Secrets
in the manifests or a self-signed certificate for the listed hosts. Objects that cannot be
served are reported and skipped; the rest keep working.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from netlab import nginx_conf
from netlab.intents import Certificate, Directory, File, Process, ReadyWhen, Reload
from netlab.loader import DEFAULT_CLASS_ANNOTATION, LEGACY_INGRESS_CLASS, RawDoc
from netlab.model import Cluster, Ingress, IngressBackend, IngressClass, Manifests
from netlab.plan import Plan, ServicePlan

NAMESPACE, CONTROLLER, SERVICE = "ingress-nginx", "ingress-nginx-controller", \
    "ingress-nginx-controller"
DIR = "ingress"  # the controller's files, in the lab's state directory
COMMAND = "netlab-nginx"  # the controller container's placeholder command
REWRITE = "nginx.ingress.kubernetes.io/rewrite-target"
OUR_CONTROLLER = "k8s.io/ingress-nginx"  # the spec.controller of the classes the lab serves
INVALID_PATH = re.compile(r"[\s{};\"'\\]")


def addon_docs(cluster: Cluster, node: str) -> list[RawDoc]:
    src = "<netlab add-on: ingress-nginx>"
    labels = {"app.kubernetes.io/name": "ingress-nginx",
              "app.kubernetes.io/component": "controller"}
    return [
        RawDoc({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}, src),
        RawDoc({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": CONTROLLER, "namespace": NAMESPACE, "labels": labels,
                             "annotations": {"netlab.dev/responder": "off"}},
                "spec": {"nodeName": node, "containers": [{
                    "name": "controller", "image": "nginx", "command": ["netlab-nginx"],
                    "ports": [{"name": "http", "containerPort": 80},
                              {"name": "https", "containerPort": 443}]}]}}, src),
        RawDoc({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": SERVICE, "namespace": NAMESPACE},
                "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                         # dual-stack: a ClusterIP per family (ingress-nginx's chart sets
                         # ipFamilyPolicy the same way for dual-stack clusters)
                         **({"ipFamilyPolicy": "PreferDualStack"} if cluster.dual_stack
                            else {}),
                         "selector": labels,
                         "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                                   {"name": "https", "port": 443, "targetPort": "https"}]}},
               src)]


@dataclass
class TLSHost:
    hosts: tuple[str, ...]
    secret: str | None  # namespace/name, or None for a generated certificate
    cert: str = ""  # file names in the controller's directory
    key: str = ""


@dataclass
class Route:
    ingress: str
    host: str | None
    path: str | None
    path_type: str
    upstream: str | None  # None: 503 (no endpoints) or a problem reported
    rewrite: str | None = None


@dataclass
class IngressConfig:
    conf: str
    files: dict[str, bytes] = field(default_factory=dict)  # name -> content (certs, keys)
    self_signed: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> hosts
    warnings: list[str] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)


def served_classes(m: Manifests, cluster: Cluster) -> list[str]:
    """The class names the lab's controller serves: every IngressClass whose
    spec.controller is ingress-nginx's (k8s.io/ingress-nginx), and the Cluster's
    `ingressClass` name unless an IngressClass of that name gives it to another controller."""
    names = {n for n, c in m.ingress_classes.items() if c.controller == OUR_CONTROLLER}
    if cluster.ingress_class not in m.ingress_classes:
        names.add(cluster.ingress_class)
    return sorted(names)


def default_classes(m: Manifests) -> list[IngressClass]:
    """IngressClasses annotated ingressclass.kubernetes.io/is-default-class: "true"."""
    return sorted((c for c in m.ingress_classes.values() if c.is_default),
                  key=lambda c: c.name)


def assigned_class(ing: Ingress, m: Manifests) -> str | None:
    """The class the Ingress has once admitted: its ingressClassName, or, with neither it
    nor the legacy annotation, the one IngressClass marked default (Kubernetes'
    DefaultIngressClass admission plugin sets it; with two defaults it refuses the Ingress)."""
    if ing.class_name is not None or LEGACY_INGRESS_CLASS in ing.annotations:
        return ing.class_name
    defaults = default_classes(m)
    return defaults[0].name if len(defaults) == 1 else None


def why_not_served(ing: Ingress, m: Manifests, cluster: Cluster) -> str | None:
    """None when the lab's controller serves the Ingress, else the reason, decided as
    ingress-nginx does: spec.ingressClassName must name a served class; without it the
    legacy annotation kubernetes.io/ingress.class must; with neither, the class is the
    default IngressClass if exactly one is marked default. A lab that declares no
    IngressClass at all keeps serving Ingresses without class (netlab's compatibility:
    the Cluster's class is then the default, as ingress-nginx's watch-ingress-without-class
    does)."""
    ours = served_classes(m, cluster)
    listed = ", ".join(repr(n) for n in ours)
    if ing.class_name is not None:
        if ing.class_name in ours:
            return None
        c = m.ingress_classes.get(ing.class_name)
        if c is not None:
            return (f"ingressClassName {ing.class_name!r}: IngressClass {c.name} is for "
                    f"controller {c.controller}, not this lab's ingress-nginx "
                    f"({OUR_CONTROLLER}): not served")
        return (f"ingressClassName {ing.class_name!r}: no IngressClass of that name, and it is "
                f"not a class this lab serves ({listed}): not served")
    legacy = ing.annotations.get(LEGACY_INGRESS_CLASS)
    if legacy is not None:
        if legacy in ours:
            return None
        return (f"annotation {LEGACY_INGRESS_CLASS}: {legacy!r} is not a class this lab serves "
                f"({listed}): ingress-nginx ignores it; not served")
    if not m.ingress_classes:
        return None
    defaults = default_classes(m)
    if len(defaults) > 1:
        return ("no ingressClassName and several IngressClasses are marked default ("
                + ", ".join(c.name for c in defaults) + "): Kubernetes refuses such an "
                "Ingress; not served")
    if not defaults:
        return ("no ingressClassName, no kubernetes.io/ingress.class annotation and no "
                f"IngressClass marked default ({DEFAULT_CLASS_ANNOTATION}: \"true\"): "
                "ingress-nginx ignores it; not served")
    d = defaults[0]
    if d.controller != OUR_CONTROLLER:
        return (f"no ingressClassName: it gets the default IngressClass {d.name}, which is "
                f"for controller {d.controller}, not this lab's ingress-nginx: not served")
    return None


def class_warnings(m: Manifests) -> list[str]:
    """Problems of the IngressClasses themselves (not tied to one Ingress)."""
    defaults = default_classes(m)
    if len(defaults) > 1:
        return [f"IngressClasses {', '.join(c.name for c in defaults)} are all marked default "
                f"({DEFAULT_CLASS_ANNOTATION}): Kubernetes refuses new Ingresses without "
                "ingressClassName while more than one is"]
    return []


def unserved_warnings(m: Manifests, cluster: Cluster) -> list[str]:
    """One line per Ingress the lab's controller does not serve, with the reason."""
    return [f"Ingress {i.namespace}/{i.name}: {why}"
            for i in sorted(m.ingresses.values(), key=lambda i: (i.namespace, i.name))
            if (why := why_not_served(i, m, cluster)) is not None]


def served(m: Manifests, cluster: Cluster) -> list[Ingress]:
    """The Ingresses the lab's controller serves (see `why_not_served`)."""
    return sorted((i for i in m.ingresses.values() if why_not_served(i, m, cluster) is None),
                  key=lambda i: (i.namespace, i.name))


def _upstream_name(svc: ServicePlan, port: int) -> str:
    return f"{svc.namespace}-{svc.name}-{port}"


def render(plan: Plan, m: Manifests, directory: Path) -> IngressConfig:
    cfg = IngressConfig("")
    upstreams: dict[str, list[str]] = {}
    cfg.warnings += class_warnings(m) + unserved_warnings(m, plan.cluster)

    def backend(ing: Ingress, b: IngressBackend, where: str) -> str | None:
        who = f"Ingress {ing.namespace}/{ing.name}: {where}"
        if b.resource:
            cfg.warnings.append(f"{who}: resource backends are not supported; returns 503")
            return None
        svc = plan.services.get(f"{ing.namespace}/{b.service}")
        if svc is None:
            cfg.warnings.append(f"{who}: backend Service {b.service!r} not found in namespace "
                                f"{ing.namespace}; returns 503")
            return None
        port = next((p for p in svc.ports if (b.port_number is not None and
                                              p.port == b.port_number)
                     or (b.port_name is not None and p.name == b.port_name)), None)
        if port is None:
            wanted = b.port_number if b.port_number is not None else repr(b.port_name)
            cfg.warnings.append(f"{who}: Service {svc.key} has no port {wanted} (ports: "
                                f"{', '.join(p.name or str(p.port) for p in svc.ports)}); "
                                "returns 503")
            return None
        name = _upstream_name(svc, port.port)
        # the endpoints of the Service's primary family (an IPv6 one: [address]:port)
        upstreams[name] = sorted({f"[{ep.ip}]:{ep.port}" if ":" in ep.ip else
                                  f"{ep.ip}:{ep.port}" for ep in
                                  port.family_endpoints(svc.ip_families[0])}
                                 if svc.ip_families else ())
        return name

    default_backend: str | None = None
    hosts: dict[str | None, dict[tuple[str, str], Route]] = {}
    tls: list[TLSHost] = []
    for ing in served(m, plan.cluster):
        key = f"{ing.namespace}/{ing.name}"
        if ing.default_backend is not None and default_backend is None:
            default_backend = backend(ing, ing.default_backend, "defaultBackend") or "@503"
        rewrite = ing.annotations.get(REWRITE)
        for r in ing.rules:
            for i, p in enumerate(r.paths):
                where = f"rules[host={r.host or '*'}].paths[{i}]"
                path = p.path or "/"
                if INVALID_PATH.search(path) or (p.path_type != "ImplementationSpecific"
                                                 and not rewrite and ("*" in path)):
                    cfg.warnings.append(f"Ingress {key}: {where}: path {path!r} is not valid "
                                        f"for pathType {p.path_type}; skipped")
                    continue
                slot = (p.path_type if p.path_type == "Exact" else "Prefix",
                        path if path == "/" else path.rstrip("/") or "/")
                table = hosts.setdefault(r.host, {})
                if slot in table:
                    cfg.warnings.append(f"Ingress {key}: {where}: {r.host or '*'}{path} is "
                                        f"already served by Ingress {table[slot].ingress}; "
                                        "skipped")
                    continue
                table[slot] = Route(key, r.host, slot[1], slot[0],
                                    backend(ing, p.backend, where), rewrite)
        for t in ing.tls:
            secret = f"{ing.namespace}/{t.secret_name}" if t.secret_name else None
            entry = TLSHost(t.hosts, secret)
            s = m.secrets.get(secret) if secret else None
            if s is not None and {"tls.crt", "tls.key"} <= set(s.data):
                base = "secret-" + secret.replace("/", "-")
                cfg.files[base + ".crt"], cfg.files[base + ".key"] = \
                    s.data["tls.crt"], s.data["tls.key"]
                entry.cert, entry.key = base + ".crt", base + ".key"
            else:
                if secret and s is None:
                    cfg.warnings.append(f"Ingress {key}: TLS Secret {secret} not found: a "
                                        f"self-signed certificate for {', '.join(t.hosts)} "
                                        "is used")
                elif secret:
                    cfg.warnings.append(f"Ingress {key}: TLS Secret {secret} has no tls.crt/"
                                        "tls.key: a self-signed certificate is used")
                base = "selfsigned-" + hashlib.sha256(",".join(t.hosts).encode()
                                                      ).hexdigest()[:12]
                cfg.self_signed[base] = t.hosts
                entry.cert, entry.key = base + ".crt", base + ".key"
            tls.append(entry)
    cfg.routes = [r for table in hosts.values() for r in table.values()]
    cfg.conf = _nginx_conf(directory, upstreams, hosts, tls, default_backend,
                           ipv6=plan.cluster.ipv6)
    return cfg


def _location(route: Route) -> list[str]:
    target = f"http://{route.upstream}" if route.upstream and route.upstream != "@503" else None
    body = []
    if route.rewrite and target:
        if "$" in route.rewrite:  # capture groups: the path is a regular expression
            body.append(f"rewrite (?i){route.path} {route.rewrite} break;")
        else:
            prefix = route.path.rstrip("/")
            target_path = route.rewrite if route.rewrite.endswith("/") else route.rewrite + "/"
            body.append(f"rewrite ^{re.escape(prefix)}/?(.*)$ {target_path}$1 break;")
    body += [f"proxy_pass {target};"] if target else ["return 503;"]
    inner = " ".join(body)
    if route.rewrite and "$" in route.rewrite:
        return [f"location ~* ^{route.path} {{ {inner} }}"]
    if route.path_type == "Exact":
        return [f"location = {route.path} {{ {inner} }}"]
    if route.path == "/":
        return [f"location / {{ {inner} }}"]
    # Prefix is element-wise: /foo matches /foo and /foo/..., never /foobar
    return [f"location = {route.path} {{ {inner} }}",
            f"location {route.path}/ {{ {inner} }}"]


def _fallback(default_backend: str | None) -> str:
    if default_backend and default_backend != "@503":
        return f"location / {{ proxy_pass http://{default_backend}; }}"
    if default_backend == "@503":
        return "location / { return 503; }"
    return 'location / { default_type text/plain; return 404 "default backend - 404\\n"; }'


def _listen(spec: str, ipv6: bool) -> list[str]:
    """`listen SPEC;`, and in a dual-stack lab its IPv6 twin (`[::]:PORT`, ipv6only, as
    ingress-nginx's template writes both)."""
    return [f"    listen {spec};", *([f"    listen [::]:{spec};"] if ipv6 else [])]


def _nginx_conf(d: Path, upstreams: dict[str, list[str]],
                hosts: dict[str | None, dict[tuple[str, str], Route]], tls: list[TLSHost],
                default_backend: str | None, ipv6: bool = False) -> str:
    lines = [
        *nginx_conf.head(d, "from the lab's Ingress objects"),
        "  proxy_set_header Host $host;",
        "  proxy_set_header X-Real-IP $remote_addr;",
        "  proxy_set_header X-Forwarded-For $remote_addr;",
        "  proxy_set_header X-Forwarded-Host $host;",
        "  proxy_set_header X-Forwarded-Proto $scheme;",
        "  proxy_set_header X-Forwarded-Port $server_port;",
        "  proxy_connect_timeout 2s;",
        # connections to backends are kept and reused, as ingress-nginx does by default
        # (upstream-keepalive-connections 320, HTTP/1.1 without a Connection header)
        "  proxy_http_version 1.1;",
        '  proxy_set_header Connection "";',
    ]
    for name, servers in sorted(upstreams.items()):
        if servers:
            lines.append(f"  upstream {name} {{ " + " ".join(f"server {s};" for s in servers)
                         + " keepalive 320; }")
        else:  # no endpoints: nginx needs a server; a closed one, so requests get 502/503
            lines.append(f"  upstream {name} {{ server 127.0.0.1:1 down; }}")
    cert_for: dict[str, TLSHost] = {}
    for t in tls:
        for h in t.hosts:
            cert_for.setdefault(h, t)
    default_cert = tls[0] if tls else None
    lines.append("  server {")
    lines += _listen("80 default_server", ipv6) + _listen("443 ssl default_server", ipv6)
    lines.append("    server_name _;")
    cert = default_cert.cert if default_cert else "default.crt"
    key = default_cert.key if default_cert else "default.key"
    lines.append(f"    ssl_certificate {d}/{cert}; ssl_certificate_key {d}/{key};")
    for route in sorted(hosts.get(None, {}).values(), key=lambda r: r.path):
        lines += [f"    {loc}" for loc in _location(route)]
    if ("Prefix", "/") not in hosts.get(None, {}):
        lines.append(f"    {_fallback(default_backend)}")
    lines.append("  }")
    for host in sorted(h for h in hosts if h is not None):
        lines.append("  server {")
        lines += _listen("80", ipv6)
        t = cert_for.get(host) or (next((c for h, c in cert_for.items()
                                         if h.startswith("*.") and host.endswith(h[1:])),
                                        None))
        if t is not None:
            lines += _listen("443 ssl", ipv6)
            lines.append(f"    ssl_certificate {d}/{t.cert}; ssl_certificate_key {d}/{t.key};")
        lines.append(f"    server_name {host};")
        for route in sorted(hosts[host].values(), key=lambda r: r.path):
            lines += [f"    {loc}" for loc in _location(route)]
        if ("Prefix", "/") not in hosts[host]:
            lines.append(f"    {_fallback(default_backend)}")
        lines.append("  }")
    # TLS hosts with no rules still answer (with the default backend)
    for host, t in sorted(cert_for.items()):
        if host not in hosts:
            lines += ["  server {", *_listen("443 ssl", ipv6), f"    server_name {host};",
                      f"    ssl_certificate {d}/{t.cert}; ssl_certificate_key {d}/{t.key};",
                      f"    {_fallback(default_backend)}", "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_files(plan: Plan, m: Manifests, lab_dir: str
                 ) -> tuple[list[File | Directory | Certificate], list[str]]:
    """The controller's files: nginx.conf (checked with `nginx -t` and reloaded gracefully
    when nginx runs), certificates and keys from Secrets, self-signed ones made once, and
    nginx's temporary directories. Nothing while the lab has no controller."""
    pod = plan.pods.get(f"{NAMESPACE}/{CONTROLLER}")
    if pod is None:
        return [], []
    cfg = render(plan, m, Path(lab_dir) / DIR)
    out: list[File | Directory | Certificate] = [
        Directory(f"{DIR}/tmp/{t}") for t in ("body", "proxy", "fastcgi", "uwsgi", "scgi")]
    out += [File(f"{DIR}/{name}", data) for name, data in sorted(cfg.files.items())]
    for base, hosts in {"default": ("netlab-ingress-default",), **cfg.self_signed}.items():
        out.append(Certificate(f"{DIR}/{base}.crt", f"{DIR}/{base}.key", hosts))
    out.append(File(f"{DIR}/nginx.conf", cfg.conf.encode(),
                    Reload(pod.netns, ("nginx", "-t", "-q", "-c", "{}"), f"{DIR}/nginx.pid")))
    return out, cfg.warnings


def resolve(lab_dir: str, p: Process) -> tuple[Process, ReadyWhen]:
    """nginx in the foreground on the rendered configuration; ready once it has written its
    pid file, which it does after opening its listening sockets."""
    argv = ("nginx", "-c", f"{lab_dir}/{DIR}/nginx.conf", "-g", "daemon off;")
    return (Process(p.pod, p.container, p.netns, argv, p.env, p.binds, p.workdir),
            ReadyWhen(p.pod, p.container, f"{DIR}/nginx.pid", 0))
