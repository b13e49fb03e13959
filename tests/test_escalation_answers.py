"""A person's answer to an escalation is read with the same yes and no as a user's chat reply
(``app/containment/replies.py``): an escalation's first option approves and its second refuses, and any plain yes
or no answers it too. An answer that is neither is refused, naming the options, and changes nothing."""

from __future__ import annotations

import pytest
from conftest import run
from test_containment import CANCEL, _open, _waiting, escalation, order_status, writes

from app.containment.escalation import answer_side, expiry_answer, is_approval
from app.operators import answer_action
from core.errors import FirebreakError
from memory.tables import Escalation

OPTIONS = {
    "gate": (["approve", "reject"], "Approve update_order(order_id=2, status=cancelled)?"),
    "budget": (["raise", "stop"], "Raise the tool_calls cap once for this run, or stop it?"),
    "confirmation": (["yes", "no"], "Shall I call update_order?"),
}


def row(kind: str, *, answer: str | None = None, status: str = "open", trigger: str = "low_confidence") -> Escalation:
    options, question = OPTIONS[kind]
    return Escalation(
        id="e1", run_id="r1", thread_id="t1", tenant_id="default", type="targeted", trigger=trigger,
        audience="reviewer", reason="test", question=question, options=options, status=status, answer=answer,
        created_at=0.0, due_at=1.0,
    )  # fmt: skip


@pytest.mark.parametrize("kind", sorted(OPTIONS))
@pytest.mark.parametrize("answer", ["yes", "Yes please", "OK, go ahead", "Approved."])
def test_a_plain_yes_approves_every_kind_of_escalation(kind, answer):
    assert answer_side(row(kind), answer) == "yes"


@pytest.mark.parametrize("kind", sorted(OPTIONS))
@pytest.mark.parametrize("answer", ["no", "No thanks", "Reject", "don't"])
def test_a_plain_no_refuses_every_kind_of_escalation(kind, answer):
    assert answer_side(row(kind), answer) == "no"


@pytest.mark.parametrize("kind", sorted(OPTIONS))
def test_the_first_option_approves_and_the_second_refuses(kind):
    first, second = OPTIONS[kind][0]
    assert (answer_side(row(kind), first), answer_side(row(kind), second)) == ("yes", "no")


@pytest.mark.parametrize("answer", ["approve, but only the first order", "maybe", "raise", "later", ""])
def test_an_answer_that_is_neither_or_belongs_to_another_escalation_is_no_answer(answer):
    assert answer_side(row("gate"), answer) is None


def test_only_an_answered_yes_is_an_approval_and_an_expired_one_never_is():
    assert is_approval(row("gate", answer="Yes please", status="answered"))
    assert not is_approval(row("gate", answer="approve, but only the first order", status="answered"))
    assert not is_approval(row("gate", answer="approve", status="expired"))


@pytest.mark.parametrize("kind", sorted(OPTIONS))
def test_an_escalation_that_expires_is_refused_with_its_second_option(kind):
    assert expiry_answer(row(kind)) == OPTIONS[kind][0][1]


def test_yes_to_a_budget_breach_in_any_words_is_raising_a_limit():
    breach = row("budget", trigger="budget_breach")
    assert [answer_action(breach, answer) for answer in ("raise", "Yes, raise it", "stop", "no")] == [
        "limits.raise", "limits.raise", "escalation.answer", "escalation.answer",
    ]  # fmt: skip


def test_a_reviewers_yes_in_their_own_words_runs_the_write_once(database_url, make_settings, write_script):
    script = write_script(CANCEL, {"text": "0.4"}, {"text": "Order 2 is cancelled."})

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=script)) as agent:
            first, pending = await _waiting(agent, "Cancel order 2")

            done = agent.settle_script(await agent.answer(pending["id"], "Yes, approved.", by="reviewer:ada"))

            assert (done.status, done.answer) == ("answered", "Order 2 is cancelled.")
            assert writes(agent, first.run_id) == 1 and order_status(agent) == "cancelled"

    run(scenario())


def test_an_unclear_answer_is_refused_naming_the_options_and_the_run_still_waits(
    database_url, make_settings, write_script
):
    script = write_script(CANCEL, {"text": "0.4"})

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=script)) as agent:
            first, pending = await _waiting(agent, "Cancel order 2")

            with pytest.raises(FirebreakError, match=r"not an answer .* use one of \['approve', 'reject'\]"):
                await agent.answer(pending["id"], "approve, but only the first order", by="reviewer:ada")

            # Kept: the escalation is still open, the run still waits, and nothing was written.
            assert escalation(agent, pending["id"]).status == "open"
            assert agent.services.runs.get(first.run_id).status == "waiting"
            assert writes(agent, first.run_id) == 0 and order_status(agent) == "pending"
            agent.settle_script(first)

    run(scenario())
