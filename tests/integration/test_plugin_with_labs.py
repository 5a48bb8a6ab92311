"""The pytest plugin with real labs, through pytester-run suites: a passing and a failing
test both torn down, and the session sweep failing a run that leaked a lab."""

from __future__ import annotations

import pytest

LAB = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec: {nodes: 2}
---
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {nodeName: node-1, containers: [{name: c, command: [sleep, "3600"]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec: {nodeName: node-2, containers: [{name: c, command: [sleep, "3600"]}]}
"""


def test_a_passing_and_a_failing_suite(pytester: pytest.Pytester):
    pytester.makefile(".yaml", lab=LAB)
    pytester.makepyfile(test_suite='''
        def test_cross_node_ping(netlab_lab):
            lab = netlab_lab("lab.yaml")
            assert lab.ping("a", "b", count=1).ok

        def test_wrong_expectation(netlab_lab):
            lab = netlab_lab("lab.yaml")
            assert lab.pod("a").node == "node-2"   # it is on node-1: this test must fail
    ''')
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.no_fnmatch_line("*netlab leftovers*")  # the failing test was torn down too


def test_the_sweep_catches_a_leaked_lab(pytester: pytest.Pytester):
    pytester.makefile(".yaml", lab=LAB)
    pytester.makepyfile(test_leak='''
        from netlab import Lab

        def test_leaks(netlab_lab_name):
            Lab.up("lab.yaml", name=netlab_lab_name)   # never torn down
    ''')
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*netlab leftovers*", "*network namespace netlab.t*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the test passed, the run did not


def test_the_sweep_catches_a_bare_leaked_namespace(pytester: pytest.Pytester):
    pytester.makepyfile(test_leak='''
        import subprocess

        def test_leaks_a_namespace(netlab_lab_name):
            subprocess.run(["ip", "netns", "add", f"netlab.{netlab_lab_name}.pod.x.y"],
                           check=True)
    ''')
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*network namespace netlab.t*.pod.x.y*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
