"""Expectations: a scenario's checks ("from pod A to svc/B port 80: connected, answered by
app=B"), run with real traffic against a lab, each with its evidence and, on failure, a
hint that says why (the Service has no endpoints, a NetworkPolicy isolates the pod...)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

from netlab import targets
from netlab.errors import NetlabError
from netlab.expect_fields import HTTP_TOKEN as HTTP_TOKEN  # for `netlab http -H` (the CLI)
from netlab.model import ExpectCheck, HttpExpect

if TYPE_CHECKING:
    from netlab.http_client import HttpResult
    from netlab.lab import Lab


@dataclass(frozen=True)
class Outcome:
    expectation: str
    check: ExpectCheck
    passed: bool
    evidence: str
    hint: str = ""
    seconds: float = 0.0

    @property
    def title(self) -> str:
        c = self.check
        if c.name:
            return c.name
        if c.kind == "dns":
            return f"dns {c.dst} from {c.src}: {c.expect}"
        if c.kind == "http":
            return (f"{c.src} {c.method} {c.dst}: "
                    f"{c.status if c.expect == 'connected' else 'blocked'}")
        where = f" port {c.port}" if c.port else ""
        proto = f" {c.protocol}" if c.protocol else ""
        return f"{c.src} -> {c.dst}{where}{proto}: {c.expect}"

    def to_json(self) -> dict:
        return {"expectation": self.expectation, "check": self.title, "passed": self.passed,
                "evidence": self.evidence, "hint": self.hint, "seconds": self.seconds}


def _labels_match(lab: Lab, pod_key: str | None, labels: tuple[tuple[str, str], ...]) -> bool:
    if not labels:
        return True
    if not pod_key or "/" not in pod_key:
        return False
    try:
        pod = lab.pod(pod_key)
    except NetlabError:
        return False
    return all(pod.labels.get(k) == v for k, v in labels)


def _hint_for_connect(lab: Lab, c: ExpectCheck, connected: bool) -> str:
    hints = []
    dst = targets.parse(c.dst or "")
    if dst.kind == "service":
        try:
            why = lab.service(dst.name).why_no_endpoints()
            if why:
                hints.append(why)
        except NetlabError:
            hints.append(f"there is no Service {dst.name!r}")
    try:
        e = lab.explain(c.src, c.dst or "", c.port, c.protocol or "tcp")
        decisive = [line for line in e.reasoning if "isolated by" in line or
                    ("no endpoints" in line and not hints) or "never leaves" in line]
        if decisive:
            hints.append("; ".join(decisive))
        elif connected:
            hints.append("no NetworkPolicy isolates either end, so everything connects")
    except NetlabError:
        pass
    return " | ".join(hints)


def run_check(lab: Lab, expectation: str, c: ExpectCheck) -> Outcome:
    t0 = time.monotonic()
    try:
        if c.kind == "dns":
            return _dns(lab, expectation, c, t0)
        if c.kind == "http" or (c.dst or "").startswith(("http://", "https://")):
            return _http(lab, expectation, c, t0)
        return _connect(lab, expectation, c, t0)
    except NetlabError as e:
        return Outcome(expectation, c, False, f"could not run: {e}",
                       "check the names in the Expectation against `netlab get pods -A` and "
                       "`netlab get svc -A`", round(time.monotonic() - t0, 3))


def _connect(lab: Lab, name: str, c: ExpectCheck, t0: float) -> Outcome:
    r = lab.probe(c.src, c.dst or "", c.port, c.protocol, timeout=1.0, family=c.family)
    host = f"[{r.address}]" if ":" in r.address and r.port else r.address
    evidence = (f"{r.result} to {host}" + (f":{r.port}" if r.port else "") +
                (f", answered by {r.answered_by}" if r.answered_by else "") +
                (f", client seen as {r.client_ip}" if r.client_ip else "") +
                (f" ({r.detail})" if r.detail and not r.connected else ""))
    problems = []
    if c.expect == "connected":
        if not r.connected:
            problems.append("expected a connection")
        else:
            if not _labels_match(lab, r.answered_by, c.answered_by):
                want = ",".join(f"{k}={v}" for k, v in c.answered_by)
                problems.append(f"expected an answer from a pod with {want}")
            if c.client_ip:
                src_ip = None if targets.parse(c.src).outside else lab.address_of(c.src,
                                                                                   c.family)
                nodes = {a for n in lab.plan.nodes
                         for a in (n.underlay_ip, n.gateway, n.vtep_ip, n.underlay_ip6,
                                   n.gateway6, n.vtep_ip6) if a}
                ok = (r.client_ip == src_ip if c.client_ip == "pod" else
                      r.client_ip in nodes if c.client_ip == "node" else
                      r.client_ip == c.client_ip)
                if not ok:
                    problems.append(f"expected the client address to be {c.client_ip}")
    elif r.connected:
        problems.append("expected it to be blocked")
    hint = "" if not problems else "; ".join(problems) + ". " + _hint_for_connect(
        lab, c, r.connected)
    return Outcome(name, c, not problems, evidence, hint.strip(), round(time.monotonic() - t0, 3))


def _dns(lab: Lab, name: str, c: ExpectCheck, t0: float) -> Outcome:
    a = lab.dns(c.dst or "", c.src, c.dns_type or None)
    qtype = a.type
    got = [r.data for r in a.answers]
    evidence = f"{a.query} {a.type}: {a.rcode}" + (f" -> {', '.join(got)}" if got else "")
    problems = []
    if c.expect == "nxdomain":
        if a.rcode != "NXDOMAIN":
            problems.append("expected NXDOMAIN")
    else:
        if a.rcode != "NOERROR" or not got:
            problems.append("expected the name to resolve")
        wanted = []
        for w in c.resolves_to:
            t = targets.parse(w)
            if t.kind == "service":  # its ClusterIP of the family asked for (AAAA: IPv6)
                svc = targets.service(lab.plan, t.name)
                w = (svc.cluster_ip6 if qtype == "AAAA" else svc.cluster_ip) or ""
            wanted.append(w)
        if wanted and sorted(wanted) != sorted(a.addresses or got):
            problems.append(f"expected {', '.join(wanted)}")
    hint = ""
    if problems:
        hint = "; ".join(problems)
        short = (c.dst or "").split(".")[0]
        known = [s.key for s in lab.services() if s.name == short]
        hint += (f". Services named {short!r}: {', '.join(known)}" if known else
                 f". No Service is named {short!r} (`netlab get svc -A`)")
    return Outcome(name, c, not problems, evidence, hint, round(time.monotonic() - t0, 3))


def _http(lab: Lab, name: str, c: ExpectCheck, t0: float) -> Outcome:
    headers = dict(c.headers)
    data = c.data.encode() if c.data is not None else None
    if data is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/x-www-form-urlencoded"  # as curl -d
    r = lab.http(c.dst or "", c.src, c.method, headers or None, timeout=2.0, data=data,
                 to=c.via)
    evidence = (f"{r.status} {r.reason}" if r.status else f"no answer ({r.error})") + \
        (f", answered by {r.answered_by}" if r.answered_by else "") + \
        (f"; the backend received {r.seen_method} {r.seen_path}, Host {r.seen_host}"
         if r.seen_method else "")
    problems = []
    if c.expect == "blocked":
        if r.status is not None and r.status < 500:
            problems.append("expected no answer")
    else:
        if r.status != (c.status or 200):
            problems.append(f"expected status {c.status or 200}")
        if not _labels_match(lab, r.answered_by, c.answered_by):
            want = ",".join(f"{k}={v}" for k, v in c.answered_by)
            problems.append(f"expected an answer from a pod with {want}")
        if r.status is not None:
            problems += http_problems(r, c.seen)
    hint = ""
    if problems:
        hint = "; ".join(problems)
        probs = lab.http_hints(c.dst or "", c.via)
        if probs:
            hint += ". " + " | ".join(probs)
    return Outcome(name, c, not problems, evidence, hint, round(time.monotonic() - t0, 3))


def backend_matches(answered_by: str | None, backend: str) -> bool:
    """Whether the pod that answered (NS/POD) is `backend`: a pod name prefix (a
    Deployment's name matches its pods), or NS/prefix."""
    if not answered_by or "/" not in answered_by:
        return False
    if "/" in backend:
        return answered_by.startswith(backend)
    return answered_by.split("/", 1)[1].startswith(backend)


def http_problems(r: HttpResult, want: HttpExpect) -> list[str]:
    """What an answer does not do of what `want` asks (empty: all of it), each saying what
    was there instead."""
    out = []
    seen = {k.lower(): v for k, v in r.seen_headers.items()}
    if want.backend is not None and not backend_matches(r.answered_by, want.backend):
        out.append(f"expected an answer from {want.backend}, not "
                   f"{r.answered_by or 'an unknown pod (not the responder)'}")
    if want.path is not None and r.seen_path != want.path:
        out.append(f"expected the backend to receive path {want.path}, not {r.seen_path}")
    if want.host is not None and r.seen_host != want.host:
        out.append(f"expected the backend to receive Host {want.host}, not {r.seen_host}")
    for k, v in want.headers:
        got = seen.get(k.lower())
        if got != v:
            out.append(f"expected the backend to receive {k}: {v}, " +
                       ("it had none" if got is None else f"not {got}"))
    for k in want.absent_headers:
        if k.lower() in seen:
            out.append(f"expected the backend not to receive {k} (it had {seen[k.lower()]})")
    answer = {k.lower(): v for k, v in r.headers.items()}
    for k, v in want.response_headers:
        got = answer.get(k.lower())
        if got != v:
            out.append(f"expected the answer to carry {k}: {v}, " +
                       ("it had none" if got is None else f"not {got}"))
    return out


def junit(outcomes: list[Outcome], suite: str, seconds: float) -> str:
    """JUnit XML (the shape Jenkins, GitLab and GitHub understand): one testcase per check,
    a <failure> with the hint, the evidence in <system-out>."""
    failures = sum(not o.passed for o in outcomes)
    cases = []
    for o in outcomes:
        body = f"<system-out>{escape(o.evidence)}</system-out>"
        if not o.passed:
            body = (f"<failure message={quoteattr(o.hint or 'failed')} type=\"expectation\">"
                    f"{escape(o.evidence)}</failure>") + body
        cases.append(f'    <testcase classname={quoteattr(f"{suite}.{o.expectation}")} '
                     f'name={quoteattr(o.title)} time="{o.seconds:.3f}">{body}</testcase>')
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n'
            f'  <testsuite name={quoteattr(suite)} tests="{len(outcomes)}" '
            f'failures="{failures}" errors="0" skipped="0" time="{seconds:.3f}">\n'
            + "\n".join(cases) + "\n  </testsuite>\n</testsuites>\n")


# --- settling: waiting until the lab stops changing by itself ----------------------------------

def unsettled(plan: Any, m: Any, pods: list[Any], status: dict[str, Any],
              readiness: dict[str, tuple[bool, str]] | None = None) -> list[str]:
    """What the lab is still doing by itself, for a person (empty: settled). Pure: from the
    plan, the manifests (model.Manifests), the pods as Lab.pods shows them (views.PodInfo),
    the agent's status (status.json) and the readiness the lab's state last converged on.

    Settled is not "all ready": a pod whose readiness probe fails, or whose container crash
    loops, has had its say. Unsettled is what will change without anyone acting:
      - a pod the agent has not been given yet, or a container being created or waiting
        for its init containers for the first time (ContainerCreating, PodInitializing, an
        init container on its first run);
      - a running container (first run) whose readiness/startup probe has no result yet;
      - the agent's readiness not yet converged into the lab (endpoints, the next ordinal of
        an OrderedReady StatefulSet, follow it);
      - an OrderedReady StatefulSet with fewer pods than replicas whose pods are all ready
        (the next ordinal is about to be created);
      - a Job whose pods have all ended while it is neither Complete nor Failed."""
    out: list[str] = []
    probes = status.get("probes", {})
    given = status.get("pods", {})
    for p in pods:
        if p.pending_reason:  # no node accepts it: nothing will happen by itself
            continue
        if p.key not in given:
            out.append(f"pod {p.key}: not yet started by the lab's agent")
            continue
        why = _creating(p)
        if why:
            out.append(f"pod {p.key}: {why}")
            continue
        planned = plan.pods.get(p.key)
        running = [c for c in p.running_set if c.state == "running" and not c.restarts]
        entries = {c.name: probes.get(f"{p.key}/{c.name}") for c in running}
        for c in running:
            e = entries[c.name]
            if e and not e.get("ready") and e.get("awaiting"):  # no first probe result yet
                out.append(f"pod {p.key}: container {c.name}: {e['reason']}")
                break
        else:
            if planned is not None and planned.readiness_probed and running \
                    and not any(entries.values()):
                out.append(f"pod {p.key}: its readiness probe has not started")
    agent_ready = {k: bool(v.get("ready")) for k, v in given.items() if k in plan.pods}
    if readiness is not None:
        behind = sorted(k for k, r in agent_ready.items()
                        if k in readiness and readiness[k][0] != r)
        if behind:
            out.append(f"the lab has not yet followed the readiness of {', '.join(behind)}")
    for w in m.workloads.values():
        if w.kind != "StatefulSet" or not w.ordered_ready:
            continue
        owner = f"StatefulSet/{w.name}"
        mine = [k for k, p in plan.pods.items() if p.namespace == w.namespace
                and p.owner == owner]
        waiting = [k for k, p in plan.pending.items() if p.namespace == w.namespace
                   and p.owner == owner]
        if len(mine) + len(waiting) < w.replicas and not waiting \
                and all(agent_ready.get(k) for k in mine):
            out.append(f"StatefulSet {w.namespace}/{w.name}: {len(mine)} of {w.replicas} pods, "
                       "the next ordinal is about to be created")
    by_key = {p.key: p for p in pods}
    for j in plan.jobs.values():
        if j.condition is not None:
            continue
        jp = [by_key.get(f"{j.namespace}/{q.name}") for q in j.pods]
        if jp and all(q is not None and q.phase in ("Succeeded", "Failed") for q in jp):
            out.append(f"Job {j.namespace}/{j.name}: its pods ended; it makes its next ones")
    return out


def _creating(p: Any) -> str:
    """Why a pod (views.PodInfo) is still being created for the first time, or ""."""
    status = p.initializing
    if status is not None:
        for c in p.init_containers:
            if c.completed or (c.sidecar and c.state == "running"):
                continue
            if c.restarts or c.state == "terminated" or (
                    c.state == "waiting" and c.reason not in ("", "ContainerCreating",
                                                              "PodInitializing")):
                return ""  # failing: Init:Error, Init:CrashLoopBackOff
            return f"{status}: init container {c.name} has not completed yet"
        return ""
    for c in p.containers:
        if c.state == "waiting" and c.reason in ("ContainerCreating", "PodInitializing") \
                and not c.restarts:
            return f"container {c.name} is {c.reason}"
    return ""
