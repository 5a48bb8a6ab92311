"""Table.validate: what nft 1.0.6 and the kernel would refuse is refused before loading, with
the object named. (The limits were measured with nft in a throw-away network namespace.)"""

from __future__ import annotations

import pytest

from netlab.errors import InputError, RulesetError
from netlab.nft import Table
from netlab.nft.table import COMMENT_MAX, NAME_MAX, references


def table() -> Table:
    t = Table("ip", "t")
    t.chain("forward", ["ip daddr vmap @pods", "ip saddr @blocked drop", "jump a",
                        "goto endpoint-X__10.0.0.1/80"],
            "type filter hook forward priority filter ; policy accept ;")
    t.chain("a", ["ip saddr 10.0.0.1 accept", 'accept comment "ns/name ingress[0]"'])
    t.chain("endpoint-X__10.0.0.1/80", ["numgen random mod 2 vmap { 0 : goto a, 1 : drop }"])
    t.maps["pods"] = ("type ipv4_addr : verdict ;", {"10.0.0.1": "jump a"})
    t.sets["blocked"] = ("type ipv4_addr ;", ["10.0.0.9"])
    return t


def test_a_good_table_renders_as_before():
    t = table()
    t.validate()
    assert t.full().startswith("add table ip t\ndelete table ip t\nadd table ip t\n")
    assert t.diff(table()) == ""


def test_references_skip_comments():
    assert references('jump a comment "goto b @c"') == (("a",), ())
    assert references("numgen random mod 2 vmap { 0 : goto x/1, 1 : jump y }") == \
        (("x/1", "y"), ())
    assert references("ip saddr . th dport vmap @m") == ((), ("m",))


def error(t: Table) -> RulesetError:
    with pytest.raises(RulesetError) as info:
        t.full()
    with pytest.raises(RulesetError):
        t.diff(table())  # diff validates too
    assert isinstance(info.value, InputError) and info.value.exit_code == 2
    return info.value


@pytest.mark.parametrize(("change", "obj", "message"), [
    (lambda t: setattr(t, "name", "n" * (NAME_MAX + 1)), "table ip nnn", "at most 255"),
    (lambda t: setattr(t, "name", "1t"), "table ip 1t", "not an nft name"),
    (lambda t: setattr(t, "family", "ipv4"), "table ipv4 t", "unknown family"),
    (lambda t: t.chain("c" * 256), "chain ccc", "256 characters long"),
    (lambda t: t.chain("a b"), "chain a b", "not an nft name"),
    (lambda t: t.chain("counter"), "chain counter", "nft keyword"),
    (lambda t: t.sets.update({"-s": ("type ipv4_addr ;", [])}), "set -s", "not an nft name"),
    (lambda t: t.maps.update({"ll": ("type ipv4_addr : verdict ;", {})}), "map ll",
     "nft keyword"),
    (lambda t: t.sets.update({"pods": ("type ipv4_addr ;", [])}), "set and map pods",
     "share a name"),
    (lambda t: t.chains["a"].append(f'drop comment "{"x" * (COMMENT_MAX + 1)}"'),
     "chain a, rule 3", "129 characters long; nft allows at most 128"),
    (lambda t: t.chains["a"].append('drop comment "say "hi""'), "chain a, rule 3",
     "cannot contain a double quote"),
    (lambda t: t.chains["a"].append('drop comment "x" counter'), "chain a, rule 3",
     "a comment goes last"),
    (lambda t: t.chains["a"].append("accept; flush ruleset"), "chain a, rule 3", "no ';'"),
    (lambda t: t.chains["a"].append("jump gone"), "chain a, rule 3", "chain 'gone'"),
    (lambda t: t.chains["a"].append("goto forward"), "chain a, rule 3", "base chain"),
    (lambda t: t.chains["a"].append("numgen random mod 2 vmap { 0 : goto a, 1 : goto b }"),
     "chain a, rule 3", "chain 'b'"),
    (lambda t: t.chains["a"].append("ip daddr vmap @nomap"), "chain a, rule 3",
     "set or map 'nomap'"),
    (lambda t: t.maps["pods"][1].update({"10.0.0.2": "goto nowhere"}),
     "map pods, element 10.0.0.2", "chain 'nowhere'"),
    (lambda t: t.base_chains.update({"nochain": "type filter hook input priority 0 ;"}),
     "chain nochain", "base chain"),
    (lambda t: t.sets.update({"s": ("type ipv4_addr", [])}), "set s", "must end with ';'"),
    (lambda t: t.maps.update({"m": ("type ipv4_addr : verdict ; flags interval", {})}), "map m",
     "must end with ';'"),
    (lambda t: t.base_chains.update({"a": "type filter hook input priority 0"}), "chain a",
     "must end with ';'"),
])
def test_refused_with_the_object_named(change, obj: str, message: str):
    t = table()
    change(t)
    err = error(t)
    assert obj in str(err) and message in str(err), str(err)
    assert str(err).startswith(f"table {t.ref}")


def test_limits_are_inclusive():
    t = table()
    t.chain("c" * NAME_MAX, [f'accept comment "{"x" * COMMENT_MAX}"'])
    t.sets["." + "s" * (NAME_MAX - 1)] = ("type ipv4_addr ;", [])
    t.full()



def test_a_diff_checks_what_changed_and_what_lost_its_target():
    old = Table("ip", "t")
    old.chain("in", ["jump a"], "type filter hook input priority 0 ;")
    old.chain("a", ["accept"])
    old.chain("b", ["accept"])
    new = Table("ip", "t", dict(old.base_chains), {c: list(r) for c, r in old.chains.items()})
    new.chains["b"] = ['accept comment "' + "x" * (COMMENT_MAX + 1) + '"']
    with pytest.raises(RulesetError, match="chain b, rule 1"):
        new.diff(old)
    gone = Table("ip", "t", dict(old.base_chains), {"in": ["jump a"], "b": ["accept"]})
    with pytest.raises(RulesetError, match=r"chain in, rule 1.*'a'"):
        gone.diff(old)  # `in` did not change, but the chain it jumps to is gone
