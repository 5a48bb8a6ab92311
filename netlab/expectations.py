"""Expectations: a scenario's checks ("from pod A to svc/B port 80: connected, answered by
app=B"), run with real traffic against a lab, each with its evidence and, on failure, a
hint that says why (the Service has no endpoints, a NetworkPolicy isolates the pod...)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from netlab import targets
from netlab.errors import NetlabError
from netlab.model import ExpectCheck

if TYPE_CHECKING:
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
            return f"{c.src} GET {c.dst}: {c.status if c.expect == 'connected' else 'blocked'}"
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
    r = lab.probe(c.src, c.dst or "", c.port, c.protocol, timeout=1.0)
    evidence = (f"{r.result} to {r.address}" + (f":{r.port}" if r.port else "") +
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
                src_ip = None if targets.parse(c.src).outside else lab.address_of(c.src)
                nodes = {a for n in lab.plan.nodes
                         for a in (n.underlay_ip, n.gateway, n.vtep_ip)}
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
    a = lab.dns(c.dst or "", c.src, c.dns_type)
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
            wanted.append((lab.service(t.name).cluster_ip or "") if t.kind == "service" else w)
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
    r = lab.http(c.dst or "", c.src, timeout=2.0)
    evidence = (f"{r.status} {r.reason}" if r.status else f"no answer ({r.error})") + \
        (f", answered by {r.answered_by}" if r.answered_by else "")
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
    hint = ""
    if problems:
        hint = "; ".join(problems)
        probs = [p for i in lab.ingresses(None) for p in i.problems]
        if probs:
            hint += ". Ingress problems: " + " | ".join(probs)
    return Outcome(name, c, not problems, evidence, hint, round(time.monotonic() - t0, 3))


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
