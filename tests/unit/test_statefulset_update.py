"""StatefulSet spec.updateStrategy, planned without a kernel: which revision of the template
each ordinal runs at each step of an update (RollingUpdate from the highest ordinal, each
after the one before is ready; partition; maxUnavailable; OnDelete), old pods kept exactly as
they were, and the API server's validation."""

from __future__ import annotations

import re

import pytest

from netlab.compile import DesiredLab, compile_lab, current
from netlab.errors import InputError
from netlab.loader import build, read_text
from netlab.plan import K8S_ALPHANUMS, REVISION_LABEL, Plan

PODS = ("default/web-0", "default/web-1", "default/web-2")
READY = {k: (True, "") for k in PODS}


def sts(rev: str = "v1", replicas: int = 3, strategy: str = "", policy: str = "",
        labels: str = "{app: web}") -> str:
    """A StatefulSet whose one container prints its revision (env REV)."""
    return f"""---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web}}
spec:
  serviceName: nginx
  replicas: {replicas}
{policy}{strategy}  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {labels}}}
    spec:
      containers:
      - name: c
        command: [sh, -c, 'echo $REV; sleep 1000']
        env: [{{name: REV, value: "{rev}"}}]
        readinessProbe: {{exec: {{command: ["true"]}}}}
"""


def lab(text: str, previous: Plan | None = None,
        readiness: dict[str, tuple[bool, str]] | None = None) -> DesiredLab:
    return compile_lab("lab", read_text(text, "t.yaml"), previous=previous, readiness=readiness)


def revs(d: DesiredLab) -> dict[str, str]:
    """Pod name -> the REV its container runs with (what render gives the agent)."""
    out = {}
    for key, procs in d.processes.items():
        if key.startswith("default/web-"):
            (p,) = procs
            out[key.split("/")[1]] = dict(p.env)["REV"]
    return out


def running(text: str, replicas: int = 3) -> DesiredLab:
    """The StatefulSet up with every pod ready (OrderedReady: one more per converge)."""
    d = lab(text)
    for _ in range(replicas):
        d = lab(text, d.plan, READY)
    assert revs(d) == {f"web-{i}": "v1" for i in range(replicas)}
    return d


def sts_pods(d: DesiredLab) -> dict[str, object]:
    return {k: p for k, p in d.plan.pods.items() if k.startswith("default/web-")}


def test_revision_label_names_the_template():
    d = running(sts())
    hashes = {p.labels[REVISION_LABEL] for p in sts_pods(d).values()}
    assert len(hashes) == 1
    (rev,) = hashes
    assert re.fullmatch(f"web-[{K8S_ALPHANUMS}]{{10}}", rev)
    assert d.plan.statefulsets["default/web"].update == rev
    again = lab(sts(), d.plan, READY)
    assert sts_pods(again) == sts_pods(d)  # same template: nothing moves
    changed = lab(sts("v2"), d.plan, READY)
    assert changed.plan.statefulsets["default/web"].update != rev


def test_rolling_update_from_the_highest_ordinal_each_after_the_one_before_is_ready():
    d = running(sts())
    before = sts_pods(d)
    new = sts("v2")
    step = lab(new, d.plan, READY)
    assert revs(step) == {"web-0": "v1", "web-1": "v1", "web-2": "v2"}
    # the pods not yet updated are kept exactly: same PodPlan (node, address, veth, spec)
    after = sts_pods(step)
    for k in ("default/web-0", "default/web-1"):
        assert after[k] == before[k] and after[k].labels == before[k].labels
    assert after["default/web-2"].spec_hash != before["default/web-2"].spec_hash
    update = step.plan.statefulsets["default/web"].update
    assert after["default/web-2"].labels[REVISION_LABEL] == update
    # web-2 (new) not reported yet, then reported not ready: web-1 waits
    not_ready = {k: v for k, v in READY.items() if k != "default/web-2"}
    for readiness in (not_ready, {**READY, "default/web-2": (False, "probe failed")}):
        step = lab(new, step.plan, readiness)
        assert revs(step) == {"web-0": "v1", "web-1": "v1", "web-2": "v2"}
    step = lab(new, step.plan, READY)
    assert revs(step) == {"web-0": "v1", "web-1": "v2", "web-2": "v2"}
    assert sts_pods(step)["default/web-0"] == before["default/web-0"]
    step = lab(new, step.plan, {**READY, "default/web-1": (False, "probe failed")})
    assert revs(step) == {"web-0": "v1", "web-1": "v2", "web-2": "v2"}
    step = lab(new, step.plan, READY)
    assert revs(step) == {"web-0": "v2", "web-1": "v2", "web-2": "v2"}
    record = step.plan.statefulsets["default/web"]
    assert record.current == record.update and list(record.templates) == [record.update]
    assert {p.labels[REVISION_LABEL] for p in sts_pods(step).values()} == {update}


def test_ordered_ready_waits_for_every_pod_before_updating():
    d = running(sts())
    step = lab(sts("v2"), d.plan, {**READY, "default/web-0": (False, "probe failed")})
    assert revs(step) == {"web-0": "v1", "web-1": "v1", "web-2": "v1"}


def test_parallel_one_at_a_time_and_not_blocked_by_a_lower_pod():
    parallel = "  podManagementPolicy: Parallel\n"
    d = lab(sts(policy=parallel), readiness=READY)
    assert revs(d) == {"web-0": "v1", "web-1": "v1", "web-2": "v1"}
    d = lab(sts(policy=parallel), d.plan, READY)
    broken = {**READY, "default/web-0": (False, "probe failed")}
    step = lab(sts("v2", policy=parallel), d.plan, broken)
    assert revs(step) == {"web-0": "v1", "web-1": "v1", "web-2": "v2"}
    step = lab(sts("v2", policy=parallel), step.plan, {**broken, "default/web-2": (False, "")})
    assert revs(step) == {"web-0": "v1", "web-1": "v1", "web-2": "v2"}
    step = lab(sts("v2", policy=parallel), step.plan, broken)
    assert revs(step) == {"web-0": "v1", "web-1": "v2", "web-2": "v2"}


@pytest.mark.parametrize("max_unavailable", ["2", "'50%'"])
def test_parallel_max_unavailable_updates_several_at_once(max_unavailable):
    parallel = "  podManagementPolicy: Parallel\n"
    strategy = ("  updateStrategy:\n    type: RollingUpdate\n"
                f"    rollingUpdate: {{maxUnavailable: {max_unavailable}}}\n")
    d = lab(sts(policy=parallel, strategy=strategy), readiness=READY)
    d = lab(sts(policy=parallel, strategy=strategy), d.plan, READY)
    assert not any("maxUnavailable" in w for w in d.warnings), d.warnings
    new = sts("v2", policy=parallel, strategy=strategy)
    step = lab(new, d.plan, READY)  # 50% of 3, rounded up: 2
    assert revs(step) == {"web-0": "v1", "web-1": "v2", "web-2": "v2"}
    # one of them not ready: one pod unavailable, budget 1 left
    step2 = lab(new, step.plan, {**READY, "default/web-1": (False, "")})
    assert revs(step2) == {"web-0": "v2", "web-1": "v2", "web-2": "v2"}
    # both not ready: no budget, web-0 waits
    step3 = lab(new, step.plan, {"default/web-0": (True, "")})
    assert revs(step3) == {"web-0": "v1", "web-1": "v2", "web-2": "v2"}


def test_max_unavailable_with_ordered_ready_is_one_with_a_warning():
    strategy = "  updateStrategy:\n    rollingUpdate: {maxUnavailable: 2}\n"
    d = running(sts(strategy=strategy))
    assert any("maxUnavailable 2 is treated as 1" in w for w in d.warnings), d.warnings
    step = lab(sts("v2", strategy=strategy), d.plan, READY)
    assert revs(step) == {"web-0": "v1", "web-1": "v1", "web-2": "v2"}


def test_partition_updates_only_the_ordinals_at_or_above_it():
    strategy = "  updateStrategy:\n    type: RollingUpdate\n    rollingUpdate: {partition: 1}\n"
    d = running(sts(strategy=strategy))
    new = sts("v2", strategy=strategy)
    step = lab(new, d.plan, READY)
    step = lab(new, step.plan, READY)
    assert revs(step) == {"web-0": "v1", "web-1": "v2", "web-2": "v2"}
    for _ in range(3):  # it stays so
        step = lab(new, step.plan, READY)
        assert revs(step) == {"web-0": "v1", "web-1": "v2", "web-2": "v2"}
    record = step.plan.statefulsets["default/web"]
    assert record.current != record.update and set(record.templates) == {record.current,
                                                                         record.update}
    # scale up: a new ordinal above the partition gets the new template
    up = lab(sts("v2", replicas=4, strategy=strategy), step.plan, READY)
    assert revs(up) == {"web-0": "v1", "web-1": "v2", "web-2": "v2", "web-3": "v2"}
    # partition lowered to 0: web-0 follows (the canary went well)
    done = lab(sts("v2", replicas=4), up.plan,
               {**READY, "default/web-3": (True, "")})
    assert revs(done)["web-0"] == "v2"


def test_new_pod_below_the_partition_is_created_at_the_current_revision():
    strategy = "  updateStrategy:\n    rollingUpdate: {partition: 3}\n"
    d = running(sts(replicas=2, strategy=strategy), replicas=2)
    # template changed and scaled up at once: web-2 is below the partition, so it is created
    # at the current revision, as the docs say for pods below a partition
    two = {k: v for k, v in READY.items() if k != "default/web-2"}
    step = lab(sts("v2", replicas=4, strategy=strategy), d.plan, two)
    assert revs(step) == {"web-0": "v1", "web-1": "v1", "web-2": "v1"}
    step = lab(sts("v2", replicas=4, strategy=strategy), step.plan, READY)
    assert revs(step) == {"web-0": "v1", "web-1": "v1", "web-2": "v1", "web-3": "v2"}


def test_on_delete_keeps_old_pods_and_new_pods_get_the_new_template():
    strategy = "  updateStrategy: {type: OnDelete}\n"
    d = running(sts(strategy=strategy))
    before = sts_pods(d)
    new = sts("v2", strategy=strategy)
    step = d
    for _ in range(3):
        step = lab(new, step.plan, READY)
        assert revs(step) == {"web-0": "v1", "web-1": "v1", "web-2": "v1"}
        assert sts_pods(step) == before
    up = lab(sts("v2", replicas=4, strategy=strategy), step.plan, READY)
    assert revs(up) == {"web-0": "v1", "web-1": "v1", "web-2": "v1", "web-3": "v2"}
    record = up.plan.statefulsets["default/web"]
    assert {p.labels[REVISION_LABEL] for p in sts_pods(up).values()} == set(record.templates)
    # switched to RollingUpdate: the update starts from the highest ordinal not updated
    rolling = lab(sts("v2", replicas=4), up.plan, {**READY, "default/web-3": (True, "")})
    assert revs(rolling) == {"web-0": "v1", "web-1": "v1", "web-2": "v2", "web-3": "v2"}


def test_stored_plan_renders_old_pods_with_their_old_spec():
    """What a running lab holds (compile.current, from the state file's plan and documents)
    mid-update: the old pods still render their old template."""
    d = running(sts())
    step = lab(sts("v2"), d.plan, READY)
    stored = Plan.from_json(step.plan.to_json())
    assert stored.statefulsets == step.plan.statefulsets
    assert revs(current(stored, read_text(sts("v2"), "t.yaml"))) == \
        {"web-0": "v1", "web-1": "v1", "web-2": "v2"}
    step = lab(sts("v2"), stored, READY)  # the update goes on from the stored plan
    assert revs(step) == {"web-0": "v1", "web-1": "v2", "web-2": "v2"}


def test_revert_mid_update_rolls_the_updated_pods_back():
    d = running(sts())
    step = lab(sts("v2"), d.plan, READY)
    assert revs(step) == {"web-0": "v1", "web-1": "v1", "web-2": "v2"}
    back = lab(sts("v1"), step.plan, {**READY, "default/web-2": (False, "")})
    # web-2 is now the one out of date; OrderedReady updates nothing while it is not ready
    # (Kubernetes' "forced rollback" caveat)
    assert revs(back) == {"web-0": "v1", "web-1": "v1", "web-2": "v2"}
    back = lab(sts("v1"), step.plan, READY)
    assert revs(back) == {"web-0": "v1", "web-1": "v1", "web-2": "v1"}
    assert sts_pods(back)["default/web-0"] == sts_pods(d)["default/web-0"]


def test_label_only_change_rolls_without_recreating():
    d = running(sts())
    new = sts(labels="{app: web, tier: db}")
    step = lab(new, d.plan, READY)
    pods = sts_pods(step)
    assert pods["default/web-2"].labels.get("tier") == "db"
    assert "tier" not in pods["default/web-1"].labels
    assert pods["default/web-2"].ip == sts_pods(d)["default/web-2"].ip  # same spec: kept


def _error(strategy: str, policy: str = "") -> InputError:
    with pytest.raises(InputError) as e:
        build(read_text(sts(strategy=strategy, policy=policy), "t.yaml"))
    return e.value


@pytest.mark.parametrize("strategy,field,words", [
    ("  updateStrategy: {type: Recreate}\n", "spec.updateStrategy.type", "RollingUpdate"),
    ("  updateStrategy: {type: OnDelete, rollingUpdate: {partition: 1}}\n",
     "spec.updateStrategy.rollingUpdate", "only allowed for updateStrategy type RollingUpdate"),
    ("  updateStrategy: {rollingUpdate: {partition: -1}}\n",
     "spec.updateStrategy.rollingUpdate.partition", "greater than or equal to 0"),
    ("  updateStrategy: {rollingUpdate: {partition: two}}\n",
     "spec.updateStrategy.rollingUpdate.partition", "integer"),
    ("  updateStrategy: {rollingUpdate: {maxUnavailable: 0}}\n",
     "spec.updateStrategy.rollingUpdate.maxUnavailable", "cannot be 0"),
    ("  updateStrategy: {rollingUpdate: {maxUnavailable: '0%'}}\n",
     "spec.updateStrategy.rollingUpdate.maxUnavailable", "cannot be 0"),
    ("  updateStrategy: {rollingUpdate: {maxUnavailable: -1}}\n",
     "spec.updateStrategy.rollingUpdate.maxUnavailable", "greater than or equal to 0"),
    ("  updateStrategy: {rollingUpdate: {maxUnavailable: '150%'}}\n",
     "spec.updateStrategy.rollingUpdate.maxUnavailable", "greater than 100%"),
    ("  updateStrategy: {rollingUpdate: {maxUnavailable: 'half'}}\n",
     "spec.updateStrategy.rollingUpdate.maxUnavailable", "percentage"),
    ("  updateStrategy: {rollingUpdate: {maxUnavailable: true}}\n",
     "spec.updateStrategy.rollingUpdate.maxUnavailable", "percentage"),
    ("  updateStrategy: RollingUpdate\n", "spec.updateStrategy", "mapping"),
])
def test_validation_as_the_api_server(strategy, field, words):
    e = _error(strategy)
    assert e.field == field and words in e.detail, e
    assert e.file == "t.yaml" and e.obj == "StatefulSet default/web" and e.exit_code == 2


@pytest.mark.parametrize("strategy", [
    "  updateStrategy: {}\n",
    "  updateStrategy: {type: RollingUpdate}\n",
    "  updateStrategy: {type: OnDelete}\n",
    "  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 0}}\n",
    "  updateStrategy: {rollingUpdate: {partition: 5, maxUnavailable: '100%'}}\n",
])
def test_valid_strategies_load_without_warnings(strategy):
    m = build(read_text(sts(strategy=strategy, policy="  podManagementPolicy: Parallel\n"),
                        "t.yaml"))
    assert not [w for w in m.warnings if "updateStrategy" in w], m.warnings


def test_converging_an_update_replaces_one_pod_and_forgets_its_readiness():
    """Through the converger (a fake kernel): each step re-creates exactly one pod and drops
    its readiness from the lab's state (readiness is a pod's, not a name's), so the old
    pod's cannot release the next step, and the agent's report on the new one is a change
    that converges the lab again."""
    from netlab.converge import Converger, converge_docs
    from netlab.kernel.fake import FakeKernel
    from netlab.state import LabState

    fake, st = FakeKernel("lab"), LabState("lab")
    v1 = read_text(sts(), "t.yaml")
    Converger(fake, st).converge(None, lab(sts()), v1)
    for _ in range(3):
        st.readiness = dict(READY)
        converge_docs(fake, st, v1)
    assert sorted(k for k in st.plan.pods if k.startswith("default/web-")) == list(PODS)
    v2 = read_text(sts("v2"), "t.yaml")
    st.readiness = dict(READY)
    for name in ("web-2", "web-1", "web-0"):
        summary = converge_docs(fake, st, v2)
        assert summary.created == summary.deleted == [f"default/{name}"], summary
        assert f"default/{name}" not in st.readiness
        again = converge_docs(fake, st, v2)  # not reported yet: nothing moves
        assert again.created == [], again
        st.readiness = dict(READY)  # the agent reports the new pod ready
    assert converge_docs(fake, st, v2).created == []
    update = st.plan.statefulsets["default/web"].update
    assert {st.plan.pods[k].labels[REVISION_LABEL] for k in PODS} == {update}
