"""network-policy-api's ClusterNetworkPolicy conformance cases as data
(tests/unit/data/cluster_netpol/conformance.yaml; its header says how it was written),
replayed step by step. Shared by the engine's unit test and the kernel's integration test:
both apply the same changes and ask the same probes, one of the engine, one of a lab."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).parent / "unit" / "data" / "cluster_netpol" / "conformance.yaml"
PREFIX = "network-policy-conformance-"
V2 = "policy.networking.k8s.io/v1alpha2"
PROBE = re.compile(r"(\S+)/(\S+) -> (\S+)/(\S+) (\w+)/(\S+) (allow|deny)")


@cache
def conformance() -> dict:
    return yaml.safe_load(DATA.read_text())


def cases() -> list[dict]:
    return conformance()["cases"]


def field_path(path: str) -> list[str | int]:
    """`spec.egress[5].protocols` -> ["spec", "egress", 5, "protocols"]."""
    return [int(i) if i else k for k, i in re.findall(r"(\w+)|\[(\d+)\]", path)]


def host_network_port(text: str) -> str:
    ports = conformance()["host_network_ports"]
    return re.sub(r"HostNetworkPorts\[(\d)\]", lambda m: str(ports[int(m.group(1))]), text)


@dataclass(frozen=True)
class Probe:
    src: str  # "namespace/pod" with the namespace's prefix
    dst: str
    protocol: str  # TCP, UDP, SCTP
    port: int
    allow: bool


class Replay:
    """The objects of one case, changed step by step as the Go test changes them.
    `address(pod_key)` gives a pod's address in the family under test (for the CIDRs the
    Go test builds from pod addresses)."""

    def __init__(self, manifests: list[str], family: str,
                 address: Callable[[str], str]) -> None:
        self.family = family
        self.address = address
        self.namespaces = {n: {**labels, "kubernetes.io/metadata.name": n}
                           for n, labels in conformance()["namespaces"].items()}
        self.objects: dict[str, dict] = {}
        for path in manifests:
            for doc in conformance()["manifests"][path]:
                doc = self.substitute(copy.deepcopy(doc))
                doc.setdefault("apiVersion", V2)
                doc.setdefault("kind", "ClusterNetworkPolicy")
                meta = doc["metadata"]
                ns = f"{meta['namespace']}/" if "namespace" in meta else ""
                self.objects[f"{doc['kind']} {ns}{meta['name']}"] = doc

    def substitute(self, obj: Any) -> Any:
        if isinstance(obj, str):
            if re.fullmatch(r"HostNetworkPorts\[(\d)\]", obj):
                return int(host_network_port(obj))
            obj = host_network_port(obj)
            obj = obj.replace("$(mask)", "/128" if self.family == "IPv6" else "/32")
            return re.sub(r"\$\(([\w-]+)/([\w-]+)\)",
                          lambda m: self.address(f"{PREFIX}{m.group(1)}/{m.group(2)}"), obj)
        if isinstance(obj, list):
            return [self.substitute(x) for x in obj]
        if isinstance(obj, dict):
            return {k: self.substitute(v) for k, v in obj.items()}
        return obj

    def policy(self, name: str) -> dict:
        return self.objects[f"ClusterNetworkPolicy {name}"]

    def change(self, op: str, arg: str) -> None:
        if op == "swap":
            name, a, b = arg.split()
            rules = self.policy(name)["spec"]
            (ka, ia), (kb, ib) = (field_path(a), field_path(b))
            rules[ka][ia], rules[kb][ib] = rules[kb][ib], rules[ka][ia]
        elif op in ("set", "insert"):
            m = re.fullmatch(r"(\S+) (\S+) = (.*)", arg)
            assert m, arg
            name, path, value = m.groups()
            *parents, last = field_path(path)
            node = self.policy(name)
            for p in parents:
                node = node[p]
            new = self.substitute(yaml.safe_load(value))
            if op == "insert":
                node.insert(last, new)
            else:
                node[last] = new
        elif op == "label":
            _, name, *labels = arg.split()
            self.namespaces[name] = {"kubernetes.io/metadata.name": name,
                                     **dict(x.split("=") for x in labels)}
        elif op == "delete":
            del self.objects[arg]
        else:
            raise AssertionError(f"unknown change {op}")

    @staticmethod
    def probe(line: str) -> Probe:
        m = PROBE.fullmatch(line)
        assert m, line
        return Probe(f"{PREFIX}{m.group(1)}/{m.group(2)}", f"{PREFIX}{m.group(3)}/{m.group(4)}",
                     m.group(5).upper(), int(host_network_port(m.group(6))),
                     m.group(7) == "allow")
