"""Aspect swaps for the verifier: the same object asked about another aspect ("How long is the warranty?" vs
"What does the warranty cover?"), the dev split's hardest negatives."""

from __future__ import annotations

import random

from evals.verifier_data import Example, reword

# Aspect -> rewordings with {o} for the object; two forms of one aspect are the same question, two aspects differ.
ASPECTS: dict[str, list[str]] = {
    "last": [
        "How long does {o} last?",
        "How long is {o} valid?",
        "What is the duration of {o}?",
        "For how long is {o} good?",
        "How long is {o} in effect?",
    ],
    "take": [
        "How long does {o} take?",
        "How much time does {o} take?",
        "How many days does {o} take?",
        "What's the processing time for {o}?",
    ],
    "cost": [
        "How much does {o} cost?",
        "What is the price of {o}?",
        "What do I pay for {o}?",
        "Is there a fee for {o}?",
        "How expensive is {o}?",
    ],
    "cover": [
        "What does {o} cover?",
        "What is included in {o}?",
        "What's covered under {o}?",
        "What do I get with {o}?",
    ],
    "who": [
        "Who is eligible for {o}?",
        "Who can get {o}?",
        "Who qualifies for {o}?",
        "Am I eligible for {o}?",
    ],
    "how": [
        "How do I get {o}?",
        "How can I obtain {o}?",
        "What are the steps to get {o}?",
        "How do I apply for {o}?",
        "What's the process for getting {o}?",
    ],
    "where": [
        "Where do I find {o}?",
        "Where can I see {o}?",
        "Where is {o} shown in my account?",
        "Where do I look up {o}?",
    ],
    "when": [
        "When does {o} start?",
        "When does {o} begin?",
        "From what date does {o} take effect?",
        "What's the start date for {o}?",
    ],
    "cancel": [
        "Can I cancel {o}?",
        "Is it possible to cancel {o}?",
        "How do I cancel {o}?",
        "Can {o} be cancelled?",
    ],
    "lapse": [
        "What happens if {o} expires?",
        "What happens when {o} runs out?",
        "What if {o} lapses?",
        "What occurs once {o} has expired?",
    ],
    "change": [
        "Can I change {o}?",
        "How do I modify {o}?",
        "Is it possible to update {o}?",
        "How can I edit {o}?",
    ],
    "contact": [
        "Who do I contact about {o}?",
        "Who should I ask about {o}?",
        "Who handles questions about {o}?",
        "Which team do I talk to about {o}?",
    ],
    "need": [
        "Do I need {o}?",
        "Is {o} required?",
        "Is {o} mandatory?",
        "Do I have to have {o}?",
    ],
    "transfer": [
        "Can I transfer {o} to someone else?",
        "Is {o} transferable?",
        "Can someone else use {o}?",
        "Can I give {o} to another person?",
    ],
}

# Object ("a~b" spellings of the same thing) -> the aspects that make sense for it.
ASPECT_OBJECTS: list[tuple[str, str]] = [
    ("the warranty~the guarantee", "last cost cover who how where when cancel lapse contact transfer"),
    ("a refund", "take cost who how where cancel contact"),
    ("shipping~delivery", "take cost cover where when cancel change contact"),
    ("my subscription~my plan", "last cost cover how where when cancel lapse change contact transfer"),
    ("a password reset", "take cost who how where contact need"),
    ("my invoice~my bill", "cost cover where when change contact"),
    ("an API key", "last cost who how where cancel lapse change need transfer"),
    ("vacation days~paid leave", "last who how where when lapse contact transfer"),
    ("the flight", "take cost cover where when cancel change contact"),
    ("a loan", "last take cost who how where when cancel lapse contact need"),
    ("an appointment~a booking", "take cost how where when cancel change contact need"),
    ("a database index", "take cost cover how where change need"),
    ("a git branch", "last how where cancel change need"),
    ("the free trial", "last cover who how when cancel lapse"),
    ("the gym membership", "last cost cover who how when cancel lapse change transfer"),
    ("parental leave", "last who how when contact need transfer"),
    ("travel insurance", "last cost cover who how when cancel lapse contact need"),
    ("the certification exam", "take cost cover who how where when cancel change need"),
    ("the SSL certificate", "last cost how where when lapse change need"),
    ("the parking permit", "last cost who how where when cancel lapse transfer"),
    ("the student discount", "last cost cover who how when lapse need"),
    ("loyalty points~reward points", "last cover who how where lapse transfer"),
    ("the apartment lease~the rental lease", "last cost cover when cancel lapse change contact transfer"),
    ("the onboarding course", "take cost cover who how where when need"),
    ("a work visa", "last take cost who how when lapse change contact need"),
    ("the software license", "last cost cover who how where when cancel lapse change transfer"),
    ("the health plan~health insurance", "cost cover who how when cancel lapse change contact need"),
    ("a library card", "last cost who how where lapse transfer need"),
    ("the extended support contract", "last cost cover who how when cancel lapse contact"),
    ("a background check", "take cost cover who how need"),
]
ASPECT_NEGATIVES = 1500
ASPECT_POSITIVES = 1000


def aspect_pairs(rng: random.Random) -> list[Example]:
    """Same object: two aspects (different) or one aspect reworded (same); plus other object, same aspect."""
    out: list[Example] = []

    def ask(aspect: str, obj: str, form: str | None = None) -> str:
        text = (form or rng.choice(ASPECTS[aspect])).format(o=rng.choice(obj.split("~")))
        return text[0].upper() + text[1:]

    while sum(e.source == "gen:aspect" for e in out) < ASPECT_NEGATIVES:
        obj, aspects = rng.choice(ASPECT_OBJECTS)
        first, second = rng.sample(aspects.split(), 2)
        out.append(Example(ask(first, obj), ask(second, obj), False, "gen:aspect"))
        if rng.random() < 0.15:  # the same aspect of another object is another question too
            other = rng.choice([o for o, a in ASPECT_OBJECTS if first in a.split() and o != obj])
            out.append(Example(ask(first, obj), ask(first, other), False, "gen:aspect_object"))
    while sum(e.same for e in out) < ASPECT_POSITIVES:
        obj, aspects = rng.choice(ASPECT_OBJECTS)
        aspect = rng.choice(aspects.split())
        f1, f2 = rng.sample(ASPECTS[aspect], 2)
        second = ask(aspect, obj, f2)
        out.append(
            Example(
                ask(aspect, obj, f1), reword(second, rng) if rng.random() < 0.3 else second, True, "gen:aspect_same"
            )
        )
    return out
