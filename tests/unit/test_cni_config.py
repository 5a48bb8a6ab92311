"""netlab.cni, the pure half of the CNI runtime: conflists and their validation messages,
each plugin's stdin as libcni builds it, results (0.2.0 converted), errors, version
negotiation, the libcni result cache record, CNI_ARGS and host-local's dataDir."""

from __future__ import annotations

import base64
import json

import pytest

from netlab import cni
from netlab.errors import InputError, KernelError

CONFLIST = {
    "cniVersion": "1.0.0",
    "name": "k8s-pod-network",
    "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]]}},
        {"type": "portmap", "capabilities": {"portMappings": True, "ipRanges": False}},
        {"type": "bandwidth", "capabilities": {"bandwidth": True}},
    ],
}


def conflist(**changes) -> cni.NetworkConfigList:
    return cni.parse_conflist({**CONFLIST, **changes})


# --- parsing and validation -------------------------------------------------------------

def test_a_conflist_is_parsed_with_its_plugins_and_capabilities():
    raw = json.dumps(CONFLIST, indent=2).encode()
    c = cni.parse_conflist(raw)
    assert (c.name, c.cni_version, c.disable_check) == ("k8s-pod-network", "1.0.0", False)
    assert [p.type for p in c.plugins] == ["bridge", "portmap", "bandwidth"]
    assert c.plugins[0].capabilities == frozenset()
    assert c.plugins[1].capabilities == {"portMappings"}  # false is not declared
    assert c.plugins[0].raw == CONFLIST["plugins"][0]
    assert c.raw == raw  # libcni keeps the file's bytes (they go into the cache)


def test_disable_check_takes_booleans_and_libcnis_strings():
    assert conflist(disableCheck=True).disable_check
    assert conflist(disableCheck="TRUE").disable_check
    assert not conflist(disableCheck="false").disable_check
    with pytest.raises(InputError, match=r"cni.config.disableCheck: must be true or false"):
        conflist(disableCheck="yes")


def test_a_single_network_config_is_wrapped_as_libcnis_conf_list_from_conf():
    single = {"cniVersion": "0.4.0", "name": "mynet", "type": "bridge",
              "ipam": {"type": "host-local"}}
    c = cni.parse_conflist(json.dumps(single))
    assert (c.name, c.cni_version, len(c.plugins)) == ("mynet", "0.4.0", 1)
    assert c.plugins[0].type == "bridge"
    # the whole config (name and cniVersion too) becomes the one plugin, re-marshalled
    assert c.as_dict() == {"name": "mynet", "cniVersion": "0.4.0", "plugins": [single]}
    assert c.raw == (b'{"cniVersion":"0.4.0","name":"mynet","plugins":[{"cniVersion":"0.4.0",'
                     b'"ipam":{"type":"host-local"},"name":"mynet","type":"bridge"}]}')


@pytest.mark.parametrize(("changes", "message"), [
    ({"name": None}, "cni.config.name: missing"),
    ({"name": 3}, "cni.config.name: must be a string"),
    ({"name": "my net"}, "cni.config.name: 'my net' is not a valid CNI network name"),
    ({"name": "-net"}, "is not a valid CNI network name"),
    ({"cniVersion": None}, "cni.config.cniVersion: missing (one of 0.1.0"),
    ({"cniVersion": "1.1.0"}, 'cni.config.cniVersion: "1.1.0" is not a CNI version this '
                              "runtime knows: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0"),
    ({"plugins": []}, "cni.config.plugins: is empty: a network needs at least one plugin"),
    ({"plugins": {"type": "bridge"}}, "cni.config.plugins: must be a list"),
    ({"plugins": [{"type": "bridge"}, {"ipam": {}}]}, "cni.config.plugins[1].type: missing"),
    ({"plugins": [{"type": 7}]}, "cni.config.plugins[0].type: must be a string"),
    ({"plugins": ["bridge"]}, "cni.config.plugins[0]: must be a map with a type"),
    ({"plugins": [{"type": "/opt/cni/bin/bridge"}]},
     "cni.config.plugins[0].type: '/opt/cni/bin/bridge' must be the plain file name"),
    ({"plugins": [{"type": ".."}]}, "must be the plain file name"),
    ({"plugins": [{"type": "portmap", "capabilities": ["portMappings"]}]},
     "cni.config.plugins[0].capabilities: must map capability names to true or false"),
])
def test_validation_errors_name_the_field(changes, message):
    data = {**CONFLIST, **changes}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(InputError) as e:
        cni.parse_conflist(data)
    assert message in str(e.value)
    assert e.value.exit_code == 2


def test_bad_json_and_the_where_and_file_prefixes():
    with pytest.raises(InputError, match=r"^net\.conflist: cni\.config: is not valid JSON"):
        cni.parse_conflist(b"{nope", file="net.conflist")
    with pytest.raises(InputError, match=r"^spec\.cni: must be a map"):
        cni.parse_conflist(b"[1]", where="spec.cni")


def test_ifname_and_names_follow_libcni():
    assert cni.is_cni_name("k8s-pod_network.1") and not cni.is_cni_name("a/b")
    assert cni.ifname_problem("eth0") is None
    assert cni.ifname_problem("") == "is empty"
    assert "longer than 15" in cni.ifname_problem("a" * 16)
    assert cni.ifname_problem("..") and cni.ifname_problem("a:b") and cni.ifname_problem("a b")


# --- stdin ------------------------------------------------------------------------------

def test_stdin_injects_name_and_version_and_filters_runtime_config_by_capability():
    c = conflist()
    caps = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
            "ipRanges": [[{"subnet": "10.0.0.0/24"}]], "bandwidth": {"ingressRate": 1}}
    portmap = json.loads(cni.plugin_stdin(c, c.plugins[1], None, caps))
    assert portmap["name"] == "k8s-pod-network" and portmap["cniVersion"] == "1.0.0"
    # only what the plugin declares true: ipRanges is false, bandwidth undeclared
    assert portmap["runtimeConfig"] == {"portMappings": caps["portMappings"]}
    assert "prevResult" not in portmap
    assert portmap["capabilities"] == {"portMappings": True, "ipRanges": False}  # libcni keeps it
    bridge = json.loads(cni.plugin_stdin(c, c.plugins[0], None, caps))
    assert "runtimeConfig" not in bridge  # no capabilities: nothing injected
    assert bridge["bridge"] == "cni0" and bridge["ipam"]["type"] == "host-local"


def test_stdin_carries_prev_result_and_overrides_the_plugins_own_name_and_version():
    c = cni.parse_conflist({"cniVersion": "0.4.0", "name": "net", "plugins": [
        {"type": "x", "name": "other", "cniVersion": "0.3.1", "runtimeConfig": {"keep": 1}}]})
    prev = {"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.0.0.2/24"}]}
    out = json.loads(cni.plugin_stdin(c, c.plugins[0], prev, {"portMappings": []}))
    assert out["name"] == "net" and out["cniVersion"] == "0.4.0"
    assert out["prevResult"] == prev
    assert out["runtimeConfig"] == {"keep": 1}  # nothing injected, so the config's stays


def test_stdin_is_written_as_go_marshals_a_map():
    c = cni.parse_conflist({"cniVersion": "1.0.0", "name": "n",
                            "plugins": [{"type": "t", "z": "<a&b>", "a": [1, 2]}]})
    assert cni.plugin_stdin(c, c.plugins[0], None, {}) == (
        b'{"a":[1,2],"cniVersion":"1.0.0","name":"n","type":"t","z":"\\u003ca\\u0026b\\u003e"}')
    # the plugin's config is not changed by building its stdin
    assert c.plugins[0].raw == {"type": "t", "z": "<a&b>", "a": [1, 2]}


# --- results ----------------------------------------------------------------------------

BRIDGE_RESULT = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "cni0", "mac": "aa:aa:aa:aa:aa:aa"},
                   {"name": "veth1234", "mac": "bb:bb:bb:bb:bb:bb"},
                   {"name": "eth0", "mac": "cc:cc:cc:cc:cc:cc", "sandbox": "/run/netns/p"}],
    "ips": [{"interface": 2, "address": "10.244.0.5/24", "gateway": "10.244.0.1"},
            {"interface": 2, "address": "fd00::5/64", "gateway": "fd00::1"},
            {"interface": 0, "address": "10.244.0.1/24"}],
    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "fd00::1"}],
    "dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]},
}


def test_a_1_0_0_result_is_parsed():
    r = cni.parse_result(BRIDGE_RESULT, "1.0.0")
    assert r.cni_version == "1.0.0"
    assert r.interfaces[2] == cni.Interface("eth0", "cc:cc:cc:cc:cc:cc", "/run/netns/p")
    assert r.ips[0] == cni.IPConfig("10.244.0.5/24", "10.244.0.1", 2)
    assert r.routes == (cni.Route("0.0.0.0/0"), cni.Route("::/0", "fd00::1"))
    assert r.dns == cni.DNS(("10.96.0.10",), "", ("svc.cluster.local",), ())
    assert r.raw == BRIDGE_RESULT


def test_pod_ips_are_the_container_interfaces_in_the_order_given():
    r = cni.parse_result(BRIDGE_RESULT, "1.0.0")
    assert r.pod_ips("eth0", "/run/netns/p") == ("10.244.0.5", "fd00::5")
    # a sandbox spelled differently still counts; the bridge's address never does
    assert r.pod_ips("eth0", "/var/run/netns/p") == ("10.244.0.5", "fd00::5")
    assert r.pod_ips("eth1", "/run/netns/p") == ()


def test_0_3_1_results_with_version_keys_and_no_interfaces():
    r = cni.parse_result({"cniVersion": "0.3.1", "ips": [
        {"version": "4", "address": "10.1.0.2/16", "gateway": "10.1.0.1"}]}, "0.3.1")
    assert r.ips == (cni.IPConfig("10.1.0.2/16", "10.1.0.1", None),)
    assert r.pod_ips("eth0", "/run/netns/x") == ("10.1.0.2",)  # no interface: the pod's


def test_a_0_2_0_result_is_converted():
    old = {"cniVersion": "0.2.0",
           "ip4": {"ip": "10.1.0.2/16", "gateway": "10.1.0.1",
                   "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}]},
           "ip6": {"ip": "fd00::2/64", "routes": [{"dst": "::/0"}]},
           "dns": {"nameservers": ["1.1.1.1"]}}
    r = cni.parse_result(old, "0.2.0")
    assert r.ips == (cni.IPConfig("10.1.0.2/16", "10.1.0.1"), cni.IPConfig("fd00::2/64"))
    assert r.routes == (cni.Route("0.0.0.0/0", "10.1.0.1"), cni.Route("::/0"))
    assert r.pod_ips("eth0", "/run/netns/x") == ("10.1.0.2", "fd00::2")
    assert r.to_dict("1.0.0") == {
        "cniVersion": "1.0.0",
        "ips": [{"address": "10.1.0.2/16", "gateway": "10.1.0.1"}, {"address": "fd00::2/64"}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "::/0"}],
        "dns": {"nameservers": ["1.1.1.1"]}}
    assert r.to_dict("0.4.0")["ips"][0]["version"] == "4"


def test_conversion_to_0_2_0_keeps_one_address_per_family():
    r = cni.parse_result(BRIDGE_RESULT, "1.0.0")
    d = r.to_dict("0.2.0")
    assert d["ip4"] == {"ip": "10.244.0.5/24", "gateway": "10.244.0.1"}
    assert d["ip6"] == {"ip": "fd00::5/64", "gateway": "fd00::1"}


def test_a_result_without_cni_version_takes_the_configs():
    assert cni.parse_result({"ips": []}, "0.4.0").cni_version == "0.4.0"
    assert cni.parse_result({"ips": []}, "0.4.0").raw["cniVersion"] == "0.4.0"


@pytest.mark.parametrize(("data", "message"), [
    ({"cniVersion": "9.9.9"}, "result cniVersion"),
    ({"ips": [{"address": "10.0.0.1"}]}, "ips[0].address \"10.0.0.1\" is not an address with"),
    ({"ips": [{"address": "10.0.0.1/24", "interface": 1}], "interfaces": [{"name": "a"}]},
     "ips[0].interface 1 is not an index into interfaces (it has 1)"),
    ({"ips": [{"address": "10.0.0.1/24", "gateway": "x"}]}, "ips[0].gateway"),
    ({"routes": [{"dst": "nope"}]}, "routes[0].dst"),
    ({"interfaces": [{"mac": "x"}]}, "interfaces[0] must be a map with a name"),
])
def test_bad_results_say_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=None) as e:
        cni.parse_result(data, "1.0.0")
    assert message in str(e.value)


# --- errors -----------------------------------------------------------------------------

def test_plugin_error_json_becomes_a_readable_error():
    e = cni.plugin_error("bridge", "ADD", "default/web", 1,
                         b'{"cniVersion":"1.0.0","code":11,"msg":"failed to allocate",'
                         b'"details":"range full"}', b"some log")
    assert isinstance(e, KernelError) and not isinstance(e, InputError)
    assert e.exit_code == 1
    assert (e.code, e.msg, e.details, e.plugin, e.command, e.pod) == (
        11, "failed to allocate", "range full", "bridge", "ADD", "default/web")
    assert str(e) == ("CNI plugin bridge ADD for pod default/web: code 11 (try again later): "
                      "failed to allocate (range full)")


def test_plugin_errors_without_json_use_stderr():
    e = cni.plugin_error("x", "DEL", "", 2, b"", b"boom\n", container_id="abc")
    assert str(e) == "CNI plugin x DEL for container abc: boom [exit status 2]"
    assert e.code is None
    e = cni.plugin_error("x", "ADD", "ns/p", 1, b"not json", b"err")
    assert "output is not CNI error JSON: not json; stderr: err" in str(e)
    e = cni.plugin_error("x", "ADD", "ns/p", -9, b"", b"")
    assert "failed with no error message [killed by signal 9]" in str(e)
    e = cni.plugin_error("x", "ADD", "ns/p", 1, b'{"code":123,"msg":"own"}', b"")
    assert "code 123 (plugin-specific): own" in str(e)
    e = cni.plugin_error("x", "ADD", "ns/p", 1, b'{"code":7,"msg":"bad"}', b"")
    assert str(e) == "CNI plugin x ADD for pod ns/p: code 7 (invalid network config): bad"


# --- versions ---------------------------------------------------------------------------

def test_version_negotiation():
    c = conflist()
    infos = {"bridge": {"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]},
             "portmap": {"cniVersion": "0.4.0", "supportedVersions": ["0.3.1", "0.4.0"]},
             "bandwidth": {"cniVersion": "0.2.0"}}
    assert cni.version_problems(c, infos) == [
        "plugin portmap supports only 0.3.1, 0.4.0: the config asks 1.0.0",
        "plugin bandwidth supports only 0.1.0, 0.2.0: the config asks 1.0.0"]
    infos["portmap"]["supportedVersions"].append("1.0.0")
    infos["bandwidth"] = {"cniVersion": "1.0.0", "supportedVersions": ["1.0.0"]}
    assert cni.version_problems(c, infos) == []
    assert cni.version_problems(c, {**infos, "bridge": {}}) == [
        "plugin bridge did not say which versions it supports: the config asks 1.0.0"]
    assert cni.version_at_least("1.0.0", "0.4.0") and not cni.version_at_least("0.3.1", "0.4.0")


# --- CNI_ARGS ---------------------------------------------------------------------------

def test_cni_args_as_the_kubelet_and_containerd_pass_them():
    args = cni.pod_cni_args("ns", "name", "id")
    assert cni.cni_args_env(args) == ("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=name;"
                                      "K8S_POD_INFRA_CONTAINER_ID=id")
    with_uid = cni.pod_cni_args("ns", "name", "id", uid="u-1")
    assert with_uid[-1] == ("K8S_POD_UID", "u-1")
    assert cni.pod_of(args) == "ns/name"
    assert cni.pod_of([]) == ""


# --- the cache --------------------------------------------------------------------------

def test_cache_record_round_trip_in_libcnis_format():
    c = cni.parse_conflist(json.dumps(CONFLIST).encode())
    args = cni.pod_cni_args("default", "web", "c0ffee")
    caps = {"portMappings": [{"hostPort": 80, "containerPort": 8080, "protocol": "tcp"}]}
    data = cni.cache_record(c, "c0ffee", "eth0", "/run/netns/p", args, caps, BRIDGE_RESULT)
    obj = json.loads(data)
    # libcni's cachedInfo fields, in its struct's order
    assert list(obj) == ["kind", "containerId", "config", "ifName", "networkName", "netns",
                         "cniArgs", "capabilityArgs", "result"]
    assert obj["kind"] == "cniCacheV1"
    assert base64.b64decode(obj["config"]) == c.raw
    assert obj["cniArgs"][0] == ["IgnoreUnknown", "1"]
    rec = cni.read_cache(data)
    assert (rec.container_id, rec.ifname, rec.network, rec.netns) == (
        "c0ffee", "eth0", "k8s-pod-network", "/run/netns/p")
    assert rec.cni_args == args and rec.capability_args == caps
    assert rec.result == BRIDGE_RESULT
    assert rec.conflist == c
    assert cni.cache_file_name("k8s-pod-network", "c0ffee", "eth0") == \
        "k8s-pod-network-c0ffee-eth0"


def test_cache_record_leaves_out_empty_fields_like_omitempty():
    c = conflist()
    obj = json.loads(cni.cache_record(c, "id", "eth0", "", (), {}, None))
    assert list(obj) == ["kind", "containerId", "config", "ifName", "networkName"]
    assert cni.read_cache(json.dumps(obj).encode()).result == {}


@pytest.mark.parametrize("data", [b"nope", b'{"kind":"other"}',
                                  b'{"kind":"cniCacheV1","containerId":"a","ifName":"e"}',
                                  b'{"kind":"cniCacheV1","containerId":"a","ifName":"e",'
                                  b'"networkName":"n","config":"***"}'])
def test_unreadable_cache_records_are_refused(data):
    with pytest.raises(ValueError):
        cni.read_cache(data)


# --- host-local's dataDir ---------------------------------------------------------------

def test_host_local_data_dir_is_set_inside_the_lab():
    bridge = CONFLIST["plugins"][0]
    conf, replaced = cni.with_data_dir(bridge, "/run/netlab/lab/cni/ipam")
    assert conf["ipam"]["dataDir"] == "/run/netlab/lab/cni/ipam" and replaced is None
    assert "dataDir" not in bridge["ipam"]  # the input is not changed


def test_a_user_data_dir_outside_the_lab_is_replaced_and_reported():
    bridge = {"type": "bridge", "ipam": {"type": "host-local", "dataDir": "/var/lib/cni/x"}}
    conf, replaced = cni.with_data_dir(bridge, "/run/netlab/lab/ipam")
    assert conf["ipam"]["dataDir"] == "/run/netlab/lab/ipam"
    assert replaced == "/var/lib/cni/x"
    inside = {"type": "bridge", "ipam": {"type": "host-local",
                                         "dataDir": "/run/netlab/lab/ipam/mine"}}
    assert cni.with_data_dir(inside, "/run/netlab/lab/ipam") == (inside, None)
    sneaky = {"type": "bridge", "ipam": {"type": "host-local",
                                         "dataDir": "/run/netlab/lab/ipam/../../etc"}}
    assert cni.with_data_dir(sneaky, "/run/netlab/lab/ipam")[1] == \
        "/run/netlab/lab/ipam/../../etc"


def test_other_ipam_types_and_plugins_are_left_alone():
    for plugin in ({"type": "portmap"}, {"type": "bridge", "ipam": {"type": "dhcp"}},
                   {"type": "macvlan", "ipam": "weird"}):
        assert cni.with_data_dir(plugin, "/d") == (plugin, None)


def test_conflist_with_data_dir():
    bridge = {"type": "bridge", "ipam": {"type": "host-local", "dataDir": "/var/lib/cni/n"}}
    c = cni.parse_conflist({"cniVersion": "1.0.0", "name": "n",
                            "plugins": [bridge, {"type": "portmap"}]})
    new, replaced = cni.conflist_with_data_dir(c, "/lab/ipam")
    assert replaced == ["/var/lib/cni/n"]
    assert new.plugins[0].raw["ipam"]["dataDir"] == "/lab/ipam"
    assert new.as_dict()["plugins"][0]["ipam"]["dataDir"] == "/lab/ipam"
    assert new.plugins[1] == c.plugins[1]
    single = cni.parse_conflist({"cniVersion": "1.0.0", "name": "s", **bridge})
    new, replaced = cni.conflist_with_data_dir(single, "/lab/ipam")
    assert new.plugins[0].raw["ipam"]["dataDir"] == "/lab/ipam" and new.name == "s"
