"""The lab's agent with real labs and real packets: restart policies and CrashLoopBackOff
timing, previous logs, readiness driving Service rules / headless DNS (and how fast),
liveness and startup probes, kill -9 of the agent and its recovery, and up/down cycles that
leave nothing behind. Every lab shortens kubelet's back-off (Cluster restartBackOff)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from manifests import wait_until

from netlab import names
from netlab.kernel import netns_path
from netlab.pytest_plugin import leftovers, shared_lab

pytestmark = pytest.mark.netlab


def cluster(initial: float = 0.3, most: float = 2.4, nodes: int = 2) -> str:
    return ("apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n"
            f"  nodes: {nodes}\n  restartBackOff: {{initialSeconds: {initial}, "
            f"maxSeconds: {most}}}\n")


def pod(name: str, command: str | None = None, *, policy: str | None = None,
        labels: str = "{}", ports: tuple[int, ...] = (), probes: str = "",
        node: str | None = None, responder: bool = True) -> str:
    """A one-container pod (container `c`); `probes` is YAML indented for the container."""
    meta = f"{{name: {name}, labels: {labels}"
    meta += "}" if responder else ", annotations: {netlab.dev/responder: \"off\"}}"
    text = f"---\napiVersion: v1\nkind: Pod\nmetadata: {meta}\nspec:\n"
    if node:
        text += f"  nodeName: {node}\n"
    if policy:
        text += f"  restartPolicy: {policy}\n"
    text += "  containers:\n  - name: c\n    image: busybox\n"
    if command is not None:
        text += f"    command: [sh, -c, {json.dumps(command)}]\n"
    if ports:
        text += "    ports: [" + ", ".join(f"{{containerPort: {p}}}" for p in ports) + "]\n"
    return text + probes


def service(name: str, selector: str, port: int = 80, target: int = 8080,
            extra: str = "") -> str:
    return (f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n"
            f"  selector: {selector}\n  ports: [{{port: {port}, targetPort: {target}}}]\n"
            + extra)


CLIENT = pod("client", "sleep infinity")


def pod_dir(lab, name: str, namespace: str = "default") -> Path:
    return names.pod_dir(lab.name, namespace, name)


def container(lab, name: str):
    return lab.pod(name).containers[0]


def agent_log(lab) -> str:
    p = names.lab_dir(lab.name) / "agent.log"
    return p.read_text(errors="replace") if p.exists() else ""


def agent_pid(lab) -> int:
    """The agent's pid from its pid file (pid and start time), checked by its command line."""
    pid = int((names.lab_dir(lab.name) / "agent.pid").read_text().split()[0])
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"netlab.runtime.agent" in cmdline and lab.name.encode() in cmdline, cmdline
    return pid


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def netns_pids(lab, pod_name: str) -> list[int]:
    """Every process whose network namespace is the pod's (by /proc/*/ns/net inode)."""
    inode = os.stat(netns_path(lab.plan.pods[f"default/{pod_name}"].netns)).st_ino
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry.name}/ns/net").st_ino == inode and alive(int(entry.name)):
                out.append(int(entry.name))
        except OSError:
            continue
    return sorted(out)


def answered(results) -> list[str | None]:
    return [r.answered_by if r.connected else None for r in results]


# --- restart policies ---------------------------------------------------------------------


def test_restart_always_backoff_grows_and_exit_code_is_kept(netlab_lab):
    lab = netlab_lab(yaml=cluster(0.3, 2.4) + pod("crash", "echo run $$; exit 3"))
    starts: dict[int, float] = {}  # restart count -> when that run started
    statuses: set[str] = set()

    def four_restarts():
        p = lab.pod("crash")
        c = p.containers[0]
        if c.started_at:
            starts.setdefault(c.restarts, c.started_at)
        statuses.add(p.status)
        return c.restarts >= 4 and c.state != "running"

    assert wait_until(four_restarts, timeout=20, interval=0.02), starts
    gaps = [round(starts[i + 1] - starts[i], 2) for i in range(4)]
    print(f"\nrestartPolicy Always, back-off 0.3 s doubling to 2.4 s: gaps between starts {gaps}")
    for gap, backoff in zip(gaps, (0.3, 0.6, 1.2, 2.4), strict=True):
        assert backoff * 0.9 <= gap <= backoff + 1.0, gaps
    assert gaps == sorted(gaps)  # it grows
    assert "CrashLoopBackOff" in statuses
    p = lab.pod("crash")
    assert p.restarts >= 4 and p.phase == "Running"  # Always: the pod never ends
    k8s = p.to_k8s()["status"]["containerStatuses"][0]
    assert k8s["restartCount"] >= 4
    assert k8s["lastState"]["terminated"]["exitCode"] == 3
    assert k8s["lastState"]["terminated"]["reason"] == "Error"
    assert "back-off" in p.containers[0].message or p.containers[0].state != "waiting"


def test_previous_log_is_kept(netlab_lab):
    lab = netlab_lab(yaml=cluster(0.2, 0.4) + pod("crash", "echo run $$; exit 3"))
    d = pod_dir(lab, "crash")
    assert wait_until(lambda: container(lab, "crash").restarts >= 2, timeout=10)
    current = wait_until(lambda: (d / "c.log").read_text().strip(), timeout=3)
    previous = (d / "c.previous.log").read_text().strip()
    assert current.startswith("run ") and previous.startswith("run ")
    assert current != previous  # two runs, two pids
    assert lab.logs("crash").strip() in (current, previous)  # `netlab logs`: the current one


def test_restart_on_failure(netlab_lab):
    lab = netlab_lab(yaml=cluster(0.2, 0.4) + pod("ok", "exit 0", policy="OnFailure")
                     + pod("fail", "exit 1", policy="OnFailure"))
    assert wait_until(lambda: container(lab, "fail").restarts >= 2, timeout=10)
    ok = lab.pod("ok")
    assert ok.status == "Completed" and ok.phase == "Succeeded" and ok.restarts == 0
    s = ok.to_k8s()["status"]["containerStatuses"][0]
    assert s["state"]["terminated"]["exitCode"] == 0
    assert s["state"]["terminated"]["reason"] == "Completed" and s["restartCount"] == 0
    fail = lab.pod("fail").to_k8s()["status"]["containerStatuses"][0]
    assert fail["lastState"]["terminated"]["exitCode"] == 1
    assert fail["restartCount"] >= 2


def test_restart_never(netlab_lab):
    lab = netlab_lab(yaml=cluster(0.2, 0.4) + pod("once", "exit 1", policy="Never"))
    assert wait_until(lambda: container(lab, "once").state == "terminated", timeout=5)
    time.sleep(1.0)  # five times the first back-off: it would have restarted by now
    p = lab.pod("once")
    assert p.status == "Error" and p.phase == "Failed" and p.restarts == 0
    s = p.to_k8s()["status"]["containerStatuses"][0]
    assert s["state"]["terminated"] == {**s["state"]["terminated"], "exitCode": 1,
                                        "reason": "Error"}
    assert s["restartCount"] == 0 and s["ready"] is False
    assert not (pod_dir(lab, "once") / "c.previous.log").exists()


# --- readiness ----------------------------------------------------------------------------

READY_PROBE = "    readinessProbe: {{tcpSocket: {{port: {port}}}, periodSeconds: 1}}\n"
GOOD = pod("good", labels="{app: web}", ports=(8080,), probes=READY_PROBE.format(port=8080),
           node="node-1")
BAD = pod("bad", labels="{app: web, role: bad}", ports=(8080,),
          probes=READY_PROBE.format(port=9999), node="node-2")
WEB = GOOD + BAD
HEADLESS = service("web-headless", "{app: web}", extra="  clusterIP: None\n")


@pytest.fixture(scope="module")
def ready_lab(request):
    text = (cluster() + WEB + CLIENT + service("web", "{app: web}") + HEADLESS
            + service("bad-only", "{role: bad}")
            + service("bad-published", "{role: bad}",
                      extra="  publishNotReadyAddresses: true\n"))
    lab = shared_lab(request, yaml=text, label="ready")
    assert wait_until(lambda: lab.service("web").endpoints, timeout=10)
    return lab


def test_service_traffic_goes_to_ready_pod_only(ready_lab):
    lab = ready_lab
    good, bad = lab.pod("good"), lab.pod("bad")
    assert good.ready == "1/1" and bad.ready == "0/1" and bad.status == "Running"
    svc = lab.service("web")
    assert svc.endpoints == [f"{good.ip}:8080"] and svc.not_ready == [f"{bad.ip}:8080"]
    results = lab.probe_many([("client", "svc/web")] * 20)
    assert answered(results) == ["default/good"] * 20
    # the not-ready pod itself still answers (its responder runs): only the Service skips it
    assert lab.probe("client", "bad", 8080).answered_by == "default/bad"


def test_why_no_endpoints_names_the_probe(ready_lab):
    lab = ready_lab
    why = lab.service("bad-only").why_no_endpoints()
    assert why is not None
    assert why.startswith("Service default/bad-only has no ready endpoints: pod default/bad "
                          "not ready: container c: readiness probe tcp 9999 failed: "), why
    assert "refused" in why
    assert lab.service("web").why_no_endpoints() is None
    r = lab.probe("client", "svc/bad-only")
    assert not r.connected, r  # kube-proxy rejects: the Service has no endpoints
    assert lab.why_unanswered("svc/bad-only") == why


def test_publish_not_ready_addresses_keeps_the_pod(ready_lab):
    lab = ready_lab
    bad = lab.pod("bad")
    assert lab.service("bad-published").endpoints == [f"{bad.ip}:8080"]
    assert answered(lab.probe_many([("client", "svc/bad-published")] * 5)) == \
        ["default/bad"] * 5


def test_headless_dns_lists_only_ready_pods(ready_lab):
    lab = ready_lab
    # the DNS server reloads its zone within 0.1 s of the agent rewriting it: poll briefly
    want = [lab.pod("good").ip]
    a = wait_until(lambda: (lambda a: a if a.addresses == want else None)(
        lab.dns("web-headless.default.svc.cluster.local", "client")), timeout=2)
    assert a and a.rcode == "NOERROR", lab.dns("web-headless.default.svc.cluster.local", "client")


def test_pod_turning_ready_gets_traffic(netlab_lab, tmp_path):
    text = cluster() + WEB + CLIENT + service("web", "{app: web}") + HEADLESS
    lab = netlab_lab(yaml=text)
    good, bad = lab.pod("good"), lab.pod("bad")
    assert wait_until(lambda: lab.service("web").endpoints == [f"{good.ip}:8080"], timeout=10)
    assert set(answered(lab.probe_many([("client", "svc/web")] * 20))) == {"default/good"}

    fixed = tmp_path / "fixed.yaml"  # the bad pod's probe now targets the port it serves
    fixed.write_text(BAD.replace("port: 9999", "port: 8080"))
    assert "9999" not in fixed.read_text() and "name: bad" in fixed.read_text()
    t0 = time.monotonic()
    lab.apply(fixed)
    bad = lab.pod("bad")
    both = sorted([f"{good.ip}:8080", f"{bad.ip}:8080"])

    def traffic_to_both():
        return set(answered(lab.probe_many([("client", "svc/web")] * 20))) == \
            {"default/good", "default/bad"}

    assert wait_until(traffic_to_both, timeout=1.0 + 1.5, interval=0.05)
    took = time.monotonic() - t0
    print(f"\nbad pod fixed: traffic reaches both pods {took:.2f} s after apply "
          "(probe period 1 s)")
    # the agent writes the rules first, then the lab's state: a few ms apart
    assert wait_until(lambda: lab.service("web").endpoints == both, timeout=1)
    assert lab.pod("bad").ready == "1/1"
    t1 = time.monotonic()

    def dns_lists_both():
        a = lab.dns("web-headless.default.svc.cluster.local", "client")
        return sorted(a.addresses) == sorted([good.ip, bad.ip])

    assert wait_until(dns_lists_both, timeout=2)
    print(f"headless DNS lists both {time.monotonic() - t1:.2f} s after the Service rules did")


def test_readiness_latency(netlab_lab):
    """The Service follows a readiness probe (period 1 s, thresholds 1) within a period
    plus a margin, both ways: port 9001 opens after 2 s and closes 3 s later; the
    Service's port 9000 answers all along, so the Service connects iff the endpoint is in
    the rules."""
    probe = ("    readinessProbe: {tcpSocket: {port: 9001}, periodSeconds: 1, "
             "failureThreshold: 1, successThreshold: 1}\n")
    command = ("python3 -m http.server 9000 & sleep 2; timeout 3 python3 -m http.server 9001;"
               " wait")
    lab = netlab_lab(yaml=cluster() + CLIENT + pod("slow", command, labels="{app: slow}",
                                                   probes=probe, responder=False)
                     + service("slow", "{app: slow}", target=9000))
    pairs = [("client", "slow", 9001), ("client", "svc/slow")]
    seen: dict[str, float] = {}

    def watch(until: str) -> bool:
        direct, svc = (r.connected for r in lab.probe_many(pairs, timeout=0.5))
        now = time.monotonic()
        if direct and "port open" not in seen:
            seen["port open"] = now
        if svc and "port open" in seen and "svc open" not in seen:
            seen["svc open"] = now
        if "svc open" in seen and not direct and "port closed" not in seen:
            seen["port closed"] = now
        if "port closed" in seen and not svc and "svc closed" not in seen:
            seen["svc closed"] = now
        return until in seen

    assert wait_until(lambda: watch("svc open"), timeout=15, interval=0.01), seen
    assert wait_until(lambda: watch("svc closed"), timeout=15, interval=0.01), seen
    up = seen["svc open"] - seen["port open"]
    down_ = seen["svc closed"] - seen["port closed"]
    print(f"\nreadiness latency (period 1 s): port open -> Service answers {up:.2f} s; "
          f"port closed -> Service refuses {down_:.2f} s")
    assert up <= 1.0 + 1.0 and down_ <= 1.0 + 1.0


# --- liveness and startup ------------------------------------------------------------------


def test_liveness_exec_failure_restarts_with_137(netlab_lab):
    probe = ("    livenessProbe: {exec: {command: [sh, -c, 'exit 1']}, periodSeconds: 1, "
             "failureThreshold: 1}\n")
    lab = netlab_lab(yaml=cluster(0.2, 0.4) + pod("sick", "sleep 3600", probes=probe))
    pid = wait_until(lambda: container(lab, "sick").pid, timeout=5)
    assert wait_until(lambda: container(lab, "sick").restarts >= 1, timeout=10)
    c = container(lab, "sick")
    assert c.last_state["terminated"]["exitCode"] == 137
    s = lab.pod("sick").to_k8s()["status"]["containerStatuses"][0]
    assert s["lastState"]["terminated"]["exitCode"] == 137
    assert not alive(pid)  # the first container was killed
    assert "liveness probe exec [sh -c exit 1] failed: exit status 1" in agent_log(lab)


def test_liveness_http_against_the_responder(netlab_lab):
    ok = ("    livenessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1, "
          "failureThreshold: 1}\n")
    lab = netlab_lab(yaml=cluster(0.2, 0.4)
                     + pod("healthy", ports=(8080,), probes=ok)
                     + pod("unserved", ports=(8080,), probes=ok.replace("8080}", "8081}")))
    # the control: the same probe on a port nothing serves fails and restarts the responder
    assert wait_until(lambda: "default/unserved/c: restart: liveness probe http GET :8081/ "
                      "failed" in agent_log(lab), timeout=5), agent_log(lab)
    time.sleep(2.5)  # more than two periods of the healthy pod's probe
    log = agent_log(lab)
    assert "default/healthy" not in log, log
    assert lab.pod("healthy").status == "Running" and lab.pod("healthy").ready == "1/1"


def test_responder_container_restarted_by_liveness_is_counted(netlab_lab):
    """A container without a command (the responder stands for it) killed by its liveness
    probe is restarted after the back-off and counted like any other."""
    probe = ("    livenessProbe: {httpGet: {path: /, port: 8081}, periodSeconds: 1, "
             "failureThreshold: 1}\n")
    lab = netlab_lab(yaml=cluster(0.2, 0.4) + pod("unserved", ports=(8080,), probes=probe))
    assert wait_until(lambda: agent_log(lab).count("default/unserved/c: restart:") >= 2,
                      timeout=6), agent_log(lab)
    p = lab.pod("unserved")
    s = p.to_k8s()["status"]["containerStatuses"][0]
    assert p.restarts >= 1 and s["restartCount"] >= 1, s
    assert s["lastState"]["terminated"]["exitCode"] == 137, s


def test_startup_probe_gates_liveness(netlab_lab):
    """Liveness on port 9000 would fail at once (failureThreshold 1) but does not run until
    the startup probe passes, which the server allows after 2.5 s; a startup probe that
    never passes restarts its container."""
    gated = ("    startupProbe: {tcpSocket: {port: 9000}, periodSeconds: 1, failureThreshold: 10}\n"
             "    livenessProbe: {tcpSocket: {port: 9000}, periodSeconds: 1, "
             "failureThreshold: 1}\n")
    never = ("    startupProbe: {tcpSocket: {port: 9999}, periodSeconds: 1, failureThreshold: 2}\n"
             "    livenessProbe: {tcpSocket: {port: 9999}, periodSeconds: 1, "
             "failureThreshold: 1}\n")
    lab = netlab_lab(yaml=cluster(0.2, 0.4)
                     + pod("slow", "sleep 2.5; exec python3 -m http.server 9000", probes=gated,
                           responder=False)
                     + pod("stuck", "sleep 3600", probes=never, responder=False))
    assert wait_until(lambda: "default/slow/c: started: startup probe tcp 9000 succeeded"
                      in agent_log(lab), timeout=10), agent_log(lab)
    time.sleep(2.5)  # liveness now runs (and passes)
    assert container(lab, "slow").restarts == 0 and container(lab, "slow").state == "running"
    assert "default/slow/c: restart" not in agent_log(lab)
    assert wait_until(lambda: container(lab, "stuck").restarts >= 1, timeout=10)
    assert "default/stuck/c: restart: startup probe tcp 9999 failed" in agent_log(lab)
    assert container(lab, "stuck").last_state["terminated"]["exitCode"] == 137


# --- agent crash and recovery ----------------------------------------------------------------


def test_agent_kill_and_recovery(netlab_lab, tmp_path):
    text = (cluster() + pod("web", ports=(8080,), node="node-1")
            + pod("sleeper", "sleep 3600", node="node-2") + CLIENT)
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    lab = netlab_lab(path)
    assert wait_until(lambda: lab.probe("client", "web", 8080).connected, timeout=5)
    sleeper = container(lab, "sleeper").pid
    before = {p: netns_pids(lab, p) for p in ("web", "sleeper", "client")}
    assert sleeper in before["sleeper"]

    old = agent_pid(lab)
    os.kill(old, signal.SIGKILL)
    assert wait_until(lambda: not alive(old), timeout=5)
    # containers with a command keep running; the network keeps working
    assert alive(sleeper)
    assert {p: netns_pids(lab, p) for p in before} == before
    assert lab.ping("client", "sleeper", count=2).ok and lab.ping("client", "web", count=2).ok
    # the responder is served BY the agent: the serving pod stops answering
    r = lab.probe("client", "web", 8080)
    assert not r.connected and r.result == "refused", r

    t0 = time.monotonic()
    lab.apply(path)  # a no-op apply restarts the agent
    new = agent_pid(lab)
    assert new != old and alive(new)
    assert wait_until(lambda: lab.probe("client", "web", 8080).answered_by == "default/web",
                      timeout=5)
    print(f"\nagent restarted by apply, serving again in {time.monotonic() - t0:.2f} s")
    assert container(lab, "sleeper").pid == sleeper and alive(sleeper)
    # nothing started twice (a helper the new agent uses to make sandboxes lives a moment in
    # a pod's namespace, then exits: a loaded machine can still see it)
    assert wait_until(lambda: {p: netns_pids(lab, p) for p in before} == before, timeout=8), \
        {p: netns_pids(lab, p) for p in before}
    assert "1 running containers adopted" in agent_log(lab) or \
        "running containers adopted" in agent_log(lab)

    # and `down` with a dead agent removes everything
    os.kill(new, signal.SIGKILL)
    assert wait_until(lambda: not alive(new), timeout=5)
    lab.down()
    assert leftovers(lab.name) == []
    assert not alive(sleeper)


# --- up/down cycles ----------------------------------------------------------------------------

CYCLE_LAB = (cluster() + pod("web", ports=(8080,), labels="{app: web}",
                             probes=READY_PROBE.format(port=8080))
             + pod("worker", "sleep 3600") + CLIENT + service("web", "{app: web}"))


def test_ten_up_down_cycles_leave_nothing(netlab_lab, netlab_lab_name):
    times = []
    for i in range(10):
        t0 = time.monotonic()
        lab = netlab_lab(yaml=CYCLE_LAB, name=netlab_lab_name)
        assert os.path.ismount(names.lab_dir(lab.name))  # a tmpfs of its own, detached by down
        pid = agent_pid(lab)
        if i % 3 == 0:  # real traffic now and then, through the Service once it is ready
            assert wait_until(lambda lab=lab: lab.service("web").endpoints, timeout=5)
            assert lab.probe("client", "svc/web").answered_by == "default/web"
        lab.down()
        times.append(time.monotonic() - t0)
        assert leftovers(netlab_lab_name) == [], f"cycle {i}"
        assert not alive(pid), f"cycle {i}: agent {pid} survived down"
    print(f"\n10 up/down cycles: {sum(times) / len(times):.2f} s per cycle "
          f"(max {max(times):.2f} s)")


def test_sockets_opened_ahead_for_a_pod_not_applied_are_closed(netlab_lab):
    """`prepare` opens a pod's responder sockets while the CLI builds its interfaces; a
    pod that `workloads` then does not bring (a failed or changed `up`) is not served."""
    import subprocess

    from netlab.intents import Serve, Workload
    from netlab.runtime.agent import workload_to_json
    from netlab.runtime.client import request

    lab = netlab_lab(yaml=cluster() + pod("web", ports=(8080,)) + CLIENT)
    loads = json.loads((names.lab_dir(lab.name) / "agent" / "workloads.json").read_text())
    web = next(w for w in loads if w["owner"] == "default/web")

    def listening() -> bool:
        out = subprocess.run(["nsenter", f"--net={netns_path(web['netns'])}", "ss", "-Hltn",
                              "sport = :81"], capture_output=True, text=True, check=True)
        return bool(out.stdout.strip())

    ghost = Workload("default/ghost", serve=Serve("default/ghost", "ghost", web["netns"],
                                                  ("tcp:81",)), netns=web["netns"])
    request(lab.name, {"op": "prepare", "workloads": [workload_to_json(ghost)]})
    assert wait_until(listening, timeout=5), "the socket opened ahead is not listening"
    request(lab.name, {"op": "workloads", "workloads": loads})  # ghost is not among them
    assert not listening()
    assert lab.probe("client", "web", 8080).answered_by == "default/web"  # still served
