"""One label selector implementation: string form, matchLabels/matchExpressions."""

import pytest

from nodeagent.objects.selectors import SelectorError, parse_selector, selector_from_dict

LABELS = {"app": "kubia", "tier": "web", "env": "prod"}


@pytest.mark.parametrize(("text", "matches"), [
    ("", True),
    ("app=kubia", True),
    ("app==kubia", True),
    ("app!=kubia", False),
    ("app=kubia,tier in (web,api),!canary", True),
    ("app=kubia,tier in (db),!canary", False),
    ("tier notin (db, cache)", True),
    ("canary", False),
    ("env", True),
    ("!env", False),
    ("missing!=x", True),
    ("app=", False),  # an empty value is valid and means the label is ""
])
def test_string_form(text, matches):
    assert parse_selector(text).matches(LABELS) is matches


@pytest.mark.parametrize("bad", ["=kubia", "tier in web", "tier in (web", "a b", "!",
                                 "app=kubia,", "tier in ()", "bad key=1"])
def test_string_form_rejects_garbage(bad):
    with pytest.raises(SelectorError):
        parse_selector(bad)


def test_dict_form_matches_like_kubernetes():
    sel = selector_from_dict({
        "matchLabels": {"app": "kubia"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["web", "api"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "env", "operator": "Exists"},
            {"key": "zone", "operator": "NotIn", "values": ["b"]},
        ],
    })
    assert sel.matches(LABELS)
    assert not sel.matches({**LABELS, "canary": "1"})
    assert not sel.matches({**LABELS, "tier": "db"})
    assert not sel.matches({"tier": "web", "env": "prod"})


def test_empty_dict_selector_matches_everything():
    assert selector_from_dict({}).matches(LABELS)
    assert selector_from_dict({}).matches({})
