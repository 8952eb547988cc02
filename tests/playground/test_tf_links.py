"""TF Playground's own links open here: its ``#fragment`` state is read like a ``?query``, and its fractional
seeds (``seed=0.41236``) are accepted, kept in the URL and mapped to one whole-number seed."""
from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from trainlab.playground.state import parse_query, parse_state, seed_of, to_query

# A link as the course gives it (TF Playground writes every key, the seed a Math.random() with 5 decimals).
TF_FRAGMENT = ("#activation=tanh&batchSize=10&dataset=circle&regDataset=reg-plane&learningRate=0.03"
               "&regularizationRate=0&noise=0&networkShape=4,2&seed=0.41236&showTestData=false&discretize=false"
               "&percTrainData=50&x=true&y=true&xTimesY=false&xSquared=false&ySquared=false&cosX=false&sinX=false"
               "&cosY=false&sinY=false&collectStats=false&problem=classification&initZero=false&hideText=false")


def test_a_fragment_reads_like_a_query():
    assert parse_query(TF_FRAGMENT) == parse_query("?" + TF_FRAGMENT[1:])
    state, notes = parse_state(parse_query("#networkShape=3&learningRate=0.1&dataset=xor"))
    assert notes == [] and state["networkShape"] == [3] and state["learningRate"] == 0.1 and state["dataset"] == "xor"


def test_a_tf_seed_is_kept_in_the_url_and_maps_to_one_whole_number():
    state, notes = parse_state(parse_query(TF_FRAGMENT))
    assert notes == []
    assert state["seed"] == 0.41236 and dict(parse_qsl(to_query(state)))["seed"] == "0.41236"
    assert seed_of(state) == seed_of(parse_state(parse_query(to_query(state)))[0]) == int(0.41236 * 2**31)
    assert seed_of(parse_state({"seed": "0.41237"})[0]) != seed_of(state)
    assert seed_of(parse_state({"seed": "17"})[0]) == 17


@pytest.mark.parametrize("text", ["1.5", "-3", "nan", "abc", str(2**31)])
def test_other_seeds_are_refused_in_the_house_form(text):
    state, notes = parse_state({"seed": text})
    assert state["seed"] == 0
    assert notes == [f"seed must be a whole number from 0 to 2147483647, or a TF Playground seed between 0 and 1. "
                     f"Got {text!r}. Using the default 0."]


def test_a_session_opens_the_tf_link_with_the_same_points_every_time(session):
    session.post({"type": "init", "query": TF_FRAGMENT[1:]})  # what the page sends for a fragment
    first = session.out.until("state")
    assert first["notes"] == [] and first["state"]["seed"] == 0.41236 and "seed=0.41236" in first["query"]
    session.post({"type": "init", "query": TF_FRAGMENT[1:]})
    again = session.out.until("state")
    assert again["train"] == first["train"] and again["test"] == first["test"]
    session.post({"type": "init", "query": "seed=1"})
    assert session.out.until("state")["train"] != first["train"]
