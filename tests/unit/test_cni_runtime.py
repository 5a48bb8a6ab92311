"""netlab.kernel.cni without root: fake plugins (small Python scripts in tmp_path) run with
runtime_netns=None (the test seam: the caller's own namespace; they touch no network).
They log their environment and stdin, so the tests see exactly what a plugin is given."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from netlab import cni
from netlab.errors import InputError, KernelError
from netlab.kernel.cni import CniRuntime

# One script, installed under several names (its type). It appends {type, env, stdin} to
# LOG; on ADD it extends prevResult: "ip" adds an address on CNI_IFNAME (created, with the
# sandbox CNI_NETNS, if the result has none), "route" a route. Conf keys "fail" (an error
# JSON for stdout), "stderr_fail", "hang" (sleep, with a child, recording both pids) and
# "fail_del" change what it does.
PLUGIN = r'''#!{python}
import json, os, subprocess, sys, time
LOG = {log!r}
conf = json.load(sys.stdin)
cmd = os.environ.get("CNI_COMMAND")
kind = os.path.basename(sys.argv[0])
with open(LOG, "a") as f:
    f.write(json.dumps({{"type": kind, "env": dict(os.environ), "stdin": conf,
                        "netns": os.stat("/proc/self/ns/net").st_ino}}) + "\n")
if cmd == "VERSION":
    print(json.dumps({{"cniVersion": "1.0.0", "supportedVersions": ["0.3.1", "0.4.0", "1.0.0"]}}))
    sys.exit(0)
if cmd == "DEL" and conf.get("fail_del"):
    print(json.dumps({{"code": 5, "msg": "cannot delete"}}))
    sys.exit(1)
if cmd != "ADD":
    sys.exit(0)
if conf.get("hang"):
    child = subprocess.Popen(["sleep", "1000"])
    with open(conf["hang"], "w") as f:
        f.write(f"{{os.getpid()}} {{child.pid}}")
    time.sleep(1000)
if conf.get("fail"):
    print(json.dumps(conf["fail"]))
    sys.exit(1)
if conf.get("stderr_fail"):
    sys.stderr.write(conf["stderr_fail"])
    sys.exit(3)
res = conf.get("prevResult") or {{"cniVersion": conf["cniVersion"]}}
res.setdefault("interfaces", [])
res.setdefault("ips", [])
if "ip" in conf:
    names = [i["name"] for i in res["interfaces"]]
    if os.environ["CNI_IFNAME"] not in names:
        res["interfaces"].append({{"name": os.environ["CNI_IFNAME"],
                                  "sandbox": os.environ["CNI_NETNS"]}})
        names.append(os.environ["CNI_IFNAME"])
    res["ips"].append({{"interface": names.index(os.environ["CNI_IFNAME"]),
                       "address": conf["ip"]}})
if "route" in conf:
    res.setdefault("routes", []).append({{"dst": conf["route"]}})
print(json.dumps(res))
'''

TYPES = ("a", "b", "c", "fail")
EXPECTED_ENV = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS",
                "CNI_PATH", "PATH"}
POD_ARGS = cni.pod_cni_args("default", "web", "c0ffee")


@pytest.fixture
def env(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "log.jsonl"
    script = PLUGIN.format(python=sys.executable, log=str(log))
    for t in TYPES:
        p = bin_dir / t
        p.write_text(script)
        p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    netns = tmp_path / "netns-pod"
    netns.touch()  # stands for the pod's namespace file: CNI_NETNS is passed through

    class Env:
        pass

    e = Env()
    e.tmp, e.bin, e.log, e.netns = tmp_path, bin_dir, log, str(netns)
    e.cache = tmp_path / "cache"
    e.runtime = CniRuntime([str(tmp_path / "empty"), str(bin_dir)], None, e.cache, timeout=5)
    e.calls = lambda: ([json.loads(line) for line in log.read_text().splitlines()]
                       if log.exists() else [])
    return e


def conflist(*plugins: dict, version: str = "1.0.0", **extra) -> cni.NetworkConfigList:
    return cni.parse_conflist({"cniVersion": version, "name": "testnet",
                               "plugins": list(plugins), **extra})


ABC = ({"type": "a", "ip": "10.244.0.5/24"}, {"type": "b", "route": "0.0.0.0/0"},
       {"type": "c", "ip": "fd00::5/64", "capabilities": {"portMappings": True}})
PORTS = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
         "bandwidth": {"ingressRate": 1000}}


def test_add_runs_plugins_in_order_with_the_cni_environment_and_chains_prev_result(env):
    c = conflist(*ABC)
    result = env.runtime.add(c, "c0ffee", env.netns, "eth0", POD_ARGS, PORTS)
    calls = env.calls()
    assert [(x["type"], x["env"]["CNI_COMMAND"]) for x in calls] == [
        ("a", "ADD"), ("b", "ADD"), ("c", "ADD")]
    for x in calls:
        # exactly the spec's variables and PATH (a child Python may add LC_CTYPE itself)
        assert set(x["env"]) - {"LC_CTYPE"} == EXPECTED_ENV
        assert x["env"]["CNI_CONTAINERID"] == "c0ffee"
        assert x["env"]["CNI_NETNS"] == env.netns
        assert x["env"]["CNI_IFNAME"] == "eth0"
        assert x["env"]["CNI_ARGS"] == ("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;"
                                        "K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=c0ffee")
        assert x["env"]["CNI_PATH"] == f"{env.tmp / 'empty'}:{env.bin}"
        assert "/usr/sbin" in x["env"]["PATH"].split(":")  # iptables for portmap
        assert x["stdin"]["name"] == "testnet" and x["stdin"]["cniVersion"] == "1.0.0"
    a, b, c_ = (x["stdin"] for x in calls)
    assert "prevResult" not in a
    # each plugin gets the previous one's result
    assert b["prevResult"] == {"cniVersion": "1.0.0",
                               "interfaces": [{"name": "eth0", "sandbox": env.netns}],
                               "ips": [{"interface": 0, "address": "10.244.0.5/24"}]}
    assert c_["prevResult"]["routes"] == [{"dst": "0.0.0.0/0"}]
    # runtimeConfig only for the plugin that declares the capability, and only that key
    assert "runtimeConfig" not in a and "runtimeConfig" not in b
    assert c_["runtimeConfig"] == {"portMappings": PORTS["portMappings"]}
    # the final result is the last plugin's
    assert result.pod_ips("eth0", env.netns) == ("10.244.0.5", "fd00::5")
    assert result.routes == (cni.Route("0.0.0.0/0"),)


def test_the_cache_record_is_written_after_add_and_removed_by_del(env):
    c = conflist(*ABC)
    result = env.runtime.add(c, "c0ffee", env.netns, "eth0", POD_ARGS, PORTS)
    path = env.cache / "results" / "testnet-c0ffee-eth0"
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    rec = cni.read_cache(path.read_bytes())
    assert rec.result == result.raw and rec.netns == env.netns
    assert rec.cni_args == POD_ARGS and rec.capability_args == PORTS
    assert rec.conflist == c
    assert env.runtime.cached("testnet", "c0ffee", "eth0") == rec

    env.log.unlink()
    env.runtime.delete(c, "c0ffee", env.netns, "eth0", POD_ARGS, PORTS)
    calls = env.calls()
    assert [(x["type"], x["env"]["CNI_COMMAND"]) for x in calls] == [
        ("c", "DEL"), ("b", "DEL"), ("a", "DEL")]
    for x in calls:  # every plugin gets the cached (final) result on DEL
        assert x["stdin"]["prevResult"] == result.raw
        assert x["env"]["CNI_NETNS"] == env.netns
    assert not path.exists()


def test_del_works_without_a_cache_record_and_with_the_pod_namespace_gone(env):
    c = conflist(*ABC)
    env.runtime.delete(c, "c0ffee", env.tmp / "gone", "eth0", POD_ARGS)
    calls = env.calls()
    assert [x["type"] for x in calls] == ["c", "b", "a"]
    for x in calls:
        assert "prevResult" not in x["stdin"]
        assert x["env"]["CNI_NETNS"] == ""  # as containerd passes a closed namespace
    env.runtime.delete(c, "c0ffee", env.tmp / "gone", "eth0", POD_ARGS)  # and again


def test_del_before_0_4_0_gets_no_prev_result(env):
    c = conflist(*ABC, version="0.3.1")
    env.runtime.add(c, "id1", env.netns, "eth0")
    env.log.unlink()
    env.runtime.delete(c, "id1", env.netns, "eth0")
    assert all("prevResult" not in x["stdin"] for x in env.calls())
    assert not (env.cache / "results" / "testnet-id1-eth0").exists()


def test_an_unreadable_cache_record_is_dropped_on_del(env):
    c = conflist(*ABC)
    path = env.cache / "results" / "testnet-id1-eth0"
    path.parent.mkdir(parents=True)
    path.write_text("garbage")
    env.runtime.delete(c, "id1", env.netns, "eth0")
    assert all("prevResult" not in x["stdin"] for x in env.calls())
    assert not path.exists()


def test_check_runs_in_order_with_the_cached_result(env):
    c = conflist(*ABC)
    result = env.runtime.add(c, "c0ffee", env.netns, "eth0", POD_ARGS)
    env.log.unlink()
    env.runtime.check(c, "c0ffee", env.netns, "eth0", POD_ARGS)
    calls = env.calls()
    assert [(x["type"], x["env"]["CNI_COMMAND"]) for x in calls] == [
        ("a", "CHECK"), ("b", "CHECK"), ("c", "CHECK")]
    assert all(x["stdin"]["prevResult"] == result.raw for x in calls)


def test_check_is_skipped_with_disable_check_and_refused_before_0_4_0(env):
    env.runtime.check(conflist(*ABC, disableCheck=True), "c0ffee", env.netns, "eth0")
    assert env.calls() == []
    with pytest.raises(InputError, match=r"'0\.3\.1' does not support the CHECK command"):
        env.runtime.check(conflist(*ABC, version="0.3.1"), "c0ffee", env.netns, "eth0")
    with pytest.raises(KernelError, match="no cached result of ADD on network testnet for "
                                          "pod default/web"):
        env.runtime.check(conflist(*ABC), "c0ffee", env.netns, "eth0", POD_ARGS)
    assert env.calls() == []


def test_a_failing_plugin_surfaces_its_error_json_and_the_list_is_deleted(env):
    fail = {"type": "fail", "fail": {"cniVersion": "1.0.0", "code": 7, "msg": "bad subnet",
                                     "details": "10.0.0.0/33"}}
    c = conflist(ABC[0], fail, ABC[2])
    with pytest.raises(cni.CniPluginError) as e:
        env.runtime.add(c, "c0ffee", env.netns, "eth0", POD_ARGS)
    err = e.value
    assert (err.code, err.msg, err.details, err.plugin, err.command, err.pod) == (
        7, "bad subnet", "10.0.0.0/33", "fail", "ADD", "default/web")
    assert str(err) == ("CNI plugin fail ADD for pod default/web: code 7 (invalid network "
                        "config): bad subnet (10.0.0.0/33)")
    assert err.exit_code == 1 and err.cleanup_error is None
    # containerd tears a failed setup down: DEL of the whole list, in reverse, no cache
    assert [(x["type"], x["env"]["CNI_COMMAND"]) for x in env.calls()] == [
        ("a", "ADD"), ("fail", "ADD"), ("c", "DEL"), ("fail", "DEL"), ("a", "DEL")]
    assert all("prevResult" not in x["stdin"] for x in env.calls()[2:])
    assert not (env.cache / "results" / "testnet-c0ffee-eth0").exists()


def test_a_failed_cleanup_is_noted_on_the_original_error(env):
    c = conflist({"type": "a", "fail_del": True}, {"type": "fail", "fail": {"code": 11,
                                                                            "msg": "later"}})
    with pytest.raises(cni.CniPluginError) as e:
        env.runtime.add(c, "c0ffee", env.netns, "eth0", POD_ARGS)
    assert e.value.code == 11 and e.value.plugin == "fail"
    assert "CNI plugin a DEL for pod default/web: code 5 (I/O failure): cannot delete" in \
        e.value.cleanup_error
    assert any("cleaning up" in n for n in e.value.__notes__)


def test_an_error_without_json_falls_back_to_stderr(env):
    c = conflist({"type": "fail", "stderr_fail": "panic: no bridge\n"})
    with pytest.raises(cni.CniPluginError) as e:
        env.runtime.add(c, "c0ffee", env.netns, "eth0")
    assert e.value.code is None
    assert str(e.value) == ("CNI plugin fail ADD for container c0ffee: panic: no bridge "
                            "[exit status 3]")


def test_a_plugin_that_hangs_is_killed_with_its_process_group(env):
    pids = env.tmp / "pids"
    runtime = CniRuntime([str(env.bin)], None, env.cache, timeout=1.0)
    c = conflist(ABC[0], {"type": "b", "hang": str(pids)})
    start = time.monotonic()
    with pytest.raises(cni.CniPluginTimeoutError) as e:
        runtime.add(c, "c0ffee", env.netns, "eth0", POD_ARGS)
    assert time.monotonic() - start < 8
    assert str(e.value).startswith("CNI plugin b ADD for pod default/web: did not finish "
                                   "within 1 s and was killed")
    plugin_pid, child_pid = (int(x) for x in pids.read_text().split())
    for pid in (plugin_pid, child_pid):  # both gone (a zombie would still be in /proc)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    # the cleanup DEL still ran (hang only affects ADD)
    assert [x["env"]["CNI_COMMAND"] for x in env.calls()][-2:] == ["DEL", "DEL"]


def test_a_missing_plugin_names_the_bin_dirs_searched(env):
    c = conflist({"type": "nope"})
    with pytest.raises(cni.CniPluginNotFoundError) as e:
        env.runtime.add(c, "c0ffee", env.netns, "eth0", POD_ARGS)
    assert str(e.value).startswith(
        f"CNI plugin nope ADD for pod default/web: no plugin executable 'nope' in the CNI bin "
        f"directories {env.tmp / 'empty'}, {env.bin}")
    assert "DEL" in e.value.cleanup_error  # the cleanup DEL cannot find it either
    (env.bin / "noexec").write_text("#!/bin/sh\n")
    with pytest.raises(cni.CniPluginNotFoundError, match="noexec is not executable"):
        env.runtime.delete(conflist({"type": "noexec"}), "c0ffee", env.netns, "eth0")


def test_the_first_bin_dir_holding_the_plugin_wins(env):
    first = env.tmp / "first"
    first.mkdir()
    (first / "a").write_text((env.bin / "a").read_text().replace("#!", "#!", 1))
    (first / "a").chmod(0o755)
    runtime = CniRuntime([str(first), str(env.bin)], None, env.cache)
    assert runtime.find("a") == str(first / "a")
    assert runtime.find("b") == str(env.bin / "b")
    assert runtime.find("zzz") is None


def test_a_cache_record_that_cannot_be_written_undoes_the_add(env):
    blocker = env.tmp / "cache-is-a-file"
    blocker.write_text("")
    runtime = CniRuntime([str(env.bin)], None, blocker)
    with pytest.raises(KernelError, match=r"could not write the CNI cache record .*"
                                          r"the attachment was deleted"):
        runtime.add(conflist(*ABC), "c0ffee", env.netns, "eth0", POD_ARGS)
    assert [(x["type"], x["env"]["CNI_COMMAND"]) for x in env.calls()] == [
        ("a", "ADD"), ("b", "ADD"), ("c", "ADD"), ("c", "DEL"), ("b", "DEL"), ("a", "DEL")]


def test_a_result_that_is_not_a_cni_result_is_an_error(env):
    (env.bin / "junk").write_text("#!/bin/sh\ncat >/dev/null; echo not-json\n")
    (env.bin / "junk").chmod(0o755)
    with pytest.raises(cni.CniPluginError, match="junk ADD for container x: succeeded but its "
                                                 "output is not a CNI result"):
        env.runtime.add(conflist({"type": "junk"}), "x", env.netns, "eth0")


def test_version_is_asked_once_per_type(env):
    info = env.runtime.version("a")
    assert info == {"cniVersion": "1.0.0", "supportedVersions": ["0.3.1", "0.4.0", "1.0.0"]}
    env.runtime.version("a")
    calls = env.calls()
    assert len(calls) == 1
    assert calls[0]["env"]["CNI_COMMAND"] == "VERSION"
    assert calls[0]["stdin"] == {"cniVersion": "1.0.0"}
    assert env.runtime.version_problems(conflist(*ABC)) == []


def test_ids_are_checked_before_any_plugin_runs(env):
    with pytest.raises(InputError, match=r"cni\.containerID: 'a/b' is not a valid"):
        env.runtime.add(conflist(*ABC), "a/b", env.netns, "eth0")
    with pytest.raises(InputError, match=r"cni\.ifName: 'x+' is longer than 15"):
        env.runtime.add(conflist(*ABC), "id", env.netns, "x" * 16)
    assert env.calls() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="setns needs root")
def test_with_a_runtime_namespace_plugins_start_inside_it(env):
    # /proc/self/ns/net: the namespace this process already is in, so entering it changes
    # nothing on the machine; the lab tests enter a real node namespace
    runtime = CniRuntime([str(env.bin)], "/proc/self/ns/net", env.cache)
    runtime.add(conflist(*ABC), "c0ffee", env.netns, "eth0", POD_ARGS)
    calls = env.calls()
    assert [x["type"] for x in calls] == ["a", "b", "c"]
    assert {x["netns"] for x in calls} == {os.stat("/proc/self/ns/net").st_ino}
    assert set(calls[0]["env"]) - {"LC_CTYPE"} == EXPECTED_ENV


def test_a_missing_runtime_namespace_runs_nothing(env):
    runtime = CniRuntime([str(env.bin)], env.tmp / "no-such-netns", env.cache)
    with pytest.raises(KernelError, match=r"network namespace .*no-such-netns does not exist"):
        runtime.add(conflist(*ABC), "c0ffee", env.netns, "eth0")
    assert env.calls() == []


def test_delete_from_cache_deletes_every_cached_attachment(env):
    c1 = conflist(*ABC)
    c2 = cni.parse_conflist({"cniVersion": "0.4.0", "name": "other", "plugins": [ABC[1]]})
    env.runtime.add(c1, "pod1", env.netns, "eth0", cni.pod_cni_args("ns", "p1", "pod1"), PORTS)
    env.runtime.add(c2, "pod2", env.tmp / "gone-later", "net1",
                    cni.pod_cni_args("ns", "p2", "pod2"))
    (env.cache / "results" / "zz-junk").write_text("{}")
    env.log.unlink()

    # a fresh runtime, as `down` after a crash has: everything comes from the records
    errors = CniRuntime([str(env.bin)], None, env.tmp / "elsewhere").delete_from_cache(env.cache)
    assert [str(e) for e in errors] == [
        f"{env.cache / 'results' / 'zz-junk'}: not a CNI cache record (not a cniCacheV1 "
        "record); left in place"]
    calls = env.calls()
    assert [(x["stdin"]["name"], x["type"], x["env"]["CNI_COMMAND"]) for x in calls] == [
        ("other", "b", "DEL"),  # files in name order: other-pod2-net1, testnet-pod1-eth0
        ("testnet", "c", "DEL"), ("testnet", "b", "DEL"), ("testnet", "a", "DEL")]
    assert calls[0]["env"]["CNI_NETNS"] == ""  # the recorded namespace no longer exists
    assert calls[0]["env"]["CNI_IFNAME"] == "net1"
    assert calls[0]["stdin"]["cniVersion"] == "0.4.0"
    assert calls[1]["env"]["CNI_NETNS"] == env.netns
    assert "K8S_POD_NAME=p1" in calls[1]["env"]["CNI_ARGS"]
    assert calls[1]["stdin"]["runtimeConfig"] == {"portMappings": PORTS["portMappings"]}
    assert calls[1]["stdin"]["prevResult"]["ips"][0]["address"] == "10.244.0.5/24"
    assert sorted(p.name for p in (env.cache / "results").iterdir()) == ["zz-junk"]


def test_delete_from_cache_goes_on_after_a_failure(env):
    c1 = conflist({"type": "a", "ip": "10.0.0.2/24", "fail_del": True})
    c2 = cni.parse_conflist({"cniVersion": "1.0.0", "name": "zeta", "plugins": [ABC[1]]})
    env.runtime.add(c1, "p1", env.netns, "eth0")
    env.runtime.add(c2, "p2", env.netns, "eth0")
    errors = env.runtime.delete_from_cache()
    assert len(errors) == 1 and isinstance(errors[0], cni.CniPluginError)
    assert errors[0].command == "DEL" and errors[0].code == 5
    # the failed one keeps its record (for a retry), the other is gone
    assert sorted(os.listdir(env.cache / "results")) == ["testnet-p1-eth0"]
