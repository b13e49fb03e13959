"""The bench's bare llama-cpp-python side: the same work as Firebreak's reply, no more and no less."""

from __future__ import annotations

import pytest

from core.config import load_settings
from evals.bench_model import BareModel

pytestmark = pytest.mark.slow

QUESTION = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def bare() -> BareModel:
    return BareModel(load_settings().local_model, tools=[], temperature=0.0)


def test_a_capped_reply_still_evaluates_its_last_token_as_a_reply_that_ends_does(bare: BareModel) -> None:
    # Firebreak's reply of N tokens ended by sampling its end token, which evaluates the N-th token first.
    reply = bare.generate(QUESTION, like="Red, green")
    evaluated = bare.llama.n_tokens - reply.prompt_tokens

    assert reply.completion_tokens == len(bare.llama.tokenize(b"Red, green", add_bos=False, special=True))
    assert evaluated == reply.completion_tokens
