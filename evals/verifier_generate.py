"""The verifier's generated pairs: rewordings (same) and one-slot changes, swaps and negations (different)."""

from __future__ import annotations

import random
import re

from evals.verifier_aspect_swaps import aspect_pairs
from evals.verifier_data import SEED, SLOT_KIND, Example, Frame, reword
from evals.verifier_frames_accounts import ACCOUNT_FRAMES
from evals.verifier_frames_everyday import EVERYDAY_FRAMES
from evals.verifier_frames_services import SERVICE_FRAMES
from evals.verifier_frames_support import SUPPORT_FRAMES
from evals.verifier_order_swaps import order_pairs
from evals.verifier_target_swaps import target_pairs

SAMPLES_PER_FRAME = 10
# In this order: the seeded generator walks the frames by index (new tables go last, so earlier pairs stay).
FRAMES: list[Frame] = [*SUPPORT_FRAMES, *EVERYDAY_FRAMES, *ACCOUNT_FRAMES, *SERVICE_FRAMES]

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


def _negate(text: str, rng: random.Random) -> str | None:
    options = [negated + text[len(plain) :] for plain, negated in NEGATIONS if text.startswith(plain)]
    return rng.choice(options) if options else None


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
            out.append(Example(_fill(f1, values, rng), reword(_fill(f2, values, rng), rng), True, "gen:reword"))
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
