#!/usr/bin/env python3
"""Benchmark: the lab's agent (issue 13), each figure beside a baseline measured in the same run.

1. N pods with a containerPort (answered by the agent's built-in responder) over 4 nodes,
   N = 400 and 1000: `Lab.up` against the raw floor of bench/up_pods.py (the same number of
   namespaces, veth pairs and bridge ports made with `ip -batch`), goal <= 3x; the RSS of ALL
   the lab's processes together (the agent, and every process whose network namespace is
   one of the lab's: the DNS add-on's server, the internet host's resolver, ...), goal
   <= 400 MB at 400 pods, with their number; then `down` against the raw delete of the same
   namespaces, goal <= 2x. PSS (shared pages split between the processes that map them) is
   printed beside RSS, which counts the interpreter's shared pages once per process.
2. 400 pods running `sleep 3600`: `up` against the same raw floor (goal <= 3x), processes
   per pod, and their memory; `down` against the raw delete (goal <= 2x). Beside each a
   second floor: the raw one plus, in each pod namespace, one `sleep` in a PID and mount
   namespace of its own (`unshare --fork --pid --mount --mount-proc`: what a sandbox costs
   the kernel, without its files): the time to start them, and for `down` the time until
   they have all left the namespaces after SIGKILL (the raw delete has no process to end);
   and for `down` a third: the raw delete plus killing two plain `sleep`s per pod (a pod's
   pause and container, without any namespace of their own: the least ending them costs).
Every timed step starts on a quiet machine (up_pods.settle: the kernel frees deleted
namespaces in the background, seconds after a big `down`).
Processes are listed by what they run (`pause` is a pod sandbox's pause process).
A warm-up lab of 8 pods, not counted, comes first.
3. A readiness change reaching the Service rules: a Service over 10 pods running
   `python3 -m http.server 9000`, readinessProbe tcpSocket 9000 every 1 s (failureThreshold
   1, so one failed probe makes the pod unready); restartBackOff 300 s, so what is killed
   stays down; the pods' built-in responder is off (annotation netlab.dev/responder: off),
   else it would hold port 9000 itself and answer the probe. The time from a kill to the
   moment the pod's IP is gone from every node's `ip kube-proxy` table (polled with nft,
   10 ms apart), split into detection (the agent's status.json says the pod is not ready;
   it is written on the tick that notices) and sync (the rest; the agent's log gives the
   converge time of that sync). Goal: period + 100 ms.
   Two ways to lose readiness:
     probe  - the pod's command is `sh -c 'python3 -m http.server 9000; exec sleep 3600'` and
              the server (a child of the container's process) is killed: the container keeps
              running, so only the readiness probe can notice;
     exit   - the pod's command is `python3 -m http.server 9000` and the container's process
              is killed: the agent sees the exit at its next tick, no probe needed.

The labs are `nlbench-agent*`, the raw baseline's namespaces `netlab.nlbenchraw.*`; all are
torn down in finally blocks. Only processes this benchmark started are killed (by pid).

    sudo .venv/bin/python bench/agent.py
    sudo .venv/bin/python bench/agent.py --only command   # one part: serving, command, ready
    sudo .venv/bin/python bench/agent.py --rounds 7       # more rounds per comparison
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import re
import signal
import statistics
import subprocess
import time
from pathlib import Path

# the raw `ip -batch` floor and the wait for a quiet machine, shared with bench/up_pods.py
from up_pods import RAW, raw_down, raw_up, settle

from netlab import Lab, down, names
from netlab.kernel import destroy_lab, lab_pids, procs

NODES = 4
LAB = "nlbench-agent"
RLAB = "nlbench-agent-ready"
MB = 1024.0


def cluster(nodes: int, extra: str = "") -> str:
    return ("apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n"
            f"  nodes: {nodes}\n  podCIDRMaskSize: 22\n{extra}")


def serving_pods(n: int) -> str:
    return "---\n".join([cluster(NODES)] + [
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\n"
        "spec: {containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}\n"
        for i in range(n)])


def command_pods(n: int) -> str:
    return "---\n".join([cluster(NODES)] + [
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\n"
        "spec: {containers: [{name: c, image: busybox, command: [sleep, '3600']}]}\n"
        for i in range(n)])


# --- the lab's processes ------------------------------------------------------------------


def memory(pid: int) -> tuple[int, int, str]:
    """(RSS kB, PSS kB, what it runs) of a process; (0, 0, "") if it is gone."""
    try:
        argv = [a.decode(errors="replace") for a in
                Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
        rss = next(int(line.split()[1]) for line in
                   Path(f"/proc/{pid}/status").read_text().splitlines()
                   if line.startswith("VmRSS:"))
        pss = next((int(line.split()[1]) for line in
                    Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
                    if line.startswith("Pss:")), 0)
    except (OSError, StopIteration):
        return 0, 0, ""
    words = [Path(argv[0]).name if argv else "?", *argv[1:3]]
    if words[0].startswith("python") and len(argv) > 2 and argv[1] == "-m":
        words = [words[0], "-m", argv[2]]
    return rss, pss, " ".join(words)


def census(lab: str) -> tuple[int, float, float, str]:
    """(processes, RSS MB, PSS MB, what they are) of the whole lab."""
    agent_pid = int((names.lab_dir(lab) / names.AGENT_PID_FILE).read_text().split()[0])
    rows = [(pid, *memory(pid)) for pid in lab_pids(lab)]
    rows = [r for r in rows if r[3]]
    kinds: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for pid, rss, _, what in rows:
        k = kinds["agent" if pid == agent_pid else what]
        k[0] += 1
        k[1] += rss
    text = "; ".join(f"{c} x {k} ({rss / MB:.1f} MB RSS)"
                     for k, (c, rss) in sorted(kinds.items(), key=lambda kv: -kv[1][0]))
    return len(rows), sum(r[1] for r in rows) / MB, sum(r[2] for r in rows) / MB, text


# --- 1 and 2: up, memory, down ------------------------------------------------------------


def raw_with_processes(n: int, sandboxed: bool = True, per_pod: int = 1
                       ) -> tuple[float, float]:
    """The raw floor's namespaces, then in each pod namespace `per_pod` processes, killed
    again by process group: (the time to start them, the time until every one of them has
    left the namespaces). sandboxed: each in a PID and mount namespace of its own with
    /proc mounted (`unshare --fork --pid --mount --mount-proc sleep`: a sandbox's kernel
    objects without its files); else a plain `sleep` (the least a process costs to end)."""
    started: list[subprocess.Popen] = []
    t_kill = 0.0
    sandbox = ["unshare", "--fork", "--pid", "--mount", "--mount-proc"] if sandboxed else []
    try:
        t0 = time.perf_counter()
        for i in range(n):
            for _ in range(per_pod):
                started.append(subprocess.Popen(
                    ["nsenter", f"--net=/run/netns/netlab.{RAW}.pod.p{i}", *sandbox, "sleep",
                     "3600"], stdin=subprocess.DEVNULL, start_new_session=True))
        spawn = time.perf_counter() - t0
        time.sleep(1.0)  # every sleep started
        settle()
        inodes = {os.stat(p).st_ino for p in names.NETNS_DIR.glob(f"netlab.{RAW}.pod.*")}
        pids = procs.pids_in_netns(inodes)
        t0 = time.perf_counter()
        for p in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
        while pids:
            pids = [pid for pid in pids if procs.netns_of(pid) in inodes]
        t_kill = time.perf_counter() - t0
        return spawn, t_kill
    finally:
        for p in started:
            p.kill()
        for p in started:
            p.wait()


def up_down(kind: str, n: int, text: str, goal_mb: float | None,
            processes: bool = False, rounds: int = 3) -> None:
    """`rounds` rounds, each the raw floor then netlab (interleaved, so a drift of the
    machine reaches both); medians are compared, the range of each is printed."""
    raw_ups, raw_downs, nl_ups, nl_downs = [], [], [], []
    spawn = kill = plain_kill = None
    census_row = None
    for r in range(rounds):
        try:
            raw_ups.append(raw_up(n))
            if processes and r == 0:
                spawn, kill = raw_with_processes(n)
                plain_kill = raw_with_processes(n, sandboxed=False, per_pod=2)[1]
            raw_downs.append(raw_down(n))
        finally:
            destroy_lab(RAW)
        try:
            settle()
            t0 = time.perf_counter()
            lab = Lab.up(manifests=[text], name=LAB)
            nl_ups.append(time.perf_counter() - t0)
            pods = lab.pods("default")
            assert len(pods) == n, len(pods)
            if r == 0:
                time.sleep(2.0)  # let the DNS server and the containers finish starting
                census_row = census(LAB)
            settle()
            t0 = time.perf_counter()
            down(LAB)
            nl_downs.append(time.perf_counter() - t0)
        finally:
            down(LAB)
    left = lab_pids(LAB)
    assert census_row is not None
    nproc, rss, pss, what = census_row
    raw_up_s, nl_up = statistics.median(raw_ups), statistics.median(nl_ups)
    raw_down_s, nl_down = statistics.median(raw_downs), statistics.median(nl_downs)

    def spread(xs: list[float]) -> str:
        return f"[{min(xs):.3f}-{max(xs):.3f}]"

    print(f"{kind} x{n} on {NODES} nodes, medians of {rounds} rounds [range]", flush=True)
    print(f"  up    raw {raw_up_s:7.3f}s {spread(raw_ups)}  netlab {nl_up:7.3f}s "
          f"{spread(nl_ups)}  {nl_up / raw_up_s:5.2f}x  "
          f"(goal <= 3x: {'met' if nl_up <= 3 * raw_up_s else 'NOT met'})  "
          f"{1000 * nl_up / n:.2f} ms/pod")
    if spawn is not None:
        print(f"        raw + one sandboxed `sleep` per pod (unshare: PID and mount namespace) "
              f"{raw_up_s + spawn:7.3f}s (those alone {spawn:.3f}s, {1000 * spawn / n:.2f} ms "
              f"each): netlab {nl_up / (raw_up_s + spawn):.2f}x that")
    mem_goal = ("" if goal_mb is None else
                f"  (goal <= {goal_mb:.0f} MB: {'met' if rss <= goal_mb else 'NOT met'})")
    print(f"  mem   {nproc} processes ({nproc / n:.3f} per pod), RSS {rss:7.1f} MB, "
          f"PSS {pss:7.1f} MB{mem_goal}")
    print(f"        {what}")
    print(f"  down  raw {raw_down_s:7.3f}s {spread(raw_downs)}  netlab {nl_down:7.3f}s "
          f"{spread(nl_downs)}  {nl_down / raw_down_s:5.2f}x  "
          f"(goal <= 2x: {'met' if nl_down <= 2 * raw_down_s else 'NOT met'})"
          f"{f'  LEFT {len(left)} processes' if left else ''}", flush=True)
    if kill is not None:
        print(f"        raw delete + killing those sandboxed sleeps {raw_down_s + kill:7.3f}s "
              f"(the kill alone {kill:.3f}s): netlab {nl_down / (raw_down_s + kill):.2f}x that",
              flush=True)
    if plain_kill is not None:
        print(f"        raw delete + killing two plain `sleep`s per pod (no namespace of their "
              f"own) {raw_down_s + plain_kill:7.3f}s (the kill alone {plain_kill:.3f}s, "
              f"{plain_kill / raw_down_s:.2f}x the raw delete): netlab "
              f"{nl_down / (raw_down_s + plain_kill):.2f}x that", flush=True)


# --- 3: readiness to Service rules --------------------------------------------------------

READY_NODES = 2
PERIOD = 1.0
POD_IP = "(?<![0-9.]){}(?![0-9])"


def readiness_manifests(n: int) -> str:
    probe = ("readinessProbe: {tcpSocket: {port: 9000}, periodSeconds: 1, "
             "failureThreshold: 1, timeoutSeconds: 1}")
    docs = [cluster(READY_NODES, "  restartBackOff: {initialSeconds: 300, maxSeconds: 300}\n"),
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
            "spec: {selector: {app: web}, ports: [{port: 80, targetPort: 9000}]}\n"]
    for i in range(n):
        if i % 2 == 0:  # probe: the server is a child of the container's process
            cmd = "[sh, -c, 'python3 -m http.server 9000; exec sleep 3600']"
        else:  # exit: the server is the container's process
            cmd = "[python3, -m, http.server, '9000']"
        docs.append(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: w{i}, labels: {{app: web}}, "
                    "annotations: {netlab.dev/responder: 'off'}}\n"
                    f"spec: {{containers: [{{name: c, image: python, command: {cmd}, "
                    f"ports: [{{containerPort: 9000}}], {probe}}}]}}\n")
    return "---\n".join(docs)


def node_tables(lab: str) -> list[str]:
    out = []
    for j in range(1, READY_NODES + 1):
        ns = names.NETNS_DIR / names.node_netns(lab, f"node-{j}")
        r = subprocess.run(["nsenter", f"--net={ns}", "nft", "list", "table", "ip",
                            "kube-proxy"], capture_output=True, text=True, check=True)
        out.append(r.stdout)
    return out


def pod_status(lab: str) -> dict:
    try:
        return json.loads((names.lab_dir(lab) / "agent" / "status.json").read_text())["pods"]
    except (OSError, ValueError, KeyError):
        return {}


def server_pid(lab: str, pod: str) -> int:
    """The pid of the pod's `python3 -m http.server` (found by its network namespace)."""
    ino = os.stat(names.NETNS_DIR / names.pod_netns(lab, "default", pod)).st_ino
    for pid in procs.pids_in_netns({ino}):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"http.server" in argv:
            return pid
    raise RuntimeError(f"no http.server in pod {pod}")


def agent_sync_ms(lab: str, seen: int) -> tuple[list[str], int]:
    log = (names.lab_dir(lab) / "agent.log").read_text(errors="replace").splitlines()
    found = [m.group(1) for line in log[seen:]
             if (m := re.search(r"endpoints follow readiness .* in (\d+) ms", line))]
    return found, len(log)


def readiness(n: int = 10) -> None:
    rows = []
    try:
        t0 = time.perf_counter()
        lab = Lab.up(manifests=[readiness_manifests(n)], name=RLAB)
        print(f"readiness: Service over {n} pods on {READY_NODES} nodes, probe tcpSocket "
              f"period {PERIOD:g}s failureThreshold 1 (lab up in "
              f"{time.perf_counter() - t0:.2f}s)", flush=True)
        ips = {p.name: p.ip for p in lab.pods("default")}
        deadline = time.monotonic() + 30
        while True:  # every pod ready and in the rules of every node
            st = pod_status(RLAB)
            tables = node_tables(RLAB)
            if (all(st.get(f"default/w{i}", {}).get("ready") for i in range(n))
                    and all(re.search(POD_IP.format(re.escape(ip)), t)
                            for ip in ips.values() for t in tables)):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"pods not ready after 30 s: {st}")
            time.sleep(0.1)
        _, seen = agent_sync_ms(RLAB, 0)
        t = time.perf_counter()
        tables = node_tables(RLAB)
        poll_cost = (time.perf_counter() - t) * 1000
        print(f"  one poll (nft list on {READY_NODES} nodes) takes {poll_cost:.0f} ms; "
              "then 10 ms sleep", flush=True)
        rng = random.Random(13)
        for i in range(n):
            how = "probe" if i % 2 == 0 else "exit"
            pod = f"w{i}"
            pattern = re.compile(POD_IP.format(re.escape(ips[pod])))
            time.sleep(rng.uniform(0.0, PERIOD))  # a random phase against the probe's grid
            pid = server_pid(RLAB, pod)
            k0 = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            detected = gone = None
            while time.perf_counter() - k0 < 10:
                if detected is None and pod_status(RLAB).get(f"default/{pod}", {}).get(
                        "ready") is False:
                    detected = time.perf_counter() - k0
                if not any(pattern.search(x) for x in node_tables(RLAB)):
                    gone = time.perf_counter() - k0
                    if detected is None:
                        detected = gone
                    break
                time.sleep(0.01)
            time.sleep(0.1)
            syncs, seen = agent_sync_ms(RLAB, seen)
            rows.append((pod, how, detected, gone, syncs))
    finally:
        down(RLAB)
    goal = PERIOD + 0.1
    print(f"  {'pod':<4} {'how':<6} {'detect':>8} {'sync':>8} {'total':>8}  agent converge  "
          f"goal <= {goal * 1000:.0f} ms")
    for pod, how, det, gone, syncs in rows:
        if gone is None:
            print(f"  {pod:<4} {how:<6} STILL IN THE RULES after 10 s "
                  f"(detected: {'no' if det is None else f'{det * 1000:.0f} ms'})")
            continue
        print(f"  {pod:<4} {how:<6} {det * 1000:6.0f}ms {(gone - det) * 1000:6.0f}ms "
              f"{gone * 1000:6.0f}ms  {'+'.join(syncs) or '-':>10} ms  "
              f"{'met' if gone <= goal else 'NOT met'}")
    for how in ("probe", "exit"):
        done = [r for r in rows if r[1] == how and r[3] is not None]
        if done:
            tot = [r[3] * 1000 for r in done]
            det = [r[2] * 1000 for r in done]
            print(f"  {how:<5}: total mean {sum(tot) / len(tot):.0f} ms, max {max(tot):.0f} ms; "
                  f"detection mean {sum(det) / len(det):.0f} ms, sync mean "
                  f"{sum(t - d for t, d in zip(tot, det, strict=True)) / len(tot):.0f} ms "
                  f"({len(done)} kills)", flush=True)


def tree() -> str:
    """What is measured: the commit, and whether netlab/ differs from it."""
    root = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "netlab"],
                           capture_output=True, text=True).stdout.split("\n")
    dirty = [line[3:] for line in dirty if line.strip()]
    return f"netlab at {head}" + (f" + uncommitted changes to {', '.join(dirty)}" if dirty
                                  else "")


def main() -> None:
    ap = argparse.ArgumentParser(description="netlab agent benchmark (issue 13)")
    ap.add_argument("--only", choices=("serving", "command", "ready"),
                    help="run only this part (after the warm-up): serving pods (400 and "
                         "1000), command pods (400 x sleep 3600) or readiness")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of each up/down comparison (medians are compared)")
    args = ap.parse_args()
    only, rounds = args.only, args.rounds
    destroy_lab(RAW)
    down(LAB)
    down(RLAB)
    print(tree())
    try:  # warm-up, not measured: the first lab pays for imports and caches
        t0 = time.perf_counter()
        Lab.up(manifests=[serving_pods(8)], name=LAB)
        print(f"warm-up lab of 8 pods (not counted): up {time.perf_counter() - t0:.3f}s",
              flush=True)
    finally:
        down(LAB)
    if only in (None, "serving"):
        up_down("serving pods (containerPort, agent's responder)", 400, serving_pods(400),
                400.0, rounds=rounds)
        up_down("serving pods (containerPort, agent's responder)", 1000, serving_pods(1000),
                None, rounds=rounds)
    if only in (None, "command"):
        up_down("command pods (sleep 3600)", 400, command_pods(400), None, processes=True,
                rounds=rounds)
    if only in (None, "ready"):
        readiness()


if __name__ == "__main__":
    main()
