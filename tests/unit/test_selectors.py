"""Label selectors (SPEC §7): parsing, matching, canonical form, and malformed input with positions."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from orchestrator.domain.selectors import (
    MAX_REQUIREMENTS,
    MAX_SELECTOR_LENGTH,
    MAX_TOKEN_LENGTH,
    Operator,
    Requirement,
    Selector,
    parse_selector,
)
from orchestrator.errors import MalformedSelector, OrchestratorError


def only(text: str) -> Requirement:
    selector = parse_selector(text)
    assert len(selector.requirements) == 1
    return selector.requirements[0]


# Parsing every operator ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("env=prod", Requirement("env", Operator.EQUALS, frozenset({"prod"}))),
        ("env==prod", Requirement("env", Operator.EQUALS, frozenset({"prod"}))),
        ("env!=prod", Requirement("env", Operator.NOT_EQUALS, frozenset({"prod"}))),
        ("tier in (a,b)", Requirement("tier", Operator.IN, frozenset({"a", "b"}))),
        ("tier notin (a,b)", Requirement("tier", Operator.NOT_IN, frozenset({"a", "b"}))),
        ("gpu", Requirement("gpu", Operator.EXISTS)),
        ("!draining", Requirement("draining", Operator.NOT_EXISTS)),
    ],
)
def test_each_operator_parses_to_its_requirement(text: str, expected: Requirement) -> None:
    assert only(text) == expected


def test_terms_are_kept_in_the_order_written() -> None:
    selector = parse_selector("b=1,a,!c")
    assert [r.key for r in selector.requirements] == ["b", "a", "c"]


def test_keys_and_values_accept_the_whole_label_alphabet() -> None:
    requirement = only("example.com/Role_x-1=v1.2_beta/x-Y")
    assert requirement.key == "example.com/Role_x-1"
    assert requirement.values == frozenset({"v1.2_beta/x-Y"})


def test_duplicates_in_a_set_are_fine() -> None:
    assert only("k in (a,b,a)").values == frozenset({"a", "b"})


def test_duplicate_keys_are_separate_requirements() -> None:
    assert len(parse_selector("k=a,k!=b").requirements) == 2


@pytest.mark.parametrize("text", ["in=1", "notin", "!in", "in in (in)", "notin notin (notin)"])
def test_set_keywords_are_ordinary_keys_and_values(text: str) -> None:
    parse_selector(text)


def test_a_key_of_63_characters_is_accepted() -> None:
    key = "k" * MAX_TOKEN_LENGTH
    assert only(f"{key}={key}") == Requirement(key, Operator.EQUALS, frozenset({key}))


def test_64_requirements_are_accepted() -> None:
    assert len(parse_selector(",".join(["a"] * MAX_REQUIREMENTS)).requirements) == MAX_REQUIREMENTS


def test_a_selector_of_exactly_256_characters_is_accepted() -> None:
    text = ",".join(["k=" + "v" * 61] * 4) + " "
    assert len(text) == MAX_SELECTOR_LENGTH
    assert len(parse_selector(text).requirements) == 4


# Whitespace ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "env=prod,tier in (a,b)",
        "env = prod , tier in (a, b)",
        "  env=prod,tier in(a,b)  ",
        "env==prod,tier   in   (  a  ,  b  )",
        "env\t=\tprod,\ntier in\n(a,\r\nb)",
    ],
)
def test_whitespace_around_tokens_is_ignored(text: str) -> None:
    assert parse_selector(text) == parse_selector("env=prod,tier in (a,b)")


def test_whitespace_between_bang_and_key_is_allowed() -> None:
    assert only("! draining") == Requirement("draining", Operator.NOT_EXISTS)


# Matching ------------------------------------------------------------------------------------------
def test_equals_matches_only_the_same_value() -> None:
    selector = parse_selector("env=prod")
    assert selector.matches({"env": "prod"})
    assert not selector.matches({"env": "dev"})


def test_equals_does_not_match_when_key_absent() -> None:
    assert not parse_selector("env==prod").matches({"tier": "prod"})


def test_not_equals_matches_another_value() -> None:
    selector = parse_selector("env!=prod")
    assert selector.matches({"env": "dev"})
    assert not selector.matches({"env": "prod"})


def test_not_equals_matches_when_key_absent() -> None:
    assert parse_selector("env!=prod").matches({})


def test_in_matches_any_listed_value() -> None:
    selector = parse_selector("tier in (web,db)")
    assert selector.matches({"tier": "web"})
    assert selector.matches({"tier": "db"})
    assert not selector.matches({"tier": "cache"})


def test_in_does_not_match_when_key_absent() -> None:
    assert not parse_selector("tier in (web,db)").matches({})


def test_notin_rejects_listed_values() -> None:
    selector = parse_selector("tier notin (web,db)")
    assert not selector.matches({"tier": "web"})
    assert selector.matches({"tier": "cache"})


def test_notin_matches_when_key_absent() -> None:
    assert parse_selector("tier notin (web,db)").matches({"env": "prod"})


def test_exists_matches_any_value_only_when_key_present() -> None:
    selector = parse_selector("gpu")
    assert selector.matches({"gpu": "false"})
    assert not selector.matches({})


def test_not_exists_matches_only_when_key_absent() -> None:
    selector = parse_selector("!draining")
    assert selector.matches({"env": "prod"})
    assert not selector.matches({"draining": "true"})


def test_every_requirement_must_hold() -> None:
    selector = parse_selector("env=prod,tier in (web,db),!draining")
    assert selector.matches({"env": "prod", "tier": "web"})
    assert not selector.matches({"env": "prod", "tier": "web", "draining": "yes"})
    assert not selector.matches({"env": "dev", "tier": "web"})
    assert not selector.matches({"env": "prod"})


def test_contradictory_requirements_match_nothing() -> None:
    selector = parse_selector("k=a,k=b")
    assert not selector.matches({"k": "a"})
    assert not selector.matches({"k": "b"})


# Canonical form --------------------------------------------------------------------------------------
def test_canonical_form_sorts_sets_and_spells_equals_once() -> None:
    selector = parse_selector(" env == prod , tier notin ( z , a, z ) , ! d , gpu , x != 1 , y in(b,a)")
    assert str(selector) == "env=prod,tier notin (a,z),!d,gpu,x!=1,y in (a,b)"


def test_canonical_form_parses_back_to_an_equal_selector() -> None:
    selector = parse_selector("b in (y,x),a!=1,!c")
    assert parse_selector(str(selector)) == selector


@pytest.mark.parametrize(
    ("operator", "values"),
    [
        (Operator.EQUALS, frozenset()),
        (Operator.EQUALS, frozenset({"a", "b"})),
        (Operator.NOT_EQUALS, frozenset()),
        (Operator.IN, frozenset()),
        (Operator.NOT_IN, frozenset()),
        (Operator.EXISTS, frozenset({"a"})),
        (Operator.NOT_EXISTS, frozenset({"a"})),
    ],
)
def test_requirement_refuses_values_that_its_operator_cannot_carry(operator: Operator, values: frozenset[str]) -> None:
    with pytest.raises(ValueError, match=operator.name):
        Requirement("k", operator, values)


# Malformed selectors ---------------------------------------------------------------------------------
LONG = "x" * (MAX_TOKEN_LENGTH + 1)


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        pytest.param("", 0, "a label key", id="empty"),
        pytest.param("   ", 3, "a label key", id="only-whitespace"),
        pytest.param("a=b,", 4, "a label key", id="trailing-comma"),
        pytest.param(",a", 0, "a label key", id="leading-comma"),
        pytest.param("a,,b", 2, "a label key", id="double-comma"),
        pytest.param("k in a", 5, "'('", id="in-without-parens"),
        pytest.param("k in", 4, "'('", id="in-at-end"),
        pytest.param("k notin a,b)", 8, "'('", id="notin-without-open-paren"),
        pytest.param("k in (a,b", 9, "',' or ')'", id="unclosed-set"),
        pytest.param("k in (a b)", 8, "',' or ')'", id="set-values-without-comma"),
        pytest.param("k in (a))", 8, "',' or end of input", id="extra-close-paren"),
        pytest.param("k in ((a))", 6, "a label value", id="nested-parens"),
        pytest.param("k in ()", 6, "a label value", id="empty-set"),
        pytest.param("k in ( )", 7, "a label value", id="blank-set"),
        pytest.param("k in (a,)", 8, "a label value", id="trailing-comma-in-set"),
        pytest.param("kin(a)", 3, "an operator", id="keyword-glued-to-key"),
        pytest.param("k=", 2, "a label value", id="equals-without-value"),
        pytest.param("k==", 3, "a label value", id="double-equals-without-value"),
        pytest.param("k!= ,x", 4, "a label value", id="not-equals-without-value"),
        pytest.param("k === v", 4, "a label value", id="triple-equals"),
        pytest.param("k ! = v", 2, "an operator", id="split-not-equals"),
        pytest.param("==v", 0, "a label key", id="operator-without-key"),
        pytest.param("!", 1, "a label key", id="bang-without-key"),
        pytest.param("!,a", 1, "a label key", id="bang-before-comma"),
        pytest.param("!!k", 1, "a label key", id="double-bang"),
        pytest.param("!k=v", 2, "',' or end of input", id="bang-with-operator"),
        pytest.param("k=v w", 4, "',' or end of input", id="two-terms-without-comma"),
        pytest.param("env=pr@d", 6, "',' or end of input", id="bad-character-in-value"),
        pytest.param("env=prod;tier=a", 8, "',' or end of input", id="semicolon"),
        pytest.param("é=1", 0, "a label key", id="non-ascii-key"),
        pytest.param("k in (a,*)", 8, "a label value", id="bad-character-in-set"),
        pytest.param("k\x00", 1, "an operator", id="control-character"),
        pytest.param(LONG, MAX_TOKEN_LENGTH, "a label key of at most 63 characters", id="64-char-key"),
        pytest.param(f"k={LONG}", 2 + MAX_TOKEN_LENGTH, "a label value of at most 63", id="64-char-value"),
        pytest.param(f"k in (a,{LONG})", 8 + MAX_TOKEN_LENGTH, "a label value of at most 63", id="64-char-in-set"),
        pytest.param(f"!{LONG}", 1 + MAX_TOKEN_LENGTH, "a label key of at most 63", id="64-char-absent-key"),
        pytest.param(",".join(["a"] * (MAX_REQUIREMENTS + 1)), 128, "at most 64 requirements", id="65-requirements"),
        pytest.param("a" * 40 + " " * 217, 256, "at most 256 characters", id="257-characters"),
    ],
)
def test_malformed_selector_reports_what_was_expected_and_where(text: str, position: int, expected: str) -> None:
    with pytest.raises(MalformedSelector) as caught:
        parse_selector(text)
    error = caught.value
    assert error.position == position
    assert error.extensions == {"position": position}
    assert f"expected {expected}" in error.detail
    assert f"at position {position}" in error.detail


def test_the_first_error_in_reading_order_is_reported() -> None:
    with pytest.raises(MalformedSelector) as caught:
        parse_selector("a in b,@")
    assert caught.value.position == 5


def test_malformed_selector_is_a_400_problem() -> None:
    error = MalformedSelector("expected a label key at position 7", position=7)
    assert isinstance(error, OrchestratorError)
    assert (error.status, error.code, error.title) == (400, "malformed_selector", "Malformed selector")
    assert error.detail == "expected a label key at position 7"
    assert error.extensions == {"position": 7}


# Properties ------------------------------------------------------------------------------------------
# Sizes bounded so that any generated selector renders within the 256-character limit.
tokens = st.text(alphabet="abcXYZ019._/-", min_size=1, max_size=20)
values = st.text(alphabet="abcXYZ019._/-", min_size=1, max_size=10)


@st.composite
def requirements(draw: st.DrawFn) -> Requirement:
    operator = draw(st.sampled_from(Operator))
    if operator in {Operator.EQUALS, Operator.NOT_EQUALS}:
        chosen = frozenset({draw(values)})
    elif operator in {Operator.IN, Operator.NOT_IN}:
        chosen = frozenset(draw(st.lists(values, min_size=1, max_size=3)))
    else:
        chosen = frozenset()
    return Requirement(draw(tokens), operator, chosen)


selectors = st.lists(requirements(), min_size=1, max_size=4).map(lambda rs: Selector(tuple(rs)))


@given(selectors)
def test_property_canonical_form_round_trips(selector: Selector) -> None:
    assert len(str(selector)) <= MAX_SELECTOR_LENGTH
    assert parse_selector(str(selector)) == selector


def spelled(requirement: Requirement, equals: str) -> list[str]:
    """The requirement's tokens; a set keyword carries its own leading space (it must not touch the key)."""
    key, ordered = requirement.key, sorted(requirement.values)
    match requirement.operator:
        case Operator.EXISTS:
            return [key]
        case Operator.NOT_EXISTS:
            return ["!", key]
        case Operator.EQUALS | Operator.NOT_EQUALS:
            operator = equals if requirement.operator is Operator.EQUALS else "!="
            return [key, operator, ordered[0]]
        case _:
            listed = [token for value in ordered for token in (value, ",")][:-1]
            return [key, f" {requirement.operator.value}", "(", *listed, ")"]


@given(selectors, st.data())
def test_property_whitespace_and_double_equals_do_not_change_the_selector(
    selector: Selector, data: st.DataObject
) -> None:
    whitespace = st.sampled_from(["", " ", "\t", "\n", "  ", " \r\n"])
    tokens_written: list[str] = []
    for index, requirement in enumerate(selector.requirements):
        if index:
            tokens_written.append(",")
        tokens_written.extend(spelled(requirement, data.draw(st.sampled_from(["=", "=="]))))
    text = "".join(data.draw(whitespace) + token for token in tokens_written) + data.draw(whitespace)
    assume(len(text) <= MAX_SELECTOR_LENGTH)
    assert parse_selector(text) == selector


grammar_soup = st.lists(
    st.sampled_from(["k", "v", "in", "notin", "=", "==", "!=", "!", "(", ")", ",", " ", "\t", "é", "@", LONG]),
    max_size=40,
).map("".join)


@given(st.one_of(st.text(max_size=300), st.text(alphabet="ab=!(), \tinot", max_size=300), grammar_soup))
def test_property_any_text_parses_or_is_malformed_at_a_position_inside_it(text: str) -> None:
    try:
        selector = parse_selector(text)
    except MalformedSelector as error:
        assert 0 <= error.position <= len(text)
        assert f"at position {error.position}" in error.detail
    else:
        assert parse_selector(str(selector)) == selector
