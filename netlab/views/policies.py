"""Cluster-wide network policies as `kubectl get clusternetworkpolicies` shows them (the
CRD's printer columns: NAME, TIER, PRIORITY, AGE), the v1alpha1 AdminNetworkPolicy and
BaselineAdminNetworkPolicy among them (KIND in -o wide)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ClusterPolicyInfo:
    kind: str  # ClusterNetworkPolicy | AdminNetworkPolicy | BaselineAdminNetworkPolicy
    name: str
    tier: str  # Admin | Baseline
    priority: int
    subject: str  # for a person: which pods it applies to
    ingress: int  # rules
    egress: int
    created: float = 0.0  # when the lab got it (the lab's start: netlab keeps no more)
    raw: dict[str, Any] = field(default_factory=dict, hash=False)  # the document as applied

    def to_k8s(self) -> dict[str, Any]:
        doc = copy.deepcopy(self.raw)
        doc.setdefault("metadata", {})["name"] = self.name
        return doc


def _selector_text(sel: Any) -> str:
    labels = ",".join(f"{k}={v}" for k, v in sel.match_labels)
    exprs = ",".join(f"{r.key} {r.operator} ({','.join(r.values)})" if r.values
                     else f"{r.key} {r.operator}" for r in sel.match_expressions)
    return ",".join(x for x in (labels, exprs) if x) or "<all>"


def cluster_policy_infos(policies: list[Any], docs: list[Any], created: float
                         ) -> list[ClusterPolicyInfo]:
    """One per policy (netlab.policy.cluster objects), with its document from `docs`."""
    raw = {(d.kind, str((d.doc.get("metadata") or {}).get("name", ""))): d.doc for d in docs}
    out = []
    for p in policies:
        s = p.subject
        if s.namespaces is not None:
            subject = f"namespaces {_selector_text(s.namespaces)}"
        else:
            subject = (f"pods {_selector_text(s.pods.pod_selector)} in namespaces "
                       f"{_selector_text(s.pods.namespace_selector)}")
        out.append(ClusterPolicyInfo(p.kind, p.name, p.tier, p.priority, subject,
                                     len(p.ingress), len(p.egress), created,
                                     raw.get((p.kind, p.name), {})))
    return out
