"""Order swaps for the verifier: a comparison or direction reversed ("A cheaper than B" vs "B cheaper than A")."""

from __future__ import annotations

import random

from evals.verifier_data import Example, reword, table_frames

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
    frames = table_frames(ORDER_FRAMES)

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
            Example(say(f1, a, b), reword(second, rng) if rng.random() < 0.3 else second, True, "gen:order_same")
        )
    return out
