"""kubectl's label selector syntax, as `netlab get -l` parses and applies it."""

from __future__ import annotations

import pytest

from netlab.cli.selectors import Requirement, Selector, parse
from netlab.errors import InputError

WEB = {"app": "web", "tier": "front", "example.com/team": "a"}


@pytest.mark.parametrize(("text", "matches"), [
    ("", True), ("  ", True),
    ("app=web", True), ("app==web", True), ("app = web", True), ("app=db", False),
    ("app!=db", True), ("app!=web", False), ("missing!=x", True),
    ("app in (web,db)", True), ("app in ( db , web )", True), ("app in (db)", False),
    ("missing in (x)", False), ("app notin (db)", True), ("app notin (web)", False),
    ("missing notin (x)", True),
    ("app", True), ("missing", False), ("!missing", True), ("!app", False), ("! app", False),
    ("example.com/team=a", True), ("example.com/team", True),
    ("app=web,tier=front", True), ("app=web,tier=back", False),
    ("app in (web,db),tier notin (back),!missing", True),
    ("app=", False), ("empty=", True), ("empty in (,x)", True),
])
def test_matching(text: str, matches: bool):
    assert parse(text).matches({**WEB, "empty": ""}) is matches


def test_structure_and_round_trip():
    s = parse("a=b, c!=d, e in (f,g), h notin (i), j, !k")
    assert s.requirements == (
        Requirement("a", "=", ("b",)), Requirement("c", "!=", ("d",)),
        Requirement("e", "in", ("f", "g")), Requirement("h", "notin", ("i",)),
        Requirement("j", "exists"), Requirement("k", "!"))
    assert str(s) == "a=b,c!=d,e in (f,g),h notin (i),j,!k"
    assert parse(str(s)) == s


def test_no_labels_at_all():
    assert Selector().matches(None)
    assert parse("!app").matches(None) and not parse("app").matches({})


@pytest.mark.parametrize(("text", "message"), [
    ("app in (web", "unbalanced parentheses"),
    ("app in web)", "unbalanced parentheses"),
    ("a,,b", "empty requirement"),
    ("app=web,", "empty requirement"),
    ("=web", "cannot parse '=web'"),
    ("app=we b", "'we b' is not a valid label value"),
    ("app in (a b)", "'a b' is not a valid label value"),
    ("-app=x", "cannot parse"),
    ("app>1", "cannot parse 'app>1'"),
])
def test_bad_selectors_say_what_is_wrong(text: str, message: str):
    with pytest.raises(InputError, match=None) as e:
        parse(text)
    assert message in str(e.value) and e.value.exit_code == 2
