"""The probe state machine on a fake clock: kubelet's timing, thresholds, startup gating,
restarts and the reasons it gives (cases from the Kubernetes probes docs page)."""

from __future__ import annotations

from collections.abc import Callable

from netlab.model import Container, ContainerPort, Probe
from netlab.runtime.probes import ContainerProbes, Target, Transition, describe

TCP = Probe("tcpSocket", port=9999)
HTTP = Probe("httpGet", port=8080, path="/healthz")
EXEC = Probe("exec", command=("cat", "/tmp/healthy"))

Outcome = Callable[[float, str], tuple[bool, str]]


def simulate(cp: ContainerProbes, outcome: Outcome, until: float, step: float = 0.5,
             start: float = 0.0, restart: bool = False
             ) -> tuple[list[tuple[float, str]], list[tuple[float, Transition]]]:
    """Drive the machine like the agent would: at each step run what is due. Returns the
    probes run (time, type) and the transitions; with restart, a restart transition
    restarts the container at once."""
    runs: list[tuple[float, str]] = []
    transitions: list[tuple[float, Transition]] = []
    t = start
    while t <= until:
        while due := cp.due(t):  # a result may make another probe due at once
            w = due[0]
            w.begin(t)
            runs.append((t, w.probe_type))
            tr = cp.record(t, w.probe_type, *outcome(t, w.probe_type))
            if tr is not None:
                transitions.append((t, tr))
                if restart and tr.action == "restart":
                    cp.restart(t)
        t += step
    return runs, transitions


def always(ok: bool, msg: str = "x") -> Outcome:
    return lambda t, kind: (ok, "ok" if ok else msg)


def test_without_probes_ready_once_running():
    cp = ContainerProbes(0.0)
    assert cp.started and cp.ready and cp.due(100) == [] and cp.next_due() is None
    assert cp.reason == "running (no readiness probe)"
    cp.exited()
    assert not cp.ready and cp.reason == "container is not running"


def test_readiness_starts_false_and_turns_true_on_first_success():
    cp = ContainerProbes(0.0, readiness=TCP)
    assert cp.started and not cp.ready
    assert cp.reason == "readiness probe tcp 9999 has not run yet"
    [w] = cp.due(0.0)
    t = cp.record(0.0, "readiness", True, "connected")
    assert t == Transition("readiness", "ready", "readiness probe tcp 9999 succeeded")
    assert cp.ready and w.next_at == 10.0


def test_liveness_initial_delay_5_period_5_threshold_3_restarts_at_15_not_before():
    probe = Probe("exec", command=("cat", "/tmp/healthy"), initial_delay_seconds=5,
                  period_seconds=5)
    cp = ContainerProbes(0.0, liveness=probe)
    runs, transitions = simulate(cp, always(False, "exit status 1"), until=30)
    assert [t for t, _ in runs] == [5, 10, 15]  # then on hold until the restart
    [(when, tr)] = transitions
    assert when == 5 + (3 - 1) * 5 and tr.action == "restart"
    assert tr.reason == "liveness probe exec [cat /tmp/healthy] failed: exit status 1"
    assert cp.due(100) == [] and "will be restarted" in cp.reason


def test_docs_liveness_exec_example_file_removed_after_30s():
    # docs: `touch /tmp/healthy; sleep 30; rm -f /tmp/healthy`, initialDelay 5, period 5
    probe = Probe("exec", command=("cat", "/tmp/healthy"), initial_delay_seconds=5,
                  period_seconds=5)
    cp = ContainerProbes(0.0, liveness=probe)
    _, transitions = simulate(cp, lambda t, k: (t < 30, "no such file"), until=60)
    assert [(t, tr.action) for t, tr in transitions] == [(40, "restart")]


def test_liveness_failures_must_be_consecutive():
    seq = iter([False, False, True, False, False, True, False, False])
    cp = ContainerProbes(0.0, liveness=Probe("tcpSocket", port=80, period_seconds=1))
    runs, transitions = simulate(cp, lambda t, k: (next(seq), "refused"), until=7, step=1)
    assert len(runs) == 8 and transitions == []
    assert cp.workers["liveness"].reason == \
        "liveness probe tcp 80 failed: refused (2 of 3 failures)"


def test_readiness_success_threshold_2():
    probe = Probe("httpGet", port=8080, path="/healthz", success_threshold=2, period_seconds=1)
    cp = ContainerProbes(0.0, readiness=probe)
    seq = iter([True, False, True, True, True])
    _, transitions = simulate(cp, lambda t, k: (next(seq), "HTTP 500"), until=4, step=1)
    assert [(t, tr.action) for t, tr in transitions] == [(3, "ready")]
    assert cp.ready


def test_readiness_failure_threshold_then_unready_and_keeps_probing():
    cp = ContainerProbes(0.0, readiness=TCP)
    cp.record(0, "readiness", True, "connected")
    assert cp.ready
    assert cp.record(10, "readiness", False, "connection refused") is None
    assert cp.record(20, "readiness", False, "connection refused") is None
    assert cp.ready  # 2 of 3
    assert "(2 of 3 failures)" in cp.reason
    t = cp.record(30, "readiness", False, "connection refused")
    assert t == Transition("readiness", "unready",
                           "readiness probe tcp 9999 failed: connection refused")
    assert not cp.ready and cp.reason == "readiness probe tcp 9999 failed: connection refused"
    assert [w.probe_type for w in cp.due(40)] == ["readiness"]  # not on hold
    assert cp.record(40, "readiness", True, "connected").action == "ready"


def test_http_reason_wording():
    cp = ContainerProbes(0.0, liveness=Probe("httpGet", port=8080, path="/healthz",
                                             failure_threshold=1))
    t = cp.record(0, "liveness", False, "HTTP 500")
    assert t is not None and t.reason == "liveness probe http GET :8080/healthz failed: HTTP 500"
    assert describe(Probe("httpGet", port="web", host="10.0.0.1", scheme="HTTPS", path="/x")) \
        == "https GET 10.0.0.1:web/x"
    assert describe(Probe("tcpSocket", port=53, host="10.0.0.1")) == "tcp 10.0.0.1:53"


def test_startup_probe_gates_liveness_and_readiness():
    # docs "protect slow starting containers": startup failureThreshold 30, period 10
    startup = Probe("httpGet", port="liveness-port", path="/healthz", failure_threshold=30)
    liveness = Probe("httpGet", port="liveness-port", path="/healthz", failure_threshold=1)
    cp = ContainerProbes(0.0, startup=startup, liveness=liveness, readiness=TCP)
    assert not cp.started and not cp.ready
    assert cp.reason == "startup probe http GET :liveness-port/healthz has not run yet"
    runs, transitions = simulate(cp, lambda t, k: (t >= 45, "HTTP 503"), until=65, step=1)
    assert [t for t, k in runs if k == "startup"] == [0, 10, 20, 30, 40, 50]
    assert all(t >= 50 for t, k in runs if k != "startup")  # gated until started
    assert [(t, tr.action) for t, tr in transitions] == [(50, "started"), (50, "ready")]
    assert (50, "readiness") in runs  # readiness runs at once (kubelet's manual trigger)
    assert [t for t, k in runs if k == "liveness"] == [50, 60]  # liveness on its own grid
    assert cp.started and cp.ready and cp.reason == "readiness probe tcp 9999 succeeded"


def test_startup_failing_threshold_restarts_within_failure_threshold_times_period():
    startup = Probe("exec", command=("true",), failure_threshold=30,
                    termination_grace_period_seconds=7)
    cp = ContainerProbes(0.0, startup=startup, liveness=HTTP)
    runs, transitions = simulate(cp, always(False, "exit status 1"), until=400, step=1)
    [(when, tr)] = transitions
    assert when == 290 <= 30 * 10 and tr.action == "restart" and tr.grace_seconds == 7
    assert {k for _, k in runs} == {"startup"}


def test_restart_resets_everything_and_drops_stale_results():
    probe = Probe("tcpSocket", port=9999, initial_delay_seconds=5, period_seconds=5,
                  failure_threshold=1)
    cp = ContainerProbes(0.0, liveness=probe, readiness=Probe("tcpSocket", port=9999))
    cp.record(0, "readiness", True, "connected")
    assert cp.ready
    gen = cp.generation
    [w] = [w for w in cp.due(5) if w.probe_type == "liveness"]
    w.begin(5)
    assert cp.record(5, "liveness", False, "connection refused").action == "restart"
    cp.restart(20)
    assert cp.restarts == 1 and not cp.ready  # readiness starts over as failure
    assert cp.record(21, "readiness", True, "connected", generation=gen) is None  # stale
    assert not cp.ready
    assert [x.probe_type for x in cp.due(20)] == ["readiness"]  # liveness waits initialDelay
    assert cp.workers["liveness"].next_at == 25
    assert cp.workers["liveness"].reason == \
        "liveness probe tcp 9999 waits initialDelaySeconds (5s)"


def test_in_flight_probe_is_not_due_again_and_slow_probe_keeps_the_grid():
    cp = ContainerProbes(0.0, readiness=Probe("tcpSocket", port=1, period_seconds=10))
    [w] = cp.due(0)
    w.begin(0)
    assert cp.due(12) == [] and cp.next_due() is None
    cp.record(12, "readiness", False, "timed out")  # took longer than the period
    assert w.next_at == 12  # the missed tick fires at once, like a Go ticker
    cp.record(13, "readiness", False, "timed out")
    assert w.next_at == 20  # then back on the grid


def test_exited_container_is_not_probed_and_late_results_are_ignored():
    cp = ContainerProbes(0.0, readiness=TCP, liveness=HTTP)
    cp.record(0, "readiness", True, "connected")
    cp.exited()
    assert not cp.ready and cp.due(100) == [] and cp.next_due() is None
    assert cp.record(1, "liveness", False, "x") is None
    cp.restart(50)
    assert cp.running and not cp.ready and len(cp.due(50)) == 2


def test_liveness_success_publishes_nothing():
    cp = ContainerProbes(0.0, liveness=HTTP)
    assert cp.record(0, "liveness", True, "HTTP 200") is None
    assert cp.workers["liveness"].reason == "liveness probe http GET :8080/healthz succeeded"


def test_of_container_and_target_named_ports():
    c = Container("app", ports=(ContainerPort(8080, name="web"), ContainerPort(53, "UDP")),
                  readiness_probe=TCP, startup_probe=EXEC)
    cp = ContainerProbes.of(c, 3.0)
    assert set(cp.workers) == {"readiness", "startup"} and cp.started_at == 3.0
    assert Target.of(c, "/run/netns/x", "10.0.0.2").ports == {"web": 8080}


def test_each_restart_counts_initial_delay_from_the_new_start():
    probe = Probe("tcpSocket", port=80, initial_delay_seconds=5, period_seconds=5)
    cp = ContainerProbes(0.0, liveness=probe)
    _, transitions = simulate(cp, always(False, "connection refused"), until=50, restart=True)
    assert [t for t, _ in transitions] == [15, 30, 45] and cp.restarts == 3


def test_awaiting_until_the_first_startup_or_readiness_result():
    """`awaiting` (in the agent's status, read by Lab.settle): a readiness or startup probe
    that has given no result yet, initialDelaySeconds included; a failed result counts as a
    result (a never-ready pod has had its say); a stopped container awaits nothing."""
    delayed = Probe("tcpSocket", port=9999, initial_delay_seconds=2)
    cp = ContainerProbes(0.0, readiness=delayed)
    runs, _ = simulate(cp, always(False, "connection refused"), until=1.5)
    assert runs == [] and cp.awaiting  # still in initialDelaySeconds
    runs, _ = simulate(cp, always(False, "connection refused"), until=2.0, start=2.0)
    assert runs == [(2.0, "readiness")] and not cp.awaiting and not cp.ready
    gated = ContainerProbes(0.0, startup=TCP, readiness=TCP)
    assert gated.awaiting
    simulate(gated, always(True), until=0.0)
    assert not gated.awaiting and gated.ready
    gated.exited()
    assert not gated.awaiting
    assert not ContainerProbes(0.0, liveness=TCP).awaiting  # liveness never holds it up
