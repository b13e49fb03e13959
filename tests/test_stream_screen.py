"""The stream screen: no streamed character reaches a user before the policy screen has seen it.

First the screen on its own (what each token releases, and properties over random splits of random
texts), then the real graph through ``Agent.stream`` and ``firebreak ask`` with a scripted model whose
reply carries a card number: not one of its digits is ever streamed, and a clean reply still streams.
"""

from __future__ import annotations

import itertools
import re

import hypothesis
import pytest
from conftest import run
from hypothesis import strategies as st
from test_cli import firebreak

from app.resilience.safety import PolicyRule, SafetyPolicy
from app.resilience.stream_screen import StreamScreen
from core.config import load_settings
from evals.bench import stream_section
from evals.bench_stream import measure_stream
from evals.security.stream import scenarios as streamed_violations
from graph.agent import Agent, RunResult, Token

ROUTE = "scripted/demo"
CARD = "4111 1111 1111 1111"
CLEAN_PREFIX = "Sure. The card on file is "
CARD_REPLY = f"{CLEAN_PREFIX}{CARD}, keep it safe."
CLEAN_REPLY = "Order 42 shipped on May 3 and arrives by Friday; refunds take 5 business days."
# firebreak.toml's policy patterns: what the final screen ends a run on.
POLICY = SafetyPolicy.from_settings(load_settings().safety).policy_rules
# Harder shapes than the defaults: a lookbehind, a lazy quantifier, free whitespace, and word boundaries
# that fail at the end of the text but may hold once the next character comes.
HARD = tuple(
    PolicyRule(re.compile(p))
    for p in (
        r"(?<=key=)\w{4}",
        r"(?i)secret.*?end",
        r"\bab\b",
        r"(?i)pass\s*:\s*\S+",
        r"(?i)\bdrop\s+\btable",
        r"k\By",
    )
)


def screen() -> StreamScreen:
    return StreamScreen.of(POLICY)


def feed_all(screen: StreamScreen, tokens: list[str]) -> list[str]:
    return [screen.feed(token) for token in tokens]


# -- the screen on its own --------------------------------------------------------------------------


def test_clean_text_is_released_token_by_token():
    tokens = ["The ", "refund ", "takes ", "five ", "business ", "days."]
    assert feed_all(screen(), tokens) == tokens


def test_text_is_released_as_soon_as_no_pattern_can_match_it_not_at_the_sentence_end():
    guard = screen()
    assert guard.feed("I will d") == "I will "  # "d" may begin "drop table"
    assert guard.feed("o that") == "do that"  # no sentence has ended, and "do" begins no match


def test_a_partial_card_number_is_held_and_the_text_before_it_released():
    guard = screen()
    assert feed_all(guard, ["Your card is ", "4111 ", "1111-", "1111 "]) == ["Your card is ", "", "", ""]


def test_a_short_number_is_released_once_the_text_after_it_ends_it():
    guard = screen()
    assert feed_all(guard, ["Order 42", " has", " shipped."]) == ["Order ", "42 has", " shipped."]


def test_nothing_is_released_after_a_full_match_not_even_clean_text():
    guard = screen()
    assert feed_all(guard, ["Card ", CARD, ". Thanks, ", "all done."]) == ["Card ", "", "", ""]
    assert guard.finish(passed=True) == ""  # the streamed text itself matches, whatever the verdict says


def test_the_held_rest_is_released_when_the_finished_reply_passes():
    guard = screen()
    assert guard.feed("Your order number is 123456") == "Your order number is "
    assert guard.finish(passed=True) == "123456"


def test_the_held_rest_is_withheld_when_the_final_screen_fails_the_reply():
    guard = screen()
    guard.feed("Your order number is 123456")
    assert guard.finish(passed=False) == ""


def test_each_pattern_screens_the_stream_with_its_own_flags():
    # ``re``'s flag bits are not ``regex``'s: ASCII must stay ASCII (Arabic-Indic digits are no \d to it).
    ascii_digits = StreamScreen.of([PolicyRule(re.compile(r"\d{3}", re.ASCII))])
    assert ascii_digits.feed("Code ٣٣") == "Code ٣٣"
    ignoring_case = StreamScreen.of([PolicyRule(re.compile("secret", re.IGNORECASE))])
    assert ignoring_case.feed("The SECR") == "The "


def test_a_word_boundary_the_next_token_may_satisfy_holds_the_text_before_it():
    guard = StreamScreen.of([PolicyRule(re.compile(r"(?i)\bdrop\s+\btable"))])
    assert feed_all(guard, ["Then drop ", "table users."]) == ["Then ", ""]


def test_released_text_matches_no_pattern_even_where_the_rest_of_the_reply_made_it_no_match():
    # In the whole reply these 16 digits are no card number (a letter follows them, so no "\b"), but shown
    # alone, as the stream would show them before "drop table" ends the run, they are one.
    guard = screen()
    assert guard.feed("4111111111111111drop table") == ""


def test_a_digit_run_is_held_until_complete_then_released_when_it_is_no_card_number():
    guard = screen()
    released = feed_all(guard, ["Tracking: 9400 1000 ", "0000 0000 0000 00", ", due Friday."])
    assert released == ["Tracking: ", "", "9400 1000 0000 0000 0000 00, due Friday."]


def test_the_start_of_a_card_number_is_held_even_when_it_fails_the_luhn_check_so_far():
    # 13 digits fail the check; three more make them a card number.
    guard = screen()
    assert feed_all(guard, [" :4111111111111", "111", " is it."]) == [" :", "", ""]


def test_drop_table_split_across_tokens_is_never_released():
    guard = screen()
    released = feed_all(guard, ["Done. I ran ", "DR", "OP ", " ", "TA", "BLE orders; ", "for you."])
    assert "".join(released) == "Done. I ran "


# -- properties over random texts and random splits -------------------------------------------------

FRAGMENTS = ["4111", "1111", " ", "-", "7", "12", "drop", " ", "TABLE", "d", "ro", "p", "x", ".", "\n", "ab"]
FRAGMENTS += ["key=", "k3y", "ky", "secret", "end", "pass", ":", "word", "Order ", "shipped", "4111111111111111"]
# Digit runs that are no card number (a timestamp, a failed Luhn check, a "00" prefix) and a card number's tail.
FRAGMENTS += ["1733580000000", "4111111111111112", "0044", "5555 5555 5555 4444", "1117"]
texts = st.lists(st.sampled_from(FRAGMENTS) | st.text(alphabet="0123 -abdkxy=", max_size=4), max_size=40).map("".join)


def split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({0, len(text), *(cut % (len(text) + 1) for cut in cuts)})
    return [text[start:end] for start, end in itertools.pairwise(points)]


def earliest_match(patterns: tuple[PolicyRule, ...], text: str) -> int:
    """Where the first match of any rule starts in ``text``, by ``re`` as the final screen runs it."""
    return min((m.start() for p in patterns if (m := p.search(text)) is not None), default=len(text))


@pytest.mark.parametrize("patterns", [POLICY, HARD], ids=["firebreak.toml", "lookbehind-lazy-boundaries"])
@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(text=texts, cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_no_released_character_is_ever_part_of_a_match_and_clean_text_is_released_whole(patterns, text, cuts):
    guard = StreamScreen.of(patterns)
    released = ""
    for token in split(text, cuts):
        released += guard.feed(token)
        assert text.startswith(released)
        # Not inside a match of the finished text, nor a match on its own: a user saw it.
        assert len(released) <= earliest_match(patterns, text)
        assert earliest_match(patterns, released) == len(released)
    if earliest_match(patterns, text) == len(text):
        assert released + guard.finish(passed=True) == text
    else:
        assert guard.finish(passed=True) == ""  # even if the verdict were wrong: the screen sees the match


# -- the real graph: the Python API, then the CLI ----------------------------------------------------


async def _stream(settings, question: str) -> tuple[list[str], RunResult]:
    async with Agent.open(settings) as agent:
        tokens: list[str] = []
        result = None
        async for item in agent.stream(question, route=ROUTE):
            if isinstance(item, Token):
                tokens.append(item.text)
            else:
                result = item
        assert result is not None
        return tokens, agent.settle_script(result)


def test_a_streamed_card_number_never_reaches_the_token_stream_and_the_run_is_terminated(
    database_url, make_settings, write_script
):
    settings = make_settings(database_url, script=write_script({"text": CARD_REPLY}))
    tokens, result = run(_stream(settings, "Which card do you have on file?"))

    assert result.status == "terminated"
    assert "".join(tokens) == CLEAN_PREFIX
    assert not any(re.search(r"\d", token) for token in tokens)


def test_a_clean_reply_streams_in_pieces_and_the_pieces_are_the_answer(database_url, make_settings, write_script):
    settings = make_settings(database_url, script=write_script({"text": CLEAN_REPLY}))
    tokens, result = run(_stream(settings, "Where is order 42?"))

    assert result.status == "answered"
    assert "".join(tokens) == result.answer == CLEAN_REPLY
    assert len(tokens) >= 10  # streamed word by word, numbers included, not held to the end


def test_a_reply_with_a_tracking_number_and_a_timestamp_is_answered_and_streamed_whole(
    database_url, make_settings, write_script
):
    reply = "Parcel 9400 1000 0000 0000 0000 00 left the depot at 1733580000000 (ms since 1970)."
    settings = make_settings(database_url, script=write_script({"text": reply}))
    tokens, result = run(_stream(settings, "Where is my parcel?"))

    assert result.status == "answered"
    assert "".join(tokens) == result.answer == reply


def test_firebreak_ask_never_prints_a_streamed_card_number(sqlite_url, write_script):
    env = {"FIREBREAK_SCRIPT": write_script({"text": CARD_REPLY}), "FIREBREAK_DATABASE_URL": sqlite_url}
    asked = firebreak("ask", "--model", ROUTE, "Which card do you have on file?", env=env)

    assert asked.returncode == 1, asked.stderr
    assert asked.stdout.startswith(CLEAN_PREFIX)
    assert "stopped by the safety breaker" in asked.stdout
    assert not re.search(r"\d", asked.stdout)


# -- the measurements: the security eval and the bench section --------------------------------------


def test_the_security_eval_shows_no_violating_character_and_streams_every_clean_reply(tmp_path):
    (scenario,) = streamed_violations(tmp_path)

    assert scenario.passed, scenario.figures
    assert scenario.figures["unscreened_chars_shown"] == 0
    assert scenario.figures["violating_replies"] >= 5


def test_the_stream_bench_times_both_sides_and_writes_its_section():
    figures = run(measure_stream(rounds=2, warmup=0))

    assert figures["screened_first_token_ms"] > 0 and figures["unscreened_first_token_ms"] > 0
    assert figures["hold_back"]["delayed_tokens"] > 0  # the bench reply has numbers for the screen to hold
    assert "| first released token |" in stream_section(figures)
