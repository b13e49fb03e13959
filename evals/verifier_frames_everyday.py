"""Question frames from everyday services (travel, banking, developers, health, facts) for generated pairs."""

from __future__ import annotations

from evals.verifier_data import CITIES, DATES, PEOPLE, F, Frame

EVERYDAY_FRAMES: list[Frame] = [
    # travel
    F(
        "travel",
        "Is a flight to {A} longer than a flight to {B}?|Does flying to {A} take more time than flying to "
        "{B}?|Is the trip to {B} shorter than the trip to {A}?",
        A="Tokyo/Lisbon/Chicago",
        B="London/Denver/Rome",
    ),
    F(
        "travel",
        "How do I book a flight from {A} to {B}?|Can I book a flight from {A} to {B}?|"
        "I want to fly from {A} to {B}, how do I book?|Find me flights from {A} to {B}",
        A="Paris/Boston/Berlin/Madrid",
        B="Rome/Seattle/Dublin/Tokyo",
    ),
    F(
        "travel",
        "Can I check in {rel} 3 pm?|Is check-in possible {rel} 3 pm?|May I check in {rel} three o'clock?",
        rel="before/after",
    ),
    F(
        "travel",
        "What's the weather in {ent} on {date}?|Will it rain in {ent} on {date}?|"
        "What's the forecast for {ent} on {date}?",
        ent=CITIES,
        date=DATES,
    ),
    F(
        "travel",
        "Can I {act} my hotel booking?|How do I {act} my hotel reservation?|Is it possible to {act} my room booking?",
        act="extend/shorten",
    ),
    F(
        "travel",
        "Can I bring a {tgt} on the plane?|Is a {tgt} allowed in carry-on?|Am I allowed to carry a {tgt} on board?",
        tgt="laptop/power bank/pocket knife/bottle of water/guitar",
    ),
    F(
        "travel",
        "Do I need a visa for {ent}?|Is a visa required to visit {ent}?|Does {ent} require a visa?",
        ent="Japan/Canada/Brazil/India/Australia/Kenya",
    ),
    F(
        "travel",
        "Is there a train from {A} to {B}?|Can I take a train from {A} to {B}?|Does a train run from {A} to {B}?",
        A="Paris/Berlin/Madrid",
        B="London/Rome/Lisbon",
    ),
    F(
        "travel",
        "How do I {act} a seat upgrade?|Can I {act} my seat upgrade?|What's the way to {act} a seat upgrade?",
        act="request/decline",
    ),
    F(
        "travel",
        "Can I change my flight on {date}?|Is it possible to rebook my {date} flight?|"
        "How do I change the flight I have on {date}?",
        date=DATES,
    ),
    # banking
    F(
        "bank",
        "How do I transfer money from {A} to {B}?|Can I move money from {A} to {B}?|"
        "Transfer funds from {A} to {B}|I want to send money from {A} to {B}",
        A="savings/my checking account",
        B="checking/my savings account",
    ),
    F(
        "bank",
        "Transfer ${num} to {ent}|Send ${num} to {ent}|Please pay {ent} ${num}|Can you send {ent} ${num}?",
        num="50/100/250/500/1000/20",
        ent=PEOPLE,
    ),
    F(
        "bank",
        "How do I {act} my debit card?|Can I {act} my card in the app?|What's the way to {act} my debit card?",
        act="freeze/unfreeze",
    ),
    F(
        "bank",
        "Is the interest rate on savings {rel} {num}%?|Does savings pay {rel} {num}% interest?|"
        "Is the savings rate {rel} {num} percent?",
        rel="over~above/under~below",
        num="2/3/4/5",
    ),
    F(
        "bank",
        "How do I {act} my credit limit?|Can I {act} my card's limit?|What do I do to {act} my credit limit?",
        act="increase~raise/decrease~lower",
    ),
    F(
        "bank",
        "Can I get statements by {tgt}?|How do I receive my statements via {tgt}?|"
        "Is it possible to get bank statements by {tgt}?",
        tgt="email/post~mail/the app/SMS",
    ),
    F(
        "bank",
        "Was my payment on {date} received?|Did my {date} payment go through?|"
        "Has the payment I made on {date} arrived?",
        date=DATES,
    ),
    F(
        "bank",
        "What is the fee for {tgt} transfers?|How much do {tgt} transfers cost?|Are there charges for {tgt} transfers?",
        tgt="international/domestic/instant/wire",
    ),
    F(
        "bank",
        "How can I {act} my mortgage payments?|What's the best way to {act} my mortgage payment?|"
        "Can I {act} the monthly mortgage payment?",
        act="increase/reduce~lower",
    ),
    F(
        "bank",
        "How do I {act} overdraft protection?|Can I {act} overdraft protection?|"
        "What's the process to {act} overdraft protection?",
        act="get~sign up for/avoid~opt out of",
    ),
    # developer questions
    F(
        "dev",
        "How do I convert a {A} to a {B} in Python?|What's the way to turn a {A} into a {B} in Python?|"
        "Python: convert {A} to {B}?",
        A="list/string/dict/tuple",
        B="string/set/JSON string/list",
    ),
    F(
        "dev",
        "How do I {act} a column in pandas?|What's the pandas way to {act} a column?|"
        "Can you show me how to {act} a DataFrame column?",
        act="add/drop~remove",
    ),
    F(
        "dev",
        "How do I {act} a git branch?|What's the command to {act} a branch in git?|Git: how to {act} a branch?",
        act="create/delete",
    ),
    F(
        "dev",
        "How do I install the SDK on {tgt}?|What are the SDK install steps for {tgt}?|Can I set up the SDK on {tgt}?",
        tgt="Windows/macOS/Linux/Docker",
    ),
    F(
        "dev",
        "Is {A} faster than {B}?|Does {A} run quicker than {B}?|Is {B} slower than {A}?",
        A="Rust/PyPy/PostgreSQL",
        B="Go/CPython/MySQL",
    ),
    F(
        "dev",
        "How do I sort a list in {rel} order?|Sort a Python list in {rel} order|"
        "What's the way to sort items in {rel} order?",
        rel="ascending/descending",
    ),
    F(
        "dev",
        "What's the rate limit for the {tgt} API?|How many requests per minute does the {tgt} API allow?|"
        "Is there a rate limit on the {tgt} API?",
        tgt="search/billing/users/upload",
    ),
    F(
        "dev",
        "How do I upgrade to Python {num}?|What's the way to move my project to Python {num}?|"
        "Steps to switch to Python {num}?",
        num="3.9/3.10/3.11/3.12/3.13",
    ),
    F(
        "dev",
        "How do I read a {tgt} file in Python?|What's the way to load a {tgt} file with Python?|"
        "Python: open a {tgt} file?",
        tgt="CSV/JSON/YAML/Parquet/PDF",
    ),
    F(
        "dev",
        "How do I {act} logging in Django?|Can I {act} Django's logging?|What's the way to {act} logs in Django?",
        act="enable~turn on/disable~turn off",
    ),
    F(
        "dev",
        "How do I copy a table from {A} to {B}?|Can I migrate a table from {A} to {B}?|Move data from {A} into {B}",
        A="staging/MySQL/SQLite",
        B="production/PostgreSQL/BigQuery",
    ),
    # health appointments
    F(
        "health",
        "Can I book an appointment with {ent}?|Is {ent} available for an appointment?|"
        "I'd like to see {ent}, can I book?",
        ent="Dr. Smith/Dr. Patel/Dr. Nguyen/Dr. Garcia/Dr. Kim",
    ),
    F(
        "health",
        "Can I see the doctor on {date}?|Is there an appointment free on {date}?|Do you have availability on {date}?",
        date=DATES,
    ),
    F(
        "health",
        "How do I {act} my appointment?|Can I {act} my appointment online?|What's the way to {act} an appointment?",
        act="cancel/confirm",
    ),
    F(
        "health",
        "Can I get a reminder by {tgt}?|Do you send appointment reminders via {tgt}?|"
        "Is a {tgt} reminder available for my visit?",
        tgt="email/SMS~text/phone call/the app",
    ),
    F(
        "health",
        "Should I eat {rel} the blood test?|Can I have food {rel} my blood test?|Is eating OK {rel} a blood test?",
        rel="before/after",
    ),
    F(
        "health",
        "Is my appointment at {num} o'clock?|Did I book for {num} o'clock?|Is my visit scheduled at {num}?",
        num="9/10/11/2/3/4",
    ),
    F(
        "health",
        "Does my insurance cover {tgt}?|Is {tgt} covered by my plan?|Will insurance pay for {tgt}?",
        tgt="physiotherapy/dental cleaning/eye exams/therapy sessions/vaccines",
    ),
    F(
        "health",
        "Can I {act} my prescription?|How do I {act} my prescription?|Is it possible to {act} my prescription online?",
        act="refill~renew/cancel",
    ),
    # general facts
    F(
        "facts",
        "What is the capital of {ent}?|Which city is the capital of {ent}?|What's {ent}'s capital?",
        ent="France/Spain/Japan/Canada/Australia/Brazil/Egypt",
    ),
    F(
        "facts",
        "Is {A} bigger than {B}?|Is {A} larger than {B}?|Is {B} smaller than {A}?",
        A="the Sun/Jupiter/Canada/the Pacific",
        B="the Moon/Earth/Mexico/the Atlantic",
    ),
    F(
        "facts",
        "How far is {A} from {B}?|What's the distance from {A} to {B}?|How many miles from {A} to {B}?",
        A="Paris/Tokyo/Boston",
        B="London/Osaka/Chicago",
    ),
    F(
        "facts",
        "Who won the World Cup in {num}?|Which team won the {num} World Cup?|What country took the World Cup in {num}?",
        num="1998/2006/2010/2014/2018/2022",
    ),
    F(
        "facts",
        "How many people live in {ent}?|What's the population of {ent}?|How big is {ent}'s population?",
        ent=CITIES,
    ),
    F("facts", "Why is the sky blue?|What makes the sky look blue?|How come the sky is blue?"),
    F(
        "facts",
        "When did {ent} die?|What year did {ent} pass away?|When was {ent}'s death?",
        ent="Einstein/Newton/Darwin/Mozart/Picasso",
    ),
    F(
        "facts",
        "What's the boiling point of water in {tgt}?|At what temperature does water boil in {tgt}?|"
        "Water boils at how many degrees {tgt}?",
        tgt="Celsius/Fahrenheit/Kelvin",
    ),
    F(
        "facts",
        "Does {A} come {rel} {B} in the alphabet?|Is {A} {rel} {B} alphabetically?|"
        "In alphabetical order, is {A} {rel} {B}?",
        A="apple/melon",
        B="banana/kiwi",
        rel="before/after",
    ),
]
