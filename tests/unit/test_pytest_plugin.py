"""The pytest plugin without root: registration, the skip marker, lab names.
Suites that build labs are in tests/integration/test_pytest_plugin.py."""

from __future__ import annotations

import os

import pytest


def test_plugin_is_registered(pytester: pytest.Pytester):
    pytester.makepyfile("""
        def test_fixtures(request):
            assert request.getfixturevalue("netlab_lab_name")
    """)
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["*@pytest.mark.netlab(nft=False)*"])
    assert pytester.runpytest("-q").ret == 0


def test_marker_skips_with_the_reason_when_not_root(pytester: pytest.Pytester):
    pytester.makepyfile("""
        import os, pytest

        @pytest.mark.netlab
        def test_needs_lab():
            assert os.geteuid() == 0
    """)
    # run the inner suite as if unprivileged (the plugin asks os.geteuid), in a process of
    # its own so that the pretence does not leak into this one
    pytester.makeconftest("""
        import os
        os.geteuid = lambda: 1000
    """)
    result = pytester.runpytest_subprocess("-q", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*netlab labs need root*"])


def test_names_are_unique_and_valid():
    from netlab.names import check_lab_name
    from netlab.pytest_plugin import unique_name

    names = {unique_name(f"tests/test_x.py::test_{i}") for i in range(200)}
    assert len(names) == 200
    for n in names:
        check_lab_name(n)
    os.environ["PYTEST_XDIST_WORKER"] = "gw7"
    try:
        assert "w7-" in unique_name("t.py::test_a")
    finally:
        del os.environ["PYTEST_XDIST_WORKER"]
