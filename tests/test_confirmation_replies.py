"""A user's reply to "shall I …?" is read as people write it, and a reply that adds something is never guessed at."""

from __future__ import annotations

import pytest
from conftest import run
from test_containment import CANCEL, _open, _waiting, escalation, order_status, writes

from app.containment.replies import confirmation_reply

QUESTION = 'Before I go on: shall I call update_order({"order_id": 2, "status": "cancelled"})?'


@pytest.mark.parametrize(
    "reply",
    ["yes", "Y", "Yes please", "Yes!", "sure, go ahead", "OK, do it", "Yes, cancel it", "yes — cancel order 2 please",
     "Yep, thanks", "Of course", "Confirm", "Yes, that's right", "Okay, sounds good"],
)  # fmt: skip
def test_a_yes_in_the_users_own_words_approves(reply):
    assert confirmation_reply(reply, QUESTION) == "yes"


@pytest.mark.parametrize(
    "reply", ["no", "N", "No thanks", "nope", "Don't", "do not do that", "Cancel", "never mind", "No, not now"]
)
def test_a_no_in_the_users_own_words_declines(reply):
    assert confirmation_reply(reply, QUESTION) == "no"


@pytest.mark.parametrize(
    "reply",
    [
        "yes, but send it to my other address",  # approving would run the action the user just amended
        "Yes, cancel it and refund me",
        "no, I meant order 3",  # declining would drop the order the user named
        "What is the status of order 2?",
        "yes no",
        "maybe",
        "",
        "why?",
    ],
)
def test_a_reply_that_adds_something_or_is_neither_is_no_answer(reply):
    assert confirmation_reply(reply, QUESTION) is None


def test_yes_in_a_sentence_of_the_questions_own_words_runs_the_write_once(database_url, make_settings, write_script):
    script = write_script(CANCEL, {"text": "0.7"}, {"text": "Order 2 is cancelled."})

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=script)) as agent:
            first, pending = await _waiting(agent, "Cancel order 2", thread_id="t-words")

            done = agent.settle_script(await agent.ask("Yes please, cancel it.", thread_id="t-words"))

            assert (done.run_id, done.status, done.answer) == (first.run_id, "answered", "Order 2 is cancelled.")
            assert escalation(agent, pending["id"]).answer == "yes"
            assert order_status(agent) == "cancelled" and writes(agent, first.run_id) == 1

    run(scenario())
