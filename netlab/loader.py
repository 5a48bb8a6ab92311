"""Load manifests: YAML files -> raw documents -> the typed model (`Manifests`).

Raw documents are kept (they are what the state file stores and what `apply` merges),
so the lab can always be re-planned from exactly what the user wrote.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from netlab.errors import InputError
from netlab.expect_fields import http_check
from netlab.fields import NAME_RULES as NAME_RULES_TEXT
from netlab.fields import Fields, Where, label_selector, qualified_name_error
from netlab.gateway.api import KINDS as GATEWAY_API_KINDS
from netlab.gateway.api import parse as parse_gateway_api
from netlab.model import (
    Cluster,
    ConfigMap,
    Container,
    ContainerPort,
    Deployment,
    EndpointAddress,
    EndpointGroup,
    EndpointPort,
    EndpointsObject,
    EnvRef,
    Ingress,
    IngressBackend,
    IngressClass,
    IngressClassParameters,
    IngressPath,
    IngressRule,
    IngressTLS,
    IPBlock,
    JobSpec,
    KeyToPath,
    LabelSelector,
    Manifests,
    Namespace,
    NetworkPolicy,
    NodeSpec,
    ObjectKey,
    Pod,
    PodSpec,
    PolicyPeer,
    PolicyPort,
    PolicyRule,
    Probe,
    Secret,
    Service,
    ServicePort,
    Source,
    Volume,
    VolumeMount,
    Workload,
)
from netlab.policy.cluster import KINDS as CLUSTER_POLICY_KINDS
from netlab.policy.cluster import parse as parse_cluster_policy

CLUSTER_API = "netlab.dev/v1alpha1"
API_VERSIONS = {
    "Namespace": ("v1",),
    "Pod": ("v1",),
    "Service": ("v1",),
    "Endpoints": ("v1",),
    "EndpointSlice": ("discovery.k8s.io/v1",),
    "Secret": ("v1",),
    "ConfigMap": ("v1",),
    "Deployment": ("apps/v1",),
    "ReplicaSet": ("apps/v1",),
    "ReplicationController": ("v1",),
    "DaemonSet": ("apps/v1",),
    "StatefulSet": ("apps/v1",),
    "Job": ("batch/v1",),
    "CronJob": ("batch/v1",),
    "NetworkPolicy": ("networking.k8s.io/v1",),
    "Ingress": ("networking.k8s.io/v1",),
    "IngressClass": ("networking.k8s.io/v1",),
    "Cluster": (CLUSTER_API,),
    "Expectation": (CLUSTER_API,),
    **{kind: (version,) for kind, version in CLUSTER_POLICY_KINDS.items()},
    **GATEWAY_API_KINDS,
}
CLUSTER_SCOPED = {"Namespace", "Cluster", "Expectation", "IngressClass", "GatewayClass",
                  *CLUSTER_POLICY_KINDS}
PROTOCOLS = ("TCP", "UDP", "SCTP")
BUILTIN_NAMESPACES = ("default", "kube-system")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it


@dataclass(frozen=True)
class RawDoc:
    """One YAML document as written, with where it came from."""

    doc: dict
    file: str
    line: int | None = None

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind", ""))

    def to_json(self) -> dict:
        return {"file": self.file, "line": self.line, "doc": self.doc}

    @classmethod
    def from_json(cls, data: dict) -> RawDoc:
        return cls(doc=data["doc"], file=data["file"], line=data.get("line"))


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; a directory means every *.yaml / *.yml in it, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        try:
            p.stat()
        except OSError as e:
            raise InputError(f"{p}: {e.strerror.lower() if e.strerror else e}") from e
        if p.is_dir():
            found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            if not found:
                raise InputError(f"directory {p} holds no *.yaml files")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or directory")
    return out


def read_files(paths: Iterable[str | Path]) -> list[RawDoc]:
    docs: list[RawDoc] = []
    for path in expand_paths(paths):
        try:
            data = path.read_bytes()
        except OSError as e:
            raise _file_error(path, f"cannot read {path}: {e.strerror}") from e
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _file_error(path, f"{path} is not a text file: byte {e.start} is not UTF-8 "
                                    "(manifests are YAML or JSON in UTF-8)") from e
        if "\0" in text:
            raise _file_error(path, f"{path} is not a text file: it holds a NUL byte at "
                                    f"{text.index(chr(0))}")
        found = read_text(text, str(path))
        if not found:
            raise _file_error(path, f"{path} holds no Kubernetes objects"
                                    + (" (it is empty)" if not text.strip() else ""))
        docs.extend(found)
    return docs


def _file_error(path: Path, message: str) -> InputError:
    """An error about a whole file: the message names it, and so does `.file`."""
    err = InputError(message)
    err.file = str(path)
    return err


def read_text(text: str, file: str = "<inline>") -> list[RawDoc]:
    """Parse multi-document YAML, keeping the line each document starts on."""
    docs: list[RawDoc] = []
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1
            data = loader.construct_document(node)
            if data is None:
                continue
            if not isinstance(data, dict):
                raise InputError("a document must be a mapping with apiVersion, kind and metadata",
                                 file=file, line=line)
            if data.get("kind") == "List" and isinstance(data.get("items"), list):
                docs.extend(RawDoc(item, file, line) for item in data["items"])
            else:
                docs.append(RawDoc(data, file, line))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        raise InputError(f"invalid YAML: {problem}", file=file,
                         line=mark.line + 1 if mark else None) from e
    finally:
        loader.dispose()
    return docs


# The rule the API server checks an object's name with (ValidateNamespaceName: a DNS-1123
# label, ValidateServiceName: a DNS-1035 label); every other kind netlab reads takes a
# DNS-1123 subdomain (ValidatePodName, ValidateSecretName, ValidateDeploymentName...).
NAME_RULES = {"Namespace": "label", "Service": "dns1035"}


def object_key(doc: RawDoc) -> ObjectKey:
    """(kind, namespace, name) of a document, validating the metadata it needs."""
    kind = doc.kind
    where = Where(doc.file, doc.line, kind or "document")
    top = Fields(doc.doc, "", where)
    if not kind:
        raise where.error("kind", "is required")
    if kind in ("Cluster", "Expectation"):
        meta = top.sub("metadata")
        default = kind.lower()
        return (kind, "", meta.str("name", default) if meta else default)
    meta = top.sub("metadata", required=True)
    assert meta is not None
    name = meta.name("name", f"{kind} name", NAME_RULES.get(kind, "subdomain"))
    ns = "" if kind in CLUSTER_SCOPED else meta.name("namespace", "namespace") \
        if meta.has("namespace") else "default"
    return (kind, ns, name)


def describe(key: ObjectKey) -> str:
    kind, ns, name = key
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


def build(docs: Iterable[RawDoc]) -> Manifests:
    """Turn raw documents into the typed model, or raise one InputError."""
    m = Manifests()
    seen: dict[ObjectKey, RawDoc] = {}
    for doc in docs:
        kind = doc.kind
        if kind and kind not in API_VERSIONS:
            m.warnings.append(f"{doc.file}:{doc.line}: kind {kind!r} is not modelled by netlab; "
                              "document skipped")
            continue
        key = object_key(doc)
        if key in seen:
            first = seen[key]
            raise InputError(f"duplicate object: also defined at {first.file}:{first.line}",
                             file=doc.file, line=doc.line, obj=describe(key))
        seen[key] = doc
        where = Where(doc.file, doc.line, describe(key), m.warnings)
        top = Fields(doc.doc, "", where)
        api = top.str("apiVersion")
        if api not in API_VERSIONS[kind]:
            raise top.error("apiVersion", f"{api!r} is not supported for {kind}: use "
                                          f"{' or '.join(API_VERSIONS[kind])}")
        top.ignore("kind", "status")
        PARSERS[kind](m, key, top, Source(doc.file, doc.line))
        m.raw[key] = doc.doc
    _add_namespaces(m)
    _check_endpoint_owners(m)
    return m


# --- metadata and selectors -------------------------------------------------------------


def _meta(top: Fields) -> tuple[Fields, dict[str, str], dict[str, str]]:
    meta = top.sub("metadata", required=True)
    assert meta is not None
    meta.ignore("name", "namespace", "uid", "resourceVersion", "creationTimestamp",
                "generation", "managedFields", "selfLink")
    return meta, meta.labels("labels"), meta.annotations("annotations")


def _selector(f: Fields | None) -> LabelSelector:
    return label_selector(f)


# --- workloads -----------------------------------------------------------------------

PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")  # the API server's order


def _probe(c: Fields, key: str, ports: list[ContainerPort]) -> Probe | None:
    """A container's readinessProbe, livenessProbe or startupProbe, validated with the API
    server's rules and wording (validateProbe, validateHandler) and its defaults."""
    f = c.sub(key)
    if f is None:
        return None
    handlers = [h for h in PROBE_HANDLERS if f.has(h)]
    if not handlers:
        raise f.error("", "Required value: must specify a handler type")
    if len(handlers) > 1:
        raise f.error(handlers[1], "Forbidden: may not specify more than 1 handler type")
    kind = handlers[0]

    def count(name: str, default: int) -> int:
        # 0 (or absent) means the default: the API server's SetDefaults_Probe
        value = f.int(name, None)
        if value is not None and value < 0:
            raise f.error(name, f"Invalid value: {value}: must be greater than or equal to 0")
        return value or default

    timing = dict(initial_delay_seconds=count("initialDelaySeconds", 0),
                  period_seconds=count("periodSeconds", 10),
                  timeout_seconds=count("timeoutSeconds", 1),
                  success_threshold=count("successThreshold", 1),
                  failure_threshold=count("failureThreshold", 3))
    grace = f.int("terminationGracePeriodSeconds", None)
    if grace is not None and grace <= 0:
        raise f.error("terminationGracePeriodSeconds", f"Invalid value: {grace}: must be "
                                                       "greater than 0")
    if grace is not None and key == "readinessProbe":
        raise f.error("terminationGracePeriodSeconds", f"Invalid value: {grace}: must not be "
                                                       "set for readinessProbes")
    if key != "readinessProbe" and timing["success_threshold"] != 1:
        raise f.error("successThreshold", f"Invalid value: {timing['success_threshold']}: "
                                          "must be 1")
    h = f.sub(kind)
    assert h is not None
    if kind == "grpc":
        raise f.error("grpc", "grpc probes are not supported by netlab (the gRPC health "
                              "protocol needs HTTP/2): use an exec probe running "
                              "grpc_health_probe, or a tcpSocket probe")
    if kind == "exec":
        command = h.str_list("command")
        if not command:
            raise h.error("command", "Required value")
        h.done()
        f.done()
        return Probe("exec", command=command, termination_grace_period_seconds=grace, **timing)
    port = h.int_or_str("port")
    if isinstance(port, str) and port not in {p.name for p in ports}:
        raise h.error("port", f"{port!r} does not name a containerPort of this container "
                              "(kubelet looks a probe's named port up in the probed "
                              "container's ports only)")
    host = h.str("host", None) or None
    path, scheme, headers = "/", "HTTP", []
    if kind == "httpGet":
        path = h.str("path", "/") or "/"
        scheme = h.choice("scheme", ("HTTP", "HTTPS"), "HTTP")
        for hh in h.items("httpHeaders"):
            name = hh.str("name")
            if not name or not all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in name):
                raise hh.error("name", f"Invalid value: {name!r}: a valid HTTP header must "
                                       "consist of alphanumeric characters or '-' (e.g. "
                                       "'X-Header-Name', regex used for validation is "
                                       "'[-A-Za-z0-9]+')")
            headers.append((name, hh.str("value", "")))
            hh.done()
    h.done()
    f.done()
    return Probe(kind, port=port, host=host, path=path, scheme=scheme,
                 http_headers=tuple(headers), termination_grace_period_seconds=grace, **timing)


VOLUME_SOURCES = ("emptyDir", "configMap", "secret", "hostPath", "downwardAPI", "projected")
OTHER_VOLUME_SOURCES = (
    "persistentVolumeClaim", "ephemeral", "nfs", "iscsi", "csi", "gcePersistentDisk",
    "awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "fc", "flexVolume",
    "flocker", "gitRepo", "glusterfs", "image", "photonPersistentDisk", "portworxVolume",
    "quobyte", "rbd", "scaleIO", "storageos", "vsphereVolume")
FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
               "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
               "status.podIPs")
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?$")
_SUFFIX = {None: 1, "m": 0.001, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
           "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
           "Ei": 2**60}
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def quantity_bytes(text: str) -> int | None:
    """A resource.Quantity (128Mi, 1G, 500000) in bytes, rounded up; None if not one."""
    m = _QUANTITY.match(text.strip())
    if not m:
        return None
    return -(-int(float(m.group(1)) * _SUFFIX[m.group(2)] * 1000) // 1000)


def _relative_path(f: Fields, key: str, value: str) -> str:
    """validateLocalDescendingPath: relative, no '..' element."""
    if value.startswith("/") or ".." in value.split("/"):
        raise f.error(key, f"{value!r} must be a relative path without '..'")
    return value


def _mode(f: Fields, key: str, default: int | None) -> int | None:
    return f.int(key, default, lo=0, hi=0o777)


def _key_items(f: Fields) -> tuple[KeyToPath, ...]:
    items = []
    for it in f.items("items"):
        items.append(KeyToPath(it.str("key"), _relative_path(it, "path", it.str("path")),
                               _mode(it, "mode", None)))
        it.done()
    return tuple(items)


def _downward_items(f: Fields) -> tuple[tuple[str, str, int | None], ...]:
    out = []
    for it in f.items("items"):
        path = _relative_path(it, "path", it.str("path"))
        if it.has("resourceFieldRef"):
            it.ignore("resourceFieldRef")
            it.where.warnings.append(f"{it.where.obj}: {it.path}.resourceFieldRef is not "
                                     "modelled; file not written")
        else:
            ref = it.sub("fieldRef", required=True)
            assert ref is not None
            out.append((path, _field_path(ref, volume=True), _mode(it, "mode", None)))
            ref.ignore("apiVersion")
            ref.done()
        it.done()
    return tuple(out)


def _field_path(ref: Fields, volume: bool = False) -> str:
    """A fieldRef's path; volumes may also take all labels or annotations (one per line)."""
    path = ref.str("fieldPath")
    whole = ("metadata.labels", "metadata.annotations") if volume else ()
    if path not in (*FIELD_PATHS, *whole) and not re.fullmatch(
            r"metadata\.(labels|annotations)\['[^']+'\]", path):
        raise ref.error("fieldPath", f"{path!r} is not supported: use one of "
                                     f"{', '.join(FIELD_PATHS)}, metadata.labels['KEY'] or "
                                     "metadata.annotations['KEY']")
    return path


def _volume_source(v: Fields, name: str, kind: str, default_mode: int | None = None,
                   projected: bool = False) -> Volume:
    src = v.sub(kind)
    assert src is not None
    if kind == "emptyDir":
        medium = src.choice("medium", ("", "Memory"), "")
        size = None
        if src.has("sizeLimit"):
            size = quantity_bytes(src.str("sizeLimit"))
            if size is None:
                raise src.error("sizeLimit", f"{src.str('sizeLimit')!r} is not a quantity "
                                             "(like 64Mi)")
        src.done()
        return Volume(name, "emptyDir", medium=medium, size_limit=size)
    if kind == "hostPath":
        path = src.str("path")
        if not path.startswith("/"):
            raise src.error("path", f"{path!r} must be an absolute path")
        src.choice("type", ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File",
                            "Socket", "CharDevice", "BlockDevice"), "")
        src.done()
        # The pod already reads the whole host tree through its overlay's read-only lower
        # layer, so a read-only hostPath shows nothing new; a writable one would let a pod
        # change the host, which the sandbox exists to prevent.
        v.where.warnings.append(f"{v.where.obj}: {v.path}.hostPath {path} is mounted "
                                "read-only (netlab pods never write to the host)")
        return Volume(name, "hostPath", ref=path)
    if kind == "projected":
        mode = _mode(src, "defaultMode", 0o644)
        sources = []
        for i, s in enumerate(src.items("sources")):
            kinds = [k for k in ("configMap", "secret", "downwardAPI") if s.has(k)]
            if not kinds:
                s.ignore("serviceAccountToken", "clusterTrustBundle")
                s.where.warnings.append(f"{s.where.obj}: {s.path}.{', '.join(s.data)} is not "
                                        "modelled (netlab projects configMap, secret and "
                                        "downwardAPI); skipped")
            elif len(kinds) > 1:
                raise s.error(kinds[1], "may not specify more than 1 volume type")
            else:
                sources.append(_volume_source(s, f"{name}[{i}]", kinds[0], mode, True))
            s.done()
        src.done()
        return Volume(name, "projected", default_mode=mode or 0o644, sources=tuple(sources))
    mode = _mode(src, "defaultMode", default_mode if default_mode is not None else 0o644)
    if kind == "downwardAPI":
        fields = _downward_items(src)
        src.done()
        return Volume(name, "downwardAPI", default_mode=mode, fields=fields)
    ref_key = "secretName" if kind == "secret" and not projected else "name"
    ref = src.name(ref_key, f"{kind} name", "subdomain")
    items = _key_items(src)
    optional = src.bool("optional", False)
    src.done()
    return Volume(name, kind, ref=ref, items=items, default_mode=mode, optional=optional)


def _volumes(spec: Fields) -> tuple[Volume, ...]:
    volumes: dict[str, Volume] = {}
    for v in spec.items("volumes"):
        name = v.name("name", "volume name")
        if name in volumes:
            raise v.error("name", f"Duplicate value: {name!r}")
        kinds = [k for k in (*VOLUME_SOURCES, *OTHER_VOLUME_SOURCES) if v.has(k)]
        if not kinds:
            raise v.error("", "must specify a volume type")
        if len(kinds) > 1:
            raise v.error(kinds[1], "may not specify more than 1 volume type")
        if kinds[0] in VOLUME_SOURCES:
            volumes[name] = _volume_source(v, name, kinds[0])
        else:
            v.ignore(kinds[0])
            v.where.warnings.append(f"{v.where.obj}: {v.path}.{kinds[0]} is not modelled; "
                                    "the volume is an empty directory")
            volumes[name] = Volume(name, "other")
        v.done()
    return tuple(volumes.values())


def _volume_mounts(c: Fields, volumes: tuple[Volume, ...]) -> tuple[VolumeMount, ...]:
    names = {v.name for v in volumes}
    out: list[VolumeMount] = []
    paths: set[str] = set()
    for vm in c.items("volumeMounts"):
        name = vm.str("name")
        if name not in names:
            raise vm.error("name", f"Not found: {name!r} (no volume of the pod has that name)")
        path = vm.str("mountPath")
        if not path.startswith("/"):
            raise vm.error("mountPath", f"{path!r} must be an absolute path")
        norm = "/" + "/".join(p for p in path.split("/") if p)
        if norm in paths:
            raise vm.error("mountPath", f"{path!r} must be unique")
        paths.add(norm)
        sub = _relative_path(vm, "subPath", vm.str("subPath", ""))
        if vm.has("subPathExpr"):
            raise vm.error("subPathExpr", "is not supported by netlab: use subPath")
        vm.ignore("mountPropagation", "recursiveReadOnly")
        out.append(VolumeMount(name, norm, vm.bool("readOnly", False), sub.strip("/")))
        vm.done()
    return tuple(out)


def _env_refs(c: Fields, env: list[tuple[str, str]]) -> tuple[EnvRef, ...]:
    """env (literal values into `env`; valueFrom returned) and envFrom."""
    refs: list[EnvRef] = []
    for ef in c.items("envFrom"):
        kinds = [k for k in ("configMapRef", "secretRef") if ef.has(k)]
        if len(kinds) != 1:
            raise ef.error("", "must specify exactly one of configMapRef and secretRef")
        r = ef.sub(kinds[0])
        assert r is not None
        refs.append(EnvRef("", "configMap" if kinds[0] == "configMapRef" else "secret",
                           r.str("name"), optional=r.bool("optional", False),
                           prefix=ef.str("prefix", "")))
        r.done()
        ef.done()
    for e in c.items("env"):
        name = e.str("name")
        if not e.has("valueFrom"):
            env.append((name, e.str("value", "")))
            e.done()
            continue
        if e.str("value", ""):
            raise e.error("valueFrom", "may not be specified when `value` is not empty")
        vf = e.sub("valueFrom")
        assert vf is not None
        kinds = [k for k in ("configMapKeyRef", "secretKeyRef", "fieldRef", "resourceFieldRef")
                 if vf.has(k)]
        if len(kinds) != 1:
            raise vf.error("", "must specify exactly one of configMapKeyRef, secretKeyRef, "
                               "fieldRef and resourceFieldRef")
        r = vf.sub(kinds[0])
        assert r is not None
        if kinds[0] == "resourceFieldRef":
            r.ignore(*r.data)
            e.where.warnings.append(f"{e.where.obj}: {vf.path}.resourceFieldRef is not "
                                    "modelled; variable not set")
        elif kinds[0] == "fieldRef":
            refs.append(EnvRef(name, "field", _field_path(r)))
            r.ignore("apiVersion")
        else:
            refs.append(EnvRef(name, "configMap" if kinds[0] == "configMapKeyRef" else "secret",
                               r.str("name"), r.str("key"), r.bool("optional", False)))
        r.done()
        vf.done()
        e.done()
    return tuple(refs)


NODE_SELECTOR_OPS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


def _node_requirements(t: Fields, key: str) -> tuple:
    """matchExpressions (node labels) or matchFields (metadata.name) of a node selector
    term, checked as ValidateNodeSelectorRequirement / ValidateNodeFieldSelectorRequirement."""
    from netlab.model import NodeSelectorRequirement

    out = []
    for e in t.items(key):
        rkey = e.str("key")
        if key == "matchFields":
            if rkey != "metadata.name":
                raise e.error("key", f"{rkey!r} is not supported: only metadata.name")
            op = e.choice("operator", ("In", "NotIn"))
            values = e.str_list("values")
            if len(values) != 1:
                raise e.error("values", f"must be only one value when operator is {op} for "
                                        "node field selector")
        else:
            if err := qualified_name_error(rkey):
                raise e.error("key", f"label key {rkey!r} is not valid: {err}")
            op = e.choice("operator", NODE_SELECTOR_OPS)
            values = e.str_list("values")
            if op in ("In", "NotIn") and not values:
                raise e.error("values", f"must be specified when operator is {op}")
            if op in ("Exists", "DoesNotExist") and values:
                raise e.error("values", f"may not be specified when operator is {op}")
            if op in ("Gt", "Lt") and len(values) != 1:
                raise e.error("values", f"must be a single value when operator is {op}")
        out.append(NodeSelectorRequirement(rkey, op, values))
        e.done()
    return tuple(out)


def _node_scheduling(spec: Fields) -> tuple[tuple, tuple]:
    """spec.nodeSelector and affinity.nodeAffinity's required terms; preferences (preferred
    node affinity, pod (anti-)affinity) are warned about and ignored."""
    from netlab.model import NodeSelectorTerm

    selector = tuple(sorted(spec.labels("nodeSelector").items()))
    aff = spec.sub("affinity")
    terms: list[NodeSelectorTerm] = []
    if aff is not None:
        for k in ("podAffinity", "podAntiAffinity"):
            if aff.has(k):
                aff.ignore(k)
                aff.where.warnings.append(f"{aff.where.obj}: {aff.path}.{k} is not modelled by "
                                          "netlab: pods are placed without it")
        na = aff.sub("nodeAffinity")
        if na is not None:
            pref = "preferredDuringSchedulingIgnoredDuringExecution"
            if na.has(pref):
                na.ignore(pref)
                na.where.warnings.append(f"{na.where.obj}: {na.path}.{pref} is a preference, not "
                                         "modelled by netlab: pods are placed without it")
            req = na.sub("requiredDuringSchedulingIgnoredDuringExecution")
            if req is not None:
                items = req.items("nodeSelectorTerms", required=True)
                if not items:
                    raise req.error("nodeSelectorTerms", "must have at least one node selector "
                                                         "term")
                for t in items:
                    terms.append(NodeSelectorTerm(_node_requirements(t, "matchExpressions"),
                                                  _node_requirements(t, "matchFields")))
                    t.done()
                req.done()
            na.done()
        aff.done()
    return selector, tuple(terms)


def _pod_spec(spec: Fields) -> PodSpec:
    volumes = _volumes(spec)
    return dataclasses.replace(_pod_spec_fields(spec, volumes), volumes=volumes)


def _pod_spec_fields(spec: Fields, volumes: tuple[Volume, ...]) -> PodSpec:
    port_names: dict[str, str] = {}
    names: set[str] = set()
    items = spec.items("containers", required=True)
    if not items:
        raise spec.error("containers", "must list at least one container")
    containers = [_container(c, volumes, port_names, names, init=False) for c in items]
    init_containers = [_container(c, volumes, port_names, names, init=True)
                       for c in spec.items("initContainers")]
    node_name = spec.name("nodeName", "node name") if spec.has("nodeName") else None
    hostname = spec.name("hostname", "hostname") if spec.has("hostname") else None
    subdomain = spec.name("subdomain", "subdomain") if spec.has("subdomain") else None
    dns_policy = spec.choice("dnsPolicy", ("ClusterFirst", "ClusterFirstWithHostNet", "Default",
                                           "None"), None)
    dns_config = spec.raw("dnsConfig", None)
    if dns_config is not None:
        dc = Fields(dns_config, spec._p("dnsConfig"), spec.where)
        dc.str_list("nameservers")
        dc.str_list("searches")
        for o in dc.items("options"):
            o.str("name")
            o.str("value", None)
            o.done()
        dc.done()
    if dns_policy == "None" and not dns_config:
        raise spec.error("dnsConfig", "is required when dnsPolicy is None")
    restart_policy = spec.choice("restartPolicy", ("Always", "OnFailure", "Never"), "Always")
    spec.ignore("terminationGracePeriodSeconds", "schedulerName",
                "securityContext", "serviceAccountName", "serviceAccount",
                "imagePullSecrets", "enableServiceLinks", "priority")
    host_aliases = []
    for a in spec.items("hostAliases"):  # ValidateHostAliases: an IP, subdomain hostnames
        ip = a.str("ip")
        try:
            ipaddress.ip_address(ip)
        except ValueError as e:
            raise a.error("ip", f"{ip!r} is not a valid IP address") from e
        is_subdomain, rule = NAME_RULES_TEXT["subdomain"]
        for i, h in enumerate(a.str_list("hostnames")):
            if not is_subdomain(h):
                raise a.error(f"hostnames[{i}]", f"{h!r} is not a valid hostname: {rule}")
        host_aliases.append((ip, a.str_list("hostnames")))
        a.done()
    node_selector, node_affinity = _node_scheduling(spec)
    host_network = spec.bool("hostNetwork", False)
    if host_network:  # SetDefaults_Pod: hostPort = containerPort; ValidatePodSpec: equal
        for ci, c in enumerate((*containers, *init_containers)):
            for pi, port in enumerate(c.ports):
                if port.host_port not in (None, port.container_port):
                    where = (f"containers[{ci}]" if ci < len(containers)
                             else f"initContainers[{ci - len(containers)}]")
                    raise spec.error(f"{where}.ports[{pi}].hostPort",
                                     f"Invalid value: {port.host_port}: must match "
                                     "`containerPort` when `hostNetwork` is true")
        containers = [_host_network_ports(c) for c in containers]
        init_containers = [_host_network_ports(c) for c in init_containers]
    spec.done()
    return PodSpec(tuple(containers), node_name, hostname, subdomain, dns_policy, dns_config,
                   restart_policy, host_aliases=tuple(host_aliases),
                   node_selector=node_selector, node_affinity=node_affinity,
                   init_containers=tuple(init_containers), host_network=host_network)


def _host_network_ports(c: Container) -> Container:
    return dataclasses.replace(c, ports=tuple(dataclasses.replace(
        p, host_port=p.container_port) for p in c.ports))


def _container(c: Fields, volumes: tuple[Volume, ...], port_names: dict[str, str],
               names: set[str], init: bool) -> Container:
    """One entry of containers or initContainers. Names are unique across both lists, as
    the API server checks; an init container's restartPolicy may only be Always (a native
    sidecar), and only sidecars may have probes (validateInitContainers)."""
    name = c.name("name", "container name")
    if name in names:
        raise c.error("name", f"duplicate container name {name!r}")
    names.add(name)
    ports = []
    seen_ports: set[tuple[int, str]] = set()
    for p in c.items("ports"):
        number = p.int("containerPort", lo=1, hi=65535)
        proto = p.choice("protocol", PROTOCOLS, "TCP")
        pname = p.str("name", None)
        if pname is not None:
            from netlab.fields import is_port_name

            if not is_port_name(pname):
                raise p.error("name", f"{pname!r} is not a valid port name (at most 15 "
                                      "lower-case letters, digits and '-', with a letter)")
            if pname in port_names:
                raise p.error("name", f"port name {pname!r} is already used by "
                                      f"{port_names[pname]}")
            port_names[pname] = f"container {name}"
        if (number, proto) in seen_ports:
            raise p.error("containerPort", f"{number}/{proto} is listed twice")
        seen_ports.add((number, proto))
        host_port = p.int("hostPort", 0, lo=0, hi=65535) or None
        host_ip = p.str("hostIP", None) or None
        if host_ip is not None:
            try:
                ipaddress.ip_address(host_ip)
            except ValueError as e:
                raise p.error("hostIP", f"{host_ip!r} is not a valid IP address") from e
        ports.append(ContainerPort(number, proto, pname, host_port, host_ip))
        p.done()
    restart_policy = None
    if c.has("restartPolicy"):
        if not init:
            raise c.error("restartPolicy", "Forbidden: may not be set for non-init containers")
        restart_policy = c.choice("restartPolicy", ("Always",), "Always")
    env: list[tuple[str, str]] = []
    env_refs = _env_refs(c, env)
    mounts = _volume_mounts(c, volumes)
    c.ignore("imagePullPolicy", "resources", "terminationMessagePath",
             "terminationMessagePolicy")
    probes = {}
    for k, key in (("readiness_probe", "readinessProbe"), ("liveness_probe", "livenessProbe"),
                   ("startup_probe", "startupProbe")):
        if init and restart_policy is None and c.has(key):
            raise c.error(key, "Forbidden: may not be set for init containers without "
                               "restartPolicy=Always")
        probes[k] = _probe(c, key, ports)
    container = Container(name, c.str("image", None), c.str_list("command"),
                          c.str_list("args"), tuple(ports), tuple(env), **probes,
                          volume_mounts=mounts, env_refs=env_refs,
                          restart_policy=restart_policy)
    c.done()
    return container


def _pod(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    _, labels, annotations = _meta(top)
    spec = top.sub("spec", required=True)
    assert spec is not None
    m.pods[f"{key[1]}/{key[2]}"] = Pod(key[1], key[2], _pod_spec(spec), labels, annotations,
                                       source=src)
    top.done()


def _deployment(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    _, labels, _ = _meta(top)
    spec = top.sub("spec", required=True)
    assert spec is not None
    replicas = spec.int("replicas", 1, lo=0, hi=100000)
    sel_f = spec.sub("selector", required=True)
    selector = _selector(sel_f)
    template = spec.sub("template", required=True)
    assert template is not None
    tmeta = template.sub("metadata", required=True)
    assert tmeta is not None
    tlabels = tmeta.labels("labels")
    tannotations = tmeta.annotations("annotations")
    tmeta.ignore("name", "creationTimestamp")
    tmeta.done()
    if not selector.match_labels and not selector.match_expressions:
        raise spec.error("selector", "must not be empty")
    if not selector.matches(tlabels):
        raise spec.error("selector", "does not match template.metadata.labels: the Deployment "
                                     "would never find its own pods")
    tspec = template.sub("spec", required=True)
    assert tspec is not None
    pod_spec = _pod_spec(tspec)
    template.done()
    spec.ignore("strategy", "revisionHistoryLimit", "progressDeadlineSeconds", "minReadySeconds",
                "paused")
    spec.done()
    top.done()
    m.deployments[f"{key[1]}/{key[2]}"] = Deployment(
        key[1], key[2], replicas, selector, tlabels, tannotations, pod_spec, labels, src)


def _workload(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    """ReplicaSet, ReplicationController, DaemonSet, StatefulSet, Job: a pod template and
    a selector that must match it, planned into pods by plan.desired_pods."""
    kind = key[0]
    _, labels, _ = _meta(top)
    spec = top.sub("spec", required=True)
    assert spec is not None
    replicas = 1
    if kind in ("ReplicaSet", "ReplicationController", "StatefulSet"):
        replicas = spec.int("replicas", 1, lo=0, hi=100000)
    template = spec.sub("template", required=True)
    assert template is not None
    tmeta = template.sub("metadata") or Fields({}, template._p("metadata"), template.where)
    tlabels = tmeta.labels("labels")
    tannotations = tmeta.annotations("annotations")
    tmeta.ignore("name", "creationTimestamp")
    tmeta.done()
    if kind == "ReplicationController":  # a plain map, defaulted to the template's labels
        plain = spec.labels("selector") if spec.has("selector") else dict(tlabels)
        selector = LabelSelector(tuple(sorted(plain.items())))
    elif kind == "Job":  # optional: the Job controller labels its pods itself
        selector = _selector(spec.sub("selector")) if spec.has("selector") \
            else LabelSelector((("job-name", key[2]),))
        tlabels = {**tlabels, "job-name": key[2], "batch.kubernetes.io/job-name": key[2]}
        spec.ignore("manualSelector")
    else:
        selector = _selector(spec.sub("selector", required=True))
    if not selector.match_labels and not selector.match_expressions:
        raise spec.error("selector", "must not be empty")
    if not selector.matches(tlabels):
        raise spec.error("selector", f"does not match template.metadata.labels: the {kind} "
                                     "would never find its own pods")
    tspec = template.sub("spec", required=True)
    assert tspec is not None
    pod_spec = _pod_spec(tspec)
    where = f"{spec.where.obj}"
    if kind == "Job" and pod_spec.restart_policy not in ("OnFailure", "Never"):
        raise tspec.error("restartPolicy", f'Unsupported value: "{pod_spec.restart_policy}": '
                                           'supported values: "OnFailure", "Never"')
    template.done()
    service_name, ordered = None, True
    job_spec: JobSpec | None = None
    strategy: dict[str, Any] = {}  # StatefulSet: Workload's update_strategy fields
    if kind == "StatefulSet":
        service_name = spec.name("serviceName", "service name", "dns1035") \
            if spec.has("serviceName") else None
        ordered = spec.choice("podManagementPolicy", ("OrderedReady", "Parallel"),
                              "OrderedReady") == "OrderedReady"
        if spec.has("volumeClaimTemplates"):
            spec.ignore("volumeClaimTemplates")
            m.warnings.append(f"{where}: volumeClaimTemplates are not modelled (no volumes)")
        strategy = _statefulset_update_strategy(m, spec, ordered)
        spec.ignore("revisionHistoryLimit", "minReadySeconds",
                    "persistentVolumeClaimRetentionPolicy", "ordinals")
    elif kind == "Job":  # run to completion by netlab.jobs, as the Job controller does
        job_spec = _job_spec(spec, where, m.warnings)
        replicas = min(job_spec.parallelism, job_spec.completions
                       if job_spec.completions is not None else job_spec.parallelism)
    elif kind == "DaemonSet":
        spec.ignore("updateStrategy", "revisionHistoryLimit", "minReadySeconds")
    else:
        spec.ignore("minReadySeconds")
    spec.done()
    top.done()
    m.workloads[f"{kind}/{key[1]}/{key[2]}"] = Workload(
        kind, key[1], key[2], replicas, selector, tlabels, tannotations, pod_spec, labels,
        service_name, ordered, src, **strategy, job=job_spec)


def _job_spec(spec: Fields, where: str, warnings: list[str]) -> JobSpec:
    """completions, parallelism (both 1 when neither is set; completions unset with
    parallelism set: a work queue, as the API server defaults them), backoffLimit (6),
    completionMode. The fields netlab does not model are warned about when set."""
    completions = spec.int("completions", None, lo=0, hi=100000)
    if completions is None and not spec.has("parallelism"):
        completions = 1
    parallelism = spec.int("parallelism", 1, lo=0, hi=100000)
    backoff = spec.int("backoffLimit", 6, lo=0, hi=2**31 - 1)
    indexed = spec.choice("completionMode", ("NonIndexed", "Indexed"), "NonIndexed") == \
        "Indexed"
    if indexed and completions is None:
        raise spec.error("completions", "Required value: when completionMode is Indexed")
    unmodelled = {
        "activeDeadlineSeconds": "the Job is not ended for running too long",
        "ttlSecondsAfterFinished": "a finished Job and its pods stay until deleted",
        "podFailurePolicy": "every failed pod counts against backoffLimit",
        "successPolicy": "the Job succeeds when its completions succeeded",
        "backoffLimitPerIndex": "only backoffLimit counts failures",
        "maxFailedIndexes": "only backoffLimit counts failures"}
    for name, effect in unmodelled.items():
        if spec.raw(name, None) is not None:
            warnings.append(f"{where}: spec.{name} is not modelled: {effect}")
    if spec.raw("suspend", None) is True:
        warnings.append(f"{where}: spec.suspend is not modelled: the Job runs")
    spec.ignore(*unmodelled, "suspend", "podReplacementPolicy", "managedBy")
    return JobSpec(completions, parallelism, backoff, indexed)


def _statefulset_update_strategy(m: Manifests, spec: Fields, ordered: bool) -> dict[str, Any]:
    """spec.updateStrategy of a StatefulSet, validated as the API server does
    (ValidateStatefulSetSpec): Workload's update_strategy (type), partition and
    max_unavailable (rollingUpdate's)."""
    strategy = spec.sub("updateStrategy")
    if strategy is None:
        return {}
    kind = strategy.choice("type", ("RollingUpdate", "OnDelete"), "RollingUpdate")
    rolling = strategy.sub("rollingUpdate")
    partition, max_unavailable = 0, None
    if rolling is not None and kind != "RollingUpdate":
        raise strategy.error("rollingUpdate", "only allowed for updateStrategy type "
                                              "RollingUpdate: remove it, or use that type")
    if rolling is not None:
        partition = rolling.int("partition", 0)
        if partition < 0:
            raise rolling.error("partition", f"{partition}: must be greater than or equal to 0")
        max_unavailable = rolling.raw("maxUnavailable", None)
        if max_unavailable is not None:  # ValidatePositiveIntOrPercent, not 0, at most 100%
            value = max_unavailable
            if isinstance(value, str) and re.fullmatch(r"[0-9]+%", value):
                value = int(value[:-1])
                if value > 100:
                    raise rolling.error("maxUnavailable", f"{max_unavailable!r}: must not be "
                                                          "greater than 100%")
            elif isinstance(value, bool) or not isinstance(value, int):
                raise rolling.error("maxUnavailable", f"{max_unavailable!r}: must be an integer "
                                                      "or a percentage such as '25%'")
            if value < 0:
                raise rolling.error("maxUnavailable", f"{value}: must be greater than or equal "
                                                      "to 0")
            if value == 0:
                raise rolling.error("maxUnavailable", f"{max_unavailable!r}: cannot be 0")
            if ordered and max_unavailable != 1:
                m.warnings.append(
                    f"{spec.where.obj}: {rolling.path}.maxUnavailable {max_unavailable} is "
                    "treated as 1 with podManagementPolicy OrderedReady: netlab updates one pod "
                    "at a time (it applies with podManagementPolicy Parallel)")
        rolling.done()
    strategy.done()
    return {"update_strategy": kind, "partition": partition, "max_unavailable": max_unavailable}


def _cron_job(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    m.warnings.append(f"{describe(key)}: not run: netlab does not schedule")


def _namespace(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    _, labels, _ = _meta(top)
    top.ignore("spec")
    top.done()
    labels = {**labels, "kubernetes.io/metadata.name": key[2]}
    m.namespaces[key[2]] = Namespace(key[2], labels, src)


def _add_namespaces(m: Manifests) -> None:
    """`default` and `kube-system` always exist; a namespace used but not declared is
    created, with a warning (kubectl would refuse the object)."""
    for ns in BUILTIN_NAMESPACES:
        m.namespaces.setdefault(ns, Namespace(ns, {"kubernetes.io/metadata.name": ns}))
    used = {k[1] for k in m.raw if k[1]}
    for ns in sorted(used - set(m.namespaces)):
        m.warnings.append(f"namespace {ns!r} is used but not declared; netlab creates it")
        m.namespaces[ns] = Namespace(ns, {"kubernetes.io/metadata.name": ns})


# --- services ---------------------------------------------------------------------------


def _service(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    _, labels, annotations = _meta(top)
    spec = top.sub("spec", required=True)
    assert spec is not None
    stype = spec.choice("type", ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"),
                        "ClusterIP")
    ports = []
    items = spec.items("ports")
    if not items and stype != "ExternalName":
        raise spec.error("ports", "must list at least one port")
    names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    for p in items:
        port = p.int("port", lo=1, hi=65535)
        proto = p.choice("protocol", PROTOCOLS, "TCP")
        name = p.name("name", "port name") if p.has("name") else None
        if len(items) > 1 and name is None:
            raise p.error("name", "is required when a Service has more than one port")
        if name in names:
            raise p.error("name", f"duplicate port name {name!r}")
        if (port, proto) in seen:
            raise p.error("port", f"{port}/{proto} is listed twice")
        seen.add((port, proto))
        names.add(name or "")
        unset = type(p.data.get("nodePort")) is int and p.data["nodePort"] == 0  # kubectl's
        p.ignore("nodePort")  # `get -o yaml` writes 0 for a port not allocated: not set
        node_port = None if unset else p.int("nodePort", None, lo=30000, hi=32767)
        if node_port is not None and stype not in ("NodePort", "LoadBalancer"):
            raise p.error("nodePort", f"may not be set for type {stype}")
        p.ignore("appProtocol")
        ports.append(ServicePort(port, proto, name, p.int_or_str("targetPort", None), node_port))
        p.done()
    cluster_ip, cluster_ips, families, family_policy = _service_ip_fields(spec, stype)
    external_ips = _external_ips(spec)
    source_ranges = _source_ranges(spec, stype, annotations)
    allocate = spec.bool("allocateLoadBalancerNodePorts") if spec.has(
        "allocateLoadBalancerNodePorts") else None
    if allocate is not None and stype != "LoadBalancer":
        raise spec.error("allocateLoadBalancerNodePorts", "Forbidden: may only be used when "
                                                          "`type` is 'LoadBalancer'")
    external_name = spec.str("externalName", None)
    if stype == "ExternalName" and not external_name:
        raise spec.error("externalName", "is required for type ExternalName")
    selector = spec.labels("selector") if spec.has("selector") else None
    affinity = spec.choice("sessionAffinity", ("None", "ClientIP"), "None")
    timeout = 10800
    cfg = spec.sub("sessionAffinityConfig")
    if cfg is not None:
        cip = cfg.sub("clientIP")
        if cip is not None:
            timeout = cip.int("timeoutSeconds", 10800, lo=1, hi=86400)
            cip.done()
        cfg.done()
    etp = spec.choice("externalTrafficPolicy", ("Cluster", "Local"), "Cluster")
    # apiservice.ExternallyAccessible: NodePort, LoadBalancer, or a ClusterIP Service with
    # externalIPs (validateServiceExternalTrafficPolicy)
    accessible = stype in ("NodePort", "LoadBalancer") or (
        stype == "ClusterIP" and bool(external_ips))
    if spec.has("externalTrafficPolicy") and not accessible:
        raise spec.error("externalTrafficPolicy", f'Invalid value: "{etp}": may only be set '
                                                  "for externally-accessible services")
    health = _health_check_node_port(spec, stype, etp)
    itp = spec.choice("internalTrafficPolicy", ("Cluster", "Local"), "Cluster")
    lb_ip = spec.str("loadBalancerIP", None)
    publish = spec.bool("publishNotReadyAddresses", False)
    distribution = spec.str("trafficDistribution", None)
    if distribution is not None and distribution not in TRAFFIC_DISTRIBUTIONS:
        raise spec.error("trafficDistribution", f'Unsupported value: "{distribution}": '
                                                "supported values: " + ", ".join(
                                                    f'"{d}"' for d in TRAFFIC_DISTRIBUTIONS))
    if distribution == "PreferClose":  # the API server's warning (1.34)
        spec.where.warnings.append(f'{spec.where.obj}: spec.trafficDistribution: "PreferClose" '
                                   'is deprecated; use "PreferSameZone"')
    if external_ips and (stype == "ExternalName" or cluster_ip == "None"):
        spec.where.warnings.append(  # the API server's warnings (GetWarningsForService)
            f"{spec.where.obj}: spec.externalIPs is ignored "
            + ('when spec.type is "ExternalName"' if stype == "ExternalName"
               else "for headless services"))
        external_ips = ()
    spec.done()
    top.done()
    m.services[f"{key[1]}/{key[2]}"] = Service(
        key[1], key[2], stype, tuple(ports), selector, cluster_ip, external_name, affinity,
        timeout, etp, itp, lb_ip, publish, labels, src, ip_family_policy=family_policy,
        ip_families=families, cluster_ips=cluster_ips, external_ips=external_ips,
        source_ranges=source_ranges, allocate_lb_node_ports=allocate,
        health_check_node_port=health, traffic_distribution=distribution)


# spec.trafficDistribution's values (validateServiceTrafficDistribution, with the
# PreferSameTrafficDistribution feature gate on, as it is by default since 1.34)
TRAFFIC_DISTRIBUTIONS = ("PreferClose", "PreferSameZone", "PreferSameNode")
SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"


def _external_ips(spec: Fields) -> tuple[str, ...]:
    """spec.externalIPs, each checked as ValidateService does: a valid IP address
    (IsValidIP), then ValidateNonSpecialIP."""
    out = []
    for i, ip in enumerate(spec.str_list("externalIPs")):
        path = f"externalIPs[{i}]"
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError as e:
            raise spec.error(path, f'Invalid value: "{ip}": must be a valid IP address, (e.g. '
                                   "10.9.8.7 or 2001:db8::ffff)") from e
        why = None
        if addr.is_unspecified:
            why = f"may not be unspecified ({ip})"
        elif addr.is_loopback:
            why = "may not be in the loopback range (127.0.0.0/8, ::1/128)"
        elif addr.is_link_local:
            why = "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
        elif addr in ipaddress.ip_network("224.0.0.0/24") or addr in ipaddress.ip_network(
                "ff02::/16"):
            why = "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
        if why:
            raise spec.error(path, f'Invalid value: "{ip}": {why}')
        out.append(ip)
    return tuple(out)


def _source_ranges(spec: Fields, stype: str, annotations: dict[str, str]) -> tuple[str, ...]:
    """spec.loadBalancerSourceRanges (or, when it is empty, the older annotation), as
    ValidateService checks them: only for type LoadBalancer, each (space-padding allowed) a
    CIDR. The API server names the field with a capital L."""
    ranges = [v.strip() for v in spec.str_list("loadBalancerSourceRanges")]
    path = "LoadBalancerSourceRanges"
    if not ranges and SOURCE_RANGES_ANNOTATION in annotations:
        text = annotations[SOURCE_RANGES_ANNOTATION].strip()
        ranges = [v.strip() for v in text.split(",")] if text else []
        where = f"metadata.annotations[{SOURCE_RANGES_ANNOTATION}]"
        if stype != "LoadBalancer":
            raise spec.where.error(where, "Forbidden: may only be used when `type` is "
                                          "'LoadBalancer'")
        for value in ranges:
            if not _is_cidr(value):
                raise spec.where.error(where, f'Invalid value: "{value}": must be a valid CIDR '
                                              "value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
        return tuple(ranges)
    if ranges and stype != "LoadBalancer":
        raise spec.error(path, "Forbidden: may only be used when `type` is 'LoadBalancer'")
    for i, value in enumerate(ranges):
        if not _is_cidr(value):
            raise spec.error(f"{path}[{i}]", f'Invalid value: "{value}": must be a valid CIDR '
                                             "value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
    return tuple(ranges)


def _is_cidr(value: str) -> bool:
    """netutils.ParseCIDRSloppy accepts it: an address, '/', a prefix length (bits after
    the prefix may be set: "10.0.0.5/24" is 10.0.0.0/24)."""
    if "/" not in value:
        return False
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _health_check_node_port(spec: Fields, stype: str, etp: str) -> int | None:
    """spec.healthCheckNodePort as validateServiceExternalTrafficPolicy checks it: only
    for a LoadBalancer with externalTrafficPolicy Local (apiservice.NeedsHealthCheck), a
    port number; 0 (how `get -o yaml` may write an unallocated one) is unset. Whether it
    is free and in the NodePort range is the allocator's business (services.py)."""
    value = spec.int("healthCheckNodePort", 0)
    if not value:
        return None
    if stype != "LoadBalancer" or etp != "Local":
        raise spec.error("healthCheckNodePort", f"Invalid value: {value}: may only be set when "
                                                "`type` is 'LoadBalancer' and "
                                                "`externalTrafficPolicy` is 'Local'")
    if not 1 <= value <= 65535:
        raise spec.error("healthCheckNodePort", f"Invalid value: {value}: must be between 1 "
                                                "and 65535, inclusive")
    return value


IP_FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")


def _go_strings(values: tuple[str, ...] | list[str]) -> str:
    """A []string as the API server's field errors print it (%#v)."""
    return "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"


def _ip_family(ip: str) -> str:
    return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"


def _service_ip_fields(spec: Fields, stype: str
                       ) -> tuple[str | None, tuple[str, ...], tuple[str, ...], str | None]:
    """spec.clusterIP/clusterIPs/ipFamilies/ipFamilyPolicy, checked as the API server does
    without looking at the cluster (ValidateService for ExternalName and
    ValidateServiceClusterIPsRelatedFields, with the Create strategy's normalisation:
    clusterIP and clusterIPs[0] are the same address). What needs the cluster (defaulting
    the policy and families, families the cluster has) is done when planning."""
    cluster_ip = spec.str("clusterIP", None)
    if cluster_ip == "":
        cluster_ip = None
    ips = [str(v) for v in spec.list("clusterIPs")]
    families = [str(v) for v in spec.list("ipFamilies")]
    policy = spec.str("ipFamilyPolicy", None)
    if stype == "ExternalName":
        for key, value in (("ipFamilies", families), ("ipFamilyPolicy", policy)):
            if value:
                raise spec.error(key, "Forbidden: may not be set for ExternalName services")
        return cluster_ip, tuple(ips), (), None
    if cluster_ip is not None and cluster_ip != "None":
        try:
            ipaddress.ip_address(cluster_ip)
        except ValueError as e:
            raise spec.error("clusterIP", f"Invalid value: \"{cluster_ip}\": must be a valid IP "
                                          "address, (e.g. 10.9.8.7 or 2001:db8::ffff)") from e
    if cluster_ip is None and ips:
        cluster_ip = ips[0]  # normalizeClusterIPs: clusterIP is clusterIPs[0]
    elif cluster_ip is not None and not ips:
        ips = [cluster_ip]
    elif cluster_ip is not None and ips[0] != cluster_ip:
        raise spec.error("clusterIPs", f"Invalid value: {_go_strings(ips)}: first value must "
                                       "match `clusterIP`")
    for i, fam in enumerate(families):
        if fam not in ("IPv4", "IPv6"):
            raise spec.error(f"ipFamilies[{i}]", f'Unsupported value: "{fam}": supported '
                                                 'values: "IPv4", "IPv6"')
        if fam in families[:i]:
            raise spec.error(f"ipFamilies[{i}]", f'Duplicate value: "{fam}"')
    if policy is not None and policy not in IP_FAMILY_POLICIES:
        raise spec.error("ipFamilyPolicy", f'Unsupported value: "{policy}": supported values: '
                                           '"PreferDualStack", "RequireDualStack", "SingleStack"')
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                raise spec.error("clusterIPs", f"Invalid value: {_go_strings(ips)}: 'None' must "
                                               "be the first and only value")
            continue
        try:
            ipaddress.ip_address(ip)
        except ValueError as e:
            raise spec.error(f"clusterIPs[{i}]", f'Invalid value: "{ip}": must be a valid '
                                                 "IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
                             ) from e
    if len(ips) > 2:
        raise spec.error("clusterIPs", f"Invalid value: {_go_strings(ips)}: may only hold up "
                                       "to 2 values")
    if len(ips) == 2 and _ip_family(ips[0]) == _ip_family(ips[1]):
        raise spec.error("clusterIPs", f"Invalid value: {_go_strings(ips)}: may specify no more "
                                       "than one IP for each IP family")
    if ips and ips != ["None"]:
        for i, (ip, fam) in enumerate(zip(ips, families, strict=False)):
            if _ip_family(ip) != fam:
                raise spec.error(f"clusterIPs[{i}]", f'Invalid value: "{ip}": expected an {fam} '
                                                     f"value as indicated by `ipFamilies[{i}]`")
    return cluster_ip, tuple(ips), tuple(families), policy


# --- Endpoints and EndpointSlices (the endpoints of a Service without a selector) ------

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_LINK_LOCAL = ipaddress.IPv4Network("169.254.0.0/16")
_LINK_LOCAL_MULTICAST = ipaddress.IPv4Network("224.0.0.0/24")
_LINK_LOCAL_MULTICAST6 = ipaddress.IPv6Network("ff02::/16")
_DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?"
                            r"(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _endpoint_ip(f: Fields, key: str, family: str | None = None) -> str:
    """An endpoint address, checked as the API server's ValidateEndpointIP does (and, in
    an EndpointSlice, as one of the slice's addressType)."""
    value = f.str(key)
    try:
        ip = ipaddress.ip_address(value)
    except ValueError as e:
        raise f.error(key, f"{value!r} must be a valid IP address") from e
    if family is not None and f"IPv{ip.version}" != family:
        raise f.error(key, f"{value!r} must be a valid {family} address")
    if ip.version == 6:
        for bad, text in ((ip.is_unspecified, "may not be unspecified (::)"),
                          (ip.is_loopback, "may not be in the loopback range (::1/128)"),
                          (ip.is_link_local, "may not be in the link-local range (fe80::/10)"),
                          (ip in _LINK_LOCAL_MULTICAST6,
                           "may not be in the link-local multicast range (ff02::/16)")):
            if bad:
                raise f.error(key, f"{value} {text}")
        return str(ip)
    for bad, text in ((ip.is_unspecified, "may not be unspecified (0.0.0.0)"),
                      (ip.is_loopback, "may not be in the loopback range (127.0.0.0/8)"),
                      (ip in _LINK_LOCAL, "may not be in the link-local range (169.254.0.0/16)"),
                      (ip in _LINK_LOCAL_MULTICAST,
                       "may not be in the link-local multicast range (224.0.0.0/24)")):
        if bad:
            raise f.error(key, f"{value} {text}")
    return str(ip)


def _endpoint_extra(a: Fields) -> tuple[str | None, tuple[str, str, str] | None]:
    node = a.str("nodeName", None)
    if node is not None and not _DNS_SUBDOMAIN.fullmatch(node):
        raise a.error("nodeName", f"{node!r} is not a valid node name (a DNS-1123 subdomain)")
    ref = a.sub("targetRef")
    target = None
    if ref is not None:
        target = (ref.str("kind", "Pod"), ref.str("namespace", ""), ref.str("name", ""))
        ref.ignore("uid", "apiVersion", "resourceVersion", "fieldPath")
        ref.done()
    return node, target


def _endpoint_ports(items: list[Fields], require_name: bool) -> tuple[EndpointPort, ...]:
    ports, names = [], set()
    for p in items:
        name = p.name("name", "port name") if p.has("name") and p.str("name") else ""
        if require_name and not name:
            raise p.error("name", "is required when there is more than one port")
        if name in names:
            raise p.error("name", f"Duplicate value: {name!r}")
        names.add(name)
        proto = p.choice("protocol", PROTOCOLS, "TCP")
        p.ignore("appProtocol")
        if not p.has("port"):  # allowed by the API; kube-proxy ignores such a port
            p.where.warnings.append(f"{p.where.obj}: {p.path} has no port: kube-proxy does "
                                    "not use it")
            p.done()
            continue
        ports.append(EndpointPort(name, p.int("port", lo=1, hi=65535), proto))
        p.done()
    return tuple(ports)


def _endpoints(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    _, labels, _ = _meta(top)
    groups = []
    for s in top.items("subsets"):
        addresses = []
        for field_, ready in (("addresses", True), ("notReadyAddresses", False)):
            for a in s.items(field_):
                ip = _endpoint_ip(a, "ip")
                node, target = _endpoint_extra(a)
                a.ignore("hostname")
                a.done()
                addresses.append(EndpointAddress(ip, ready, ready, False, node, target))
        if not addresses:
            raise s.error("", "must specify `addresses` or `notReadyAddresses`")
        items = s.items("ports")
        groups.append(EndpointGroup(tuple(addresses), _endpoint_ports(items, len(items) > 1)))
        s.done()
    top.done()
    m.endpoints[f"{key[1]}/{key[2]}"] = EndpointsObject(
        "Endpoints", key[1], key[2], key[2], tuple(groups), "IPv4", labels, src)


def _endpoint_slice(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    _, labels, _ = _meta(top)
    address_type = top.choice("addressType", ("IPv4", "IPv6", "FQDN"))
    where = f"{top.where.obj}"
    if address_type == "FQDN":
        top.ignore("endpoints", "ports")
        top.done()
        top.where.warnings.append(f"{where}: addressType {address_type} is not used "
                                  "(kube-proxy ignores the slice)")
        return
    endpoints = top.items("endpoints")
    if len(endpoints) > 1000:
        raise top.error("endpoints", f"Too many: {len(endpoints)}: must have at most 1000 items")
    addresses = []
    for e in endpoints:
        ips = e.str_list("addresses")
        if not ips:
            raise e.error("addresses", "must contain at least 1 address")
        if len(ips) > 100:
            raise e.error("addresses", f"Too many: {len(ips)}: must have at most 100 items")
        for i in range(len(ips)):  # consumers use the first; all must be valid
            _endpoint_ip(Fields({"ip": ips[i]}, f"{e.path}.addresses[{i}]", e.where), "ip",
                         address_type)
        cond = e.sub("conditions")
        cond = cond or Fields({}, f"{e.path}.conditions", e.where)
        ready = cond.bool("ready", True)
        serving = cond.bool("serving", ready)
        terminating = cond.bool("terminating", False)
        cond.done()
        node, target = _endpoint_extra(e)
        e.ignore("hostname", "zone", "hints", "deprecatedTopology")
        e.done()
        addresses.append(EndpointAddress(str(ipaddress.ip_address(ips[0])), ready, serving,
                                         terminating, node, target))
    items = top.items("ports")
    if len(items) > 100:
        raise top.error("ports", f"Too many: {len(items)}: must have at most 100 items")
    ports = _endpoint_ports(items, False)
    service = labels.get(SERVICE_NAME_LABEL)
    if service is None:
        top.where.warnings.append(f"{where}: it has no label {SERVICE_NAME_LABEL}, so no "
                                  "Service uses it")
    top.done()
    m.endpoint_slices[f"{key[1]}/{key[2]}"] = EndpointsObject(
        "EndpointSlice", key[1], key[2], service, (EndpointGroup(tuple(addresses), ports),),
        address_type, labels, src)


def _check_endpoint_owners(m: Manifests) -> None:
    """Hand-written endpoints are used only by a Service without a selector (a Service
    with one has its endpoints made from the pods it selects, as the controllers do)."""
    for obj in (*m.endpoints.values(), *m.endpoint_slices.values()):
        if obj.address_type == "IPv6" and not (m.cluster and m.cluster.dual_stack):
            m.warnings.append(f"{obj.source}: {obj.kind} {obj.namespace}/{obj.name}: "
                              "addressType IPv6 is not used in a single-stack (IPv4) cluster "
                              "(kube-proxy ignores the slice)")
            continue
        if obj.service is None or obj.address_type not in ("IPv4", "IPv6"):
            continue
        svc = m.services.get(f"{obj.namespace}/{obj.service}")
        what = f"{obj.source}: {obj.kind} {obj.namespace}/{obj.name}"
        if svc is None:
            m.warnings.append(f"{what}: there is no Service {obj.namespace}/{obj.service}; "
                              "nothing uses it")
        elif svc.selector is not None and obj.labels.get(
                "endpointslice.kubernetes.io/managed-by") != "netlab":
            m.warnings.append(f"{what}: Service {svc.namespace}/{svc.name} has a selector, so "
                              "its endpoints are the pods it selects; this object is ignored")


# --- network policy -------------------------------------------------------------------


def _cidr(f: Fields, key: str, value: str | None = None
          ) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An ipBlock CIDR of either family. An IPv4-mapped IPv6 one (::ffff:10.0.0.0/104) is
    the IPv4 block it maps, warned about as the API server does (GetWarningsForCIDR)."""
    value = f.str(key) if value is None else value
    if ":" not in value:
        try:
            return ipaddress.IPv4Network(value, strict=False)
        except ValueError as e:
            raise f.error(key, f"{value!r} is not a valid IPv4 CIDR") from e
    try:
        net = ipaddress.IPv6Network(value, strict=False)
    except ValueError as e:
        raise f.error(key, f"{value!r} is not a valid IPv6 CIDR") from e
    mapped = net.network_address.ipv4_mapped
    if mapped is not None and net.prefixlen >= 96:
        v4 = ipaddress.IPv4Network(f"{mapped}/{net.prefixlen - 96}")
        f.where.warnings.append(f'{f.where.obj}: {f._p(key)}: non-standard CIDR value '
                                f'"{value}" will be considered invalid in a future Kubernetes '
                                f'release: use "{v4}"')
        return v4
    return net


def _peer(p: Fields) -> PolicyPeer:
    pod_sel = _selector(p.sub("podSelector")) if p.has("podSelector") else None
    ns_sel = _selector(p.sub("namespaceSelector")) if p.has("namespaceSelector") else None
    block = None
    ib = p.sub("ipBlock")
    if ib is not None:
        if pod_sel is not None or ns_sel is not None:
            raise p.error("ipBlock", "may not be combined with podSelector or namespaceSelector "
                                     "in the same peer")
        block_net = _cidr(ib, "cidr")
        cidr = str(block_net)
        excepts = []
        for i, e in enumerate(ib.str_list("except")):
            net = _cidr(ib, f"except[{i}]", e)
            if net.version != block_net.version or (
                    block_net.version == 6 and (net == block_net
                                                or not net.subnet_of(block_net))):
                # ValidateIPBlock: each except is a strict subset of cidr (so of its family)
                raise ib.error(f"except[{i}]", "must be a strict subset of `cidr`")
            if not net.subnet_of(block_net):  # IPv4: netlab's message, as before
                raise ib.error(f"except[{i}]", f"{e} is not inside cidr {cidr}")
            excepts.append(str(net))
        ib.done()
        block = IPBlock(cidr, tuple(excepts))
    if pod_sel is None and ns_sel is None and block is None:
        p.done()
        raise p.error("", "a peer needs podSelector, namespaceSelector or ipBlock")
    p.done()
    return PolicyPeer(pod_sel, ns_sel, block)


def _policy_rules(spec: Fields, key: str, peers_key: str) -> tuple[PolicyRule, ...]:
    rules = []
    for r in spec.items(key):
        peers = tuple(_peer(p) for p in r.items(peers_key))
        ports = []
        for p in r.items("ports"):
            proto = p.choice("protocol", PROTOCOLS, "TCP")
            port = p.int_or_str("port", None)
            end = p.int("endPort", None, lo=1, hi=65535)
            if end is not None:
                if not isinstance(port, int):
                    raise p.error("endPort", "needs a numeric port")
                if end < port:
                    raise p.error("endPort", f"{end} is below port {port}")
            ports.append(PolicyPort(proto, port, end))
            p.done()
        rules.append(PolicyRule(peers, tuple(ports)))
        r.done()
    return tuple(rules)


def _network_policy(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    _meta(top)
    spec = top.sub("spec", required=True)
    assert spec is not None
    if not spec.has("podSelector") and "podSelector" not in spec.data:
        raise spec.error("podSelector", "is required (use {} to select every pod)")
    spec.ignore("podSelector")
    pod_selector = _selector(Fields(spec.data.get("podSelector") or {}, spec._p("podSelector"),
                                    spec.where))
    ingress = _policy_rules(spec, "ingress", "from")
    egress = _policy_rules(spec, "egress", "to")
    types = spec.str_list("policyTypes")
    for i, t in enumerate(types):
        if t not in ("Ingress", "Egress"):
            raise spec.error(f"policyTypes[{i}]", f"{t!r} is not Ingress or Egress")
    if not types:  # documented default: Ingress always, Egress when egress rules exist
        types = ("Ingress", "Egress") if spec.data.get("egress") else ("Ingress",)
    spec.done()
    top.done()
    m.network_policies[f"{key[1]}/{key[2]}"] = NetworkPolicy(
        key[1], key[2], pod_selector, tuple(dict.fromkeys(types)), ingress, egress, src)


# --- ingress and secrets ----------------------------------------------------------------


def _backend(b: Fields) -> IngressBackend:
    svc = b.sub("service")
    res = b.sub("resource")
    if svc is None and res is None:
        raise b.error("service", "is required")
    if svc is not None:
        name = svc.name("name", "Service name")
        port = svc.sub("port", required=True)
        assert port is not None
        number = port.int("number", None, lo=1, hi=65535)
        pname = port.str("name", None)
        if (number is None) == (pname is None):
            raise port.error("", "needs exactly one of number or name")
        port.done()
        svc.done()
        b.done()
        return IngressBackend(name, number, pname)
    assert res is not None
    res.ignore("apiGroup")
    kind = res.str("kind")
    rname = res.str("name")
    res.done()
    b.done()
    return IngressBackend(resource=f"{kind}/{rname}")


def _host(f: Fields, key: str, value: str) -> str:
    import re

    label = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
    if not re.fullmatch(rf"(\*\.)?{label}(\.{label})*", value):
        raise f.error(key, f"{value!r} is not a valid host: a DNS name, optionally starting "
                           "with '*.'; no IP addresses, ports or upper case")
    return value


def _ingress(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    _, _, annotations = _meta(top)
    spec = top.sub("spec", required=True)
    assert spec is not None
    class_name = spec.str("ingressClassName", None)
    if class_name is not None and LEGACY_INGRESS_CLASS in annotations:
        raise top.error(f"metadata.annotations.{LEGACY_INGRESS_CLASS}",
                        f"Invalid value: {annotations[LEGACY_INGRESS_CLASS]!r}: can not be set "
                        "when the class field is also set")
    db = spec.sub("defaultBackend")
    default_backend = _backend(db) if db is not None else None
    rules = []
    for r in spec.items("rules"):
        host = _host(r, "host", r.str("host")) if r.has("host") else None
        http = r.sub("http")
        paths = []
        if http is not None:
            for p in http.items("paths", required=True):
                ptype = p.choice("pathType", ("Prefix", "Exact", "ImplementationSpecific"))
                path = p.str("path", None)
                if ptype in ("Prefix", "Exact") and (path is None or not path.startswith("/")):
                    raise p.error("path", f"must be an absolute path starting with '/' for "
                                          f"pathType {ptype}")
                backend = p.sub("backend", required=True)
                assert backend is not None
                paths.append(IngressPath(path, ptype, _backend(backend)))
                p.done()
            http.done()
        rules.append(IngressRule(host, tuple(paths)))
        r.done()
    tls = []
    for t in spec.items("tls"):
        hosts = tuple(_host(t, f"hosts[{i}]", h) for i, h in enumerate(t.str_list("hosts")))
        tls.append(IngressTLS(hosts, t.str("secretName", None)))
        t.done()
    if not rules and default_backend is None:
        raise spec.error("rules", "an Ingress needs rules or a defaultBackend")
    spec.done()
    top.done()
    m.ingresses[f"{key[1]}/{key[2]}"] = Ingress(key[1], key[2], class_name, tuple(rules),
                                                default_backend, tuple(tls), annotations, src)


LEGACY_INGRESS_CLASS = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"


def _ingress_class(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    """networking.k8s.io/v1 IngressClass, validated as the API server does
    (ValidateIngressClass); spec.parameters is kept but not modelled (warned)."""
    _, labels, annotations = _meta(top)
    spec = top.sub("spec")
    controller = spec.str("controller", "") if spec is not None else ""

    def bad(message: str) -> InputError:
        return top.error("spec.controller", message)

    if len(controller) > 250:
        raise bad("Too long: may not be more than 250 bytes")
    domain, slash, path = controller.partition("/")
    if not slash or not domain or not path:
        raise bad(f"Invalid value: {controller!r}: must be a domain-prefixed path (such as "
                  "\"acme.io/foo\")")
    label = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
    if len(domain) > 253 or not re.fullmatch(rf"{label}(\.{label})*", domain):
        raise bad(f"Invalid value: {domain!r}: a lowercase RFC 1123 subdomain must consist of "
                  "lower case alphanumeric characters, '-' or '.'")
    if not re.fullmatch(r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+", path):
        raise bad(f"Invalid value: {path!r}: must be a valid path")
    params = None
    p = spec.sub("parameters") if spec is not None else None
    if p is not None:
        kind, name = p.str("kind"), p.str("name")
        for k, v in (("kind", kind), ("name", name)):
            if v in (".", "..") or "/" in v or "%" in v:
                raise p.error(k, f"Invalid value: {v!r}: may not be '.' or '..' or contain "
                                 "'/' or '%'")
        scope = p.choice("scope", ("Cluster", "Namespace"), "Cluster")  # the API's default
        ns = p.str("namespace", None)
        if scope == "Namespace" and ns is None:
            raise p.error("namespace", "Required value: `parameters.scope` is set to "
                                       "'Namespace'")
        if scope == "Cluster" and ns is not None:
            raise p.error("namespace", "Forbidden: `parameters.scope` is set to 'Cluster'")
        if ns is not None:
            p.name("namespace", "namespace")
        params = IngressClassParameters(kind, name, p.str("apiGroup", None), scope, ns)
        p.done()
        top.where.warnings.append(
            f"{top.where.obj}: spec.parameters ({kind} {name}) is not modelled by netlab: "
            "the controller's configuration it points to is not used")
    if spec is not None:
        spec.done()
    top.done()
    m.ingress_classes[key[2]] = IngressClass(
        key[2], controller, params, annotations.get(DEFAULT_CLASS_ANNOTATION) == "true",
        annotations, labels, src)


def _secret(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    _meta(top)
    stype = top.str("type", "Opaque")
    data: dict[str, bytes] = {}
    for k, v in top.str_map("data").items():
        try:
            data[k] = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError) as e:
            raise top.error(f"data.{k}", "is not valid base64") from e
    for k, v in top.str_map("stringData").items():
        data[k] = v.encode()
    if stype == "kubernetes.io/tls":
        for needed in ("tls.crt", "tls.key"):
            if needed not in data:
                raise top.error("data", f"a kubernetes.io/tls Secret needs {needed!r}")
    top.ignore("immutable")
    top.done()
    m.secrets[f"{key[1]}/{key[2]}"] = Secret(key[1], key[2], stype, data, src)


def _config_map(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    _meta(top)
    data = top.str_map("data")
    binary: dict[str, bytes] = {}
    for k, v in top.str_map("binaryData").items():
        try:
            binary[k] = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError) as e:
            raise top.error(f"binaryData.{k}", "is not valid base64") from e
    for k in (*data, *binary):
        if len(k) > 253 or not _CONFIG_KEY.match(k) or k in (".", ".."):
            raise top.error(f"data.{k}" if k in data else f"binaryData.{k}",
                            f"{k!r} is not a valid config key (letters, digits, '-', '_', '.')")
        if k in data and k in binary:
            raise top.error(f"binaryData.{k}", f"Invalid value: {k!r}: duplicate of key "
                                               "present in data")
    immutable = top.bool("immutable", False)
    top.done()
    m.config_maps[f"{key[1]}/{key[2]}"] = ConfigMap(key[1], key[2], data, binary, immutable, src)


# --- the Cluster document ---------------------------------------------------------------


def _network(f: Fields, key: str, default: str) -> ipaddress.IPv4Network:
    value = f.str(key, default)
    try:
        return ipaddress.IPv4Network(value)
    except ValueError as e:
        raise f.error(key, f"{value!r} is not a valid IPv4 CIDR (e.g. 10.244.0.0/16, with no "
                           "host bits set)") from e


Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _ranges(f: Fields, key: str, value: str) -> list[Net]:
    """A kubeadm-style range: "CIDR" or "CIDR,CIDR" of the two families (the first is the
    primary family)."""
    nets: list[Net] = []
    for p in (p.strip() for p in value.split(",")):
        try:
            nets.append(ipaddress.ip_network(p))
        except ValueError as e:
            raise f.error(key, f"{p!r} is not a valid CIDR (e.g. 10.244.0.0/16, "
                               "fd00:10:244::/56 or 10.244.0.0/16,fd00:10:244::/56, with no "
                               "host bits set)") from e
    if len(nets) > 2:
        raise f.error(key, f"{value!r}: at most two ranges, one per IP family")
    if len(nets) == 2 and nets[0].version == nets[1].version:
        raise f.error(key, f"{value!r}: the two ranges must be of different IP families "
                           "(IPv4,IPv6 or IPv6,IPv4)")
    return nets


def _family_of(net: Net | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return f"IPv{net.version}"


def _cluster(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    if m.cluster is not None:
        raise top.error("kind", "only one Cluster document is allowed")
    meta = top.sub("metadata")
    if meta is not None:
        meta.ignore("name")
        meta.done()
    spec = top.sub("spec") or Fields({}, "spec", top.where)
    d = Cluster()
    # podCIDR says the cluster's families: IPv4, IPv6 (IPv6-only) or both, the first primary
    pods = _ranges(spec, "podCIDR", spec.str("podCIDR", d.pod_cidr))
    primary = _family_of(pods[0])
    have = {_family_of(n) for n in pods}

    def per_family(key: str, default4: str, default6: str) -> dict[str, Net]:
        """A range for each family of the cluster: the given ones, or the defaults when the
        field is not given. A range of a family the cluster lacks is refused."""
        if not spec.has(key):
            return {f: ipaddress.ip_network(v) for f, v in (("IPv4", default4),
                                                            ("IPv6", default6)) if f in have}
        given = _ranges(spec, key, spec.str(key))
        for n in given:
            if _family_of(n) not in have:
                raise spec.error(key, f"{n} is an {_family_of(n)} range but podCIDR has none: "
                                      + ("give podCIDR an IPv6 range too (dual-stack)"
                                         if n.version == 6 else
                                         "this is an IPv6-only cluster (give podCIDR an IPv4 "
                                         "range too for dual-stack)"))
        if len(given) == 2 and _family_of(given[0]) != primary:
            raise spec.error(key, f"lists {_family_of(given[0])} first but podCIDR lists "
                                  f"{primary} first: list the ranges in the same order (the "
                                  "first is the primary family)")
        return {_family_of(n): n for n in given}

    pod_nets = {_family_of(n): n for n in pods}
    pod_net, pod6 = pod_nets.get("IPv4"), pod_nets.get("IPv6")
    mask, mask6 = d.node_cidr_mask, d.node_cidr_mask6
    if pod_net is not None:
        mask = spec.int("podCIDRMaskSize", d.node_cidr_mask, lo=pod_net.prefixlen, hi=29)
    if pod6 is not None:
        # a single-stack IPv6 cluster takes podCIDRMaskSize too (kube-controller-manager's
        # --node-cidr-mask-size is per family in single-stack clusters)
        mask_key = "podCIDRMaskSize" if pod_net is None and spec.has("podCIDRMaskSize") \
            else "podCIDRMaskSizeIPv6"
        mask6 = spec.int(mask_key, d.node_cidr_mask6, lo=pod6.prefixlen, hi=120)
        if mask6 - pod6.prefixlen > 16:  # kube-controller-manager's clusterSubnetMaxDiff
            raise spec.error(mask_key, f"/{mask6} node ranges are more than 16 bits longer "
                                       f"than podCIDR {pod6}: kube-controller-manager refuses "
                                       "it (with /64 per node, the IPv6 range must be /48 or "
                                       "longer)")
    elif spec.has("podCIDRMaskSizeIPv6"):
        raise spec.error("podCIDRMaskSizeIPv6", "is only for clusters with IPv6: give "
                                                "podCIDR an IPv6 range too")
    services = per_family("serviceCIDR", d.service_cidr, "fd00:10:96::/112")
    svc6 = services.get("IPv6")
    if svc6 is not None and svc6.max_prefixlen - svc6.prefixlen > 20:  # kube-apiserver's
        raise spec.error("serviceCIDR", f"{svc6} is too large: kube-apiserver takes at most "
                                        "20 bits of Service addresses (/108 or longer for "
                                        "IPv6)")
    underlays = per_family("underlayCIDR", d.underlay_cidr, d.underlay_cidr6)
    internets = per_family("internetCIDR", d.internet_cidr, d.internet_cidr6)
    for family in have:
        group = {k: v[family] for k, v in (("podCIDR", pod_nets), ("serviceCIDR", services),
                                           ("underlayCIDR", underlays),
                                           ("internetCIDR", internets)) if family in v}
        names_ = list(group)
        for i, a in enumerate(names_):
            for b in names_[i + 1:]:
                if group[a].overlaps(group[b]):  # type: ignore[arg-type]
                    raise spec.error(b, f"{group[b]} overlaps {a} {group[a]}")
    backend = spec.choice("backend", ("vxlan", "host-gw", "bgp"), d.backend)
    if spec.has("proxyMode") and spec.str("proxyMode") == "ipvs":
        raise spec.error("proxyMode", "'ipvs' is not available: this kernel has no ip_vs "
                                      "module, and kube-proxy deprecated the IPVS mode "
                                      "(1.35); use nftables (the default) or iptables")
    proxy_mode = spec.choice("proxyMode", ("nftables", "iptables"), d.proxy_mode)
    mtu = spec.int("mtu", d.mtu, lo=1280, hi=9000)
    # kubelet's clusterDNS: .10 of the primary family's Service range (kubeadm's choice)
    svc_primary = primary if primary in services else next(iter(services))
    dns = spec.str("clusterDNS", str(services[svc_primary].network_address + 10))
    try:
        dns_ip = ipaddress.ip_address(dns)
    except ValueError as e:
        raise spec.error("clusterDNS", f"{dns!r} is not an IP address") from e
    dns_net = services.get(_family_of(dns_ip))
    if dns_net is None or dns_ip not in dns_net:
        raise spec.error("clusterDNS", f"{dns} is not inside serviceCIDR "
                                       f"{','.join(map(str, services.values()))}")
    domain = spec.str("clusterDomain", d.cluster_domain)
    # "range[,range]" (either order), one per family of the cluster; by default hosts
    # .200-.250 of the underlay (the IPv4 default 172.18.0.200-172.18.0.250)
    pools: dict[str, str] = {}
    for family, net in underlays.items():
        n = net.num_addresses
        first, last = (200, 250) if n > 251 else (n // 2, n - 2)
        pools[family] = f"{net[first]}-{net[last]}"
    given_pools: set[str] = set()
    for part in spec.str("loadBalancerPool", "").split(",") if spec.has("loadBalancerPool") \
            else ():
        try:
            lo_s, _, hi_s = part.partition("-")
            lo, hi = (ipaddress.ip_address(lo_s.strip()),
                      ipaddress.ip_address((hi_s or lo_s).strip()))
            if lo.version != hi.version:
                raise ValueError(part)
        except ValueError as e:
            raise spec.error("loadBalancerPool", f"{part.strip()!r} is not an address range "
                                                 "like 172.18.0.200-172.18.0.250") from e
        family = _family_of(lo)
        net = underlays.get(family)
        if net is None:
            raise spec.error("loadBalancerPool", f"{part.strip()} is an {family} range but "
                                                 "podCIDR has none")
        if family in given_pools:
            raise spec.error("loadBalancerPool", f"has two {family} ranges")
        if lo > hi or lo not in net or hi not in net:
            raise spec.error("loadBalancerPool", f"{part.strip()} must be a range inside "
                                                 f"underlayCIDR {net}")
        given_pools.add(family)
        pools[family] = f"{lo}-{hi}"
    nodes_raw = spec.raw("nodes", 2)
    nodes: list[NodeSpec] = []
    if isinstance(nodes_raw, int) and not isinstance(nodes_raw, bool):
        if not 1 <= nodes_raw <= 64:
            raise spec.error("nodes", f"{nodes_raw} is out of range 1-64")
        nodes = [NodeSpec(f"node-{i + 1}") for i in range(nodes_raw)]
    elif isinstance(nodes_raw, list) and nodes_raw:
        for i, item in enumerate(nodes_raw):
            path = f"nodes[{i}]"
            if isinstance(item, str):
                item = {"name": item}
            n = Fields(item, f"spec.{path}", top.where)
            name = n.name("name", "node name")
            cidr = None
            if n.has("podCIDR"):
                if pod_net is None:
                    raise n.error("podCIDR", "a node's own podCIDR is an IPv4 range, and this "
                                             "is an IPv6-only cluster")
                net = _network(n, "podCIDR", "")
                if not net.subnet_of(pod_net):
                    raise n.error("podCIDR", f"{net} is outside the cluster podCIDR {pod_net}")
                if net.prefixlen > 29:
                    raise n.error("podCIDR", f"{net} is too small for pods (/29 at most)")
                for other in nodes:
                    if other.pod_cidr and ipaddress.IPv4Network(other.pod_cidr).overlaps(net):
                        raise n.error("podCIDR", f"{net} overlaps node {other.name}'s "
                                                 f"{other.pod_cidr}")
                cidr = str(net)
            if any(o.name == name for o in nodes):
                raise n.error("name", f"duplicate node name {name!r}")
            labels = n.labels("labels")  # on top of kubernetes.io/hostname, os, arch
            n.done()
            nodes.append(NodeSpec(name, cidr, labels))
    else:
        raise spec.error("nodes", "must be a node count or a list of node names / "
                                  "{name, podCIDR, labels} entries")
    if len(nodes) > 64:
        raise spec.error("nodes", "at most 64 nodes")
    for net in underlays.values():
        if net.num_addresses - 16 < len(nodes):
            raise spec.error("underlayCIDR", f"{net} is too small for {len(nodes)} nodes")
    dns_addon = spec.bool("dns", d.dns)
    upstream_dns = spec.bool("upstreamDNS", d.upstream_dns)
    ingress_class = spec.name("ingressClass", "IngressClass name") if spec.has(
        "ingressClass") else d.ingress_class
    backoff_initial, backoff_max = d.backoff_initial, d.backoff_max
    backoff = spec.sub("restartBackOff")
    if backoff is not None:  # kubelet's CrashLoopBackOff timing, shortened for a lab
        backoff_initial = backoff.number("initialSeconds", d.backoff_initial, lo=0.1, hi=300)
        backoff_max = backoff.number("maxSeconds", d.backoff_max, lo=backoff_initial, hi=3600)
        backoff.done()
    cni_config, cni_bins, cni_timeout = _cni(spec, d)
    bgp = _bgp(spec, d, backend, nodes)
    spec.done()
    top.done()

    def cidr(nets: dict[str, Net], family: str) -> str:
        return str(nets[family]) if family in nets else ""

    m.cluster = Cluster(nodes=tuple(nodes), pod_cidr=cidr(pod_nets, "IPv4"),
                        node_cidr_mask=mask, service_cidr=cidr(services, "IPv4"),
                        underlay_cidr=cidr(underlays, "IPv4"), backend=backend,
                        mtu=mtu, cluster_dns=dns, cluster_domain=domain,
                        load_balancer_pool=pools.get("IPv4", ""),
                        internet_cidr=cidr(internets, "IPv4"), dns=dns_addon,
                        upstream_dns=upstream_dns, ingress_class=ingress_class,
                        backoff_initial=backoff_initial, backoff_max=backoff_max,
                        pod_cidr6=cidr(pod_nets, "IPv6"), node_cidr_mask6=mask6,
                        service_cidr6=cidr(services, "IPv6"),
                        underlay_cidr6=cidr(underlays, "IPv6") or d.underlay_cidr6,
                        internet_cidr6=cidr(internets, "IPv6") or d.internet_cidr6,
                        load_balancer_pool6=pools.get("IPv6", d.load_balancer_pool6),
                        primary_family=primary, proxy_mode=proxy_mode,
                        cni_config=cni_config, cni_bin_dirs=cni_bins,
                        cni_timeout=cni_timeout, **bgp, source=src)


def _bgp(spec: Fields, d: Cluster, backend: str, nodes: list[NodeSpec]) -> dict[str, Any]:
    """spec.bgp (backend bgp only): `asNumber` (Calico's default 64512), `routeReflector`
    (a node's name: every other node peers with it alone instead of the full mesh),
    `external` (the `external` router peers with every node over eBGP) and `externalAS`."""
    f = spec.sub("bgp")
    if f is None:
        return {}
    if backend != "bgp":
        raise spec.error("bgp", f"is for backend bgp (this cluster's backend is {backend})")
    asn = f.int("asNumber", d.bgp_as, lo=1, hi=4294967295)
    rr = f.str("routeReflector", "")
    if rr and rr not in {n.name for n in nodes}:
        raise f.error("routeReflector", f"{rr!r} is not a node of this cluster "
                                        f"({', '.join(n.name for n in nodes)})")
    external = f.bool("external", d.bgp_external)
    external_as = f.int("externalAS", d.bgp_external_as, lo=1, hi=4294967295)
    if external_as == asn:
        raise f.error("externalAS", f"{external_as} is the cluster's own AS: the external "
                                    "router peers over eBGP, from another AS")
    f.done()
    return {"bgp_as": asn, "bgp_route_reflector": rr, "bgp_external": external,
            "bgp_external_as": external_as}


def _cni(spec: Fields, d: Cluster) -> tuple[str, str, float]:
    """spec.cni: CNI mode. `config` (a network configuration list as it would sit in
    /etc/cni/net.d, inline) or `configFile` (its path, relative to this file), `binDir` (a
    directory or a list: CNI_PATH), `timeoutSeconds` per plugin call. Checked here, before
    anything is made: the list (netlab.cni), and that every plugin is in a bin directory.
    Returns (config JSON text, CNI_PATH, timeout); ("", default, default) = native mode."""
    from netlab.cni import parse_conflist

    cni = spec.sub("cni")
    if cni is None:
        return "", d.cni_bin_dirs, d.cni_timeout
    bins_raw = cni.raw("binDir", d.cni_bin_dirs)
    bins = [bins_raw] if isinstance(bins_raw, str) else bins_raw
    if not isinstance(bins, list) or not bins or not all(
            isinstance(b, str) and b.startswith("/") for b in bins):
        raise cni.error("binDir", "must be an absolute directory or a list of them (default "
                                  "/usr/lib/cni, Debian's containernetworking-plugins)")
    timeout = cni.number("timeoutSeconds", d.cni_timeout, lo=1, hi=300)
    where = cni.where
    if cni.has("config") == cni.has("configFile"):
        raise cni.error("config", "give config (a network configuration list, as in "
                                  "/etc/cni/net.d) or configFile (its path), one of them")
    if cni.has("config"):
        data: Any = cni.raw("config")
        field_ = cni._p("config")
    else:
        name = cni.str("configFile")
        path = Path(name) if Path(name).is_absolute() else Path(where.file).parent / name
        field_ = cni._p("configFile")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise cni.error("configFile", f"cannot read {path}: {e.strerror}") from e
    try:
        conflist = parse_conflist(data, where=field_, file=where.file)
    except InputError as e:
        raise where.error(e.field or field_, e.detail) from e
    for i, plugin in enumerate(conflist.plugins):
        if not any(os.path.isfile(os.path.join(b, plugin.type)) for b in bins):
            raise where.error(f"{field_}.plugins[{i}].type",
                              f"plugin {plugin.type!r} is not in {':'.join(bins)} (install "
                              "containernetworking-plugins, or set binDir to where it is)")
    cni.done()
    return conflist.raw.decode(), ":".join(bins), timeout


def _expectation(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    from netlab.model import Expectation, ExpectCheck

    meta = top.sub("metadata")
    if meta is not None:
        meta.ignore("name")
        meta.done()
    spec = top.sub("spec", required=True)
    assert spec is not None
    checks = []
    for c in spec.items("checks", required=True):
        src_ = c.str("from")
        name = c.str("name", "")
        labels = tuple(sorted(c.str_map("answeredBy").items())) if c.has("answeredBy") else ()
        client = c.str("clientIP", None)
        if c.has("dns"):
            expect = c.choice("expect", ("resolves", "nxdomain"), "resolves")
            resolves = c.raw("resolvesTo", [])
            resolves = (resolves,) if isinstance(resolves, str) else tuple(map(str, resolves))
            checks.append(ExpectCheck("dns", src_, name, c.str("dns"), expect=expect,
                                      dns_type=c.str("type", "").upper(),
                                      resolves_to=resolves))
        elif c.has("http"):
            url = c.str("http")
            if not url.startswith(("http://", "https://")):
                raise c.error("http", f"{url!r} is not an http:// or https:// URL")
            checks.append(http_check(c, src_, name, url, labels))
        else:
            if client is not None and client not in ("pod", "node"):
                try:
                    client = str(ipaddress.ip_address(client))
                except ValueError as e:
                    raise c.error("clientIP", f"{client!r}: use pod, node or an IP "
                                              "address") from e
            checks.append(ExpectCheck(
                "connect", src_, name, c.str("to"), c.int("port", None, lo=1, hi=65535),
                c.choice("protocol", ("tcp", "udp", "sctp", "icmp"), None),
                c.choice("expect", ("connected", "blocked"), "connected"), labels, client,
                family=c.choice("family", ("IPv4", "IPv6"), None)))
        c.done()
    spec.done()
    top.done()
    m.expectations[key[2]] = Expectation(key[2], tuple(checks), src)


def _cluster_network_policy(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    """ClusterNetworkPolicy (v1alpha2), AdminNetworkPolicy, BaselineAdminNetworkPolicy
    (v1alpha1): netlab.policy.cluster reads and checks every field itself."""
    top.ignore(*top.data)
    policy = parse_cluster_policy(top.data, src.file, src.line, m.warnings)
    m.cluster_network_policies[policy.key] = policy


def _gateway_api(m: Manifests, key: ObjectKey, top: Fields, src: Source) -> None:
    """GatewayClass, Gateway, HTTPRoute, ReferenceGrant: netlab.gateway.api reads and
    checks every field itself (as the CRDs do)."""
    top.ignore(*top.data)
    obj = parse_gateway_api(top.data, src.file, src.line, m.warnings)
    getattr(m, GATEWAY_API_FIELDS[key[0]])[obj.key] = obj


GATEWAY_API_FIELDS = {"GatewayClass": "gateway_classes", "Gateway": "gateways",
                      "HTTPRoute": "http_routes", "ReferenceGrant": "reference_grants"}

PARSERS = {
    "Namespace": _namespace,
    "Pod": _pod,
    "Deployment": _deployment,
    "ReplicaSet": _workload,
    "ReplicationController": _workload,
    "DaemonSet": _workload,
    "StatefulSet": _workload,
    "Job": _workload,
    "CronJob": _cron_job,
    "Service": _service,
    "Endpoints": _endpoints,
    "EndpointSlice": _endpoint_slice,
    "NetworkPolicy": _network_policy,
    "Ingress": _ingress,
    "IngressClass": _ingress_class,
    "Secret": _secret,
    "ConfigMap": _config_map,
    "Cluster": _cluster,
    "Expectation": _expectation,
    **{kind: _cluster_network_policy for kind in CLUSTER_POLICY_KINDS},
    **{kind: _gateway_api for kind in GATEWAY_API_KINDS},
}


def load(paths: Iterable[str | Path]) -> Manifests:
    return build(read_files(paths))


def as_docs(items: Iterable[Any]) -> list[RawDoc]:
    """Manifests given to the API: YAML strings, dicts, or paths."""
    docs: list[RawDoc] = []
    for n, item in enumerate(items):
        if isinstance(item, dict):
            docs.append(RawDoc(item, f"<manifest {n}>"))
        elif isinstance(item, str) and ("\n" in item or ":" in item):
            docs.extend(read_text(item, f"<manifest {n}>"))
        else:
            docs.extend(read_files([item]))
    return docs
