"""Grammar-first sampling on the real embedded model: the same tokens as llama.cpp's own grammar sampler."""

from __future__ import annotations

import json
from collections.abc import Iterator

import llama_cpp
import pytest
from llama_cpp.llama_grammar import LlamaGrammar

from app.gateway.grammar_first import GrammarFirstLlama, GrammarFirstSampler
from app.gateway.local_model import new_llama
from app.gateway.model_files import assemble_model
from core.config import load_settings

pytestmark = pytest.mark.slow

ORDER = {"type": "object", "properties": {"order_id": {"type": "integer"}}, "required": ["order_id"]}
SEARCH = {
    "type": "object",
    "properties": {
        "query": {"type": "string"},
        "top_k": {"type": "integer"},
        "channel": {"type": "string", "enum": ["email", "phone", "chat"]},
    },
    "required": ["query"],
}
WORDS = '"yes" | "no" | "maybe" | "sure" | "ok"'
# (question, grammar): a tool's arguments under its JSON schema, and a decision among options.
CASES = [
    ("Look up order 5521 and tell me when it ships.", LlamaGrammar.from_json_schema(json.dumps(ORDER), verbose=False)),
    ("When is the support desk open? Ask by phone.", LlamaGrammar.from_json_schema(json.dumps(SEARCH), verbose=False)),
    (
        "Search the help centre for refund rules, three results.",
        LlamaGrammar.from_json_schema(json.dumps(SEARCH), verbose=False),
    ),
    # Ten words from five: a strong penalty pushes the repeated favourites below words the shortlist left out.
    ("Say yes ten times.", LlamaGrammar.from_string(f'w ::= {WORDS}\nroot ::= w (", " w){{9}}', verbose=False)),
    (
        "What is the capital of France?",
        LlamaGrammar.from_string('root ::= "answer" | "knowledge_search" | "sql_lookup"', verbose=False),
    ),
]


def chatml(question: str) -> str:
    system = "Reply with JSON arguments for the tool the user needs."
    return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


def loaded(kind: type[llama_cpp.Llama], **options: int) -> llama_cpp.Llama:
    settings = load_settings().local_model
    return new_llama(kind, assemble_model(settings.cache_path, progress=False), 2048, settings.threads, **options)


@pytest.fixture(scope="module")
def models() -> Iterator[dict[str, llama_cpp.Llama]]:
    """llama.cpp's own sampling, and grammar-first sampling with the shipped shortlist and with one so short
    that the grammar often allows none of it or a word left out scores more (the full vocabulary decides)."""
    loaded_models = {
        "stock": loaded(llama_cpp.Llama),
        "shipped": loaded(GrammarFirstLlama),
        "short": loaded(GrammarFirstLlama, shortlist=3),
    }
    yield loaded_models
    for llama in loaded_models.values():
        llama.close()


def constrained(llama: llama_cpp.Llama, question: str, grammar: LlamaGrammar, penalty: float) -> list[int]:
    """Greedy tokens under ``grammar`` to its end (at most 40)."""
    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    prompt = llama.tokenize(chatml(question).encode(), special=True)
    out: list[int] = []
    for token in llama.generate(prompt, temp=0.0, repeat_penalty=penalty, grammar=grammar):
        if llama_cpp.llama_vocab_is_eog(vocab, token) or len(out) == 40:
            break
        out.append(token)
    return out


@pytest.mark.parametrize("shortlist", ["shipped", "short"])
@pytest.mark.parametrize("penalty", [1.05, 3.0])  # the agent's repeat penalty, and one that reorders the favourites
@pytest.mark.parametrize("case", range(len(CASES)))
def test_grammar_first_sampling_picks_the_tokens_llama_cpps_grammar_sampler_picks(
    models: dict[str, llama_cpp.Llama], case: int, penalty: float, shortlist: str
) -> None:
    question, grammar = CASES[case]

    expected = constrained(models["stock"], question, grammar, penalty)
    picked = constrained(models[shortlist], question, grammar, penalty)

    assert picked == expected and expected  # a grammar-held reply, token for token


def test_the_shortlist_decides_most_constrained_steps(models: dict[str, llama_cpp.Llama]) -> None:
    tokens = constrained(models["shipped"], *CASES[1], 1.05)

    sampler = models["shipped"]._sampler
    assert isinstance(sampler, GrammarFirstSampler)
    assert sampler.shortlisted >= len(tokens) // 2 > 0
