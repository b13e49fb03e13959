"""``firebreak eval cache``: the semantic cache on the dev split, the frozen test split and the public sets.

The dev split is where the thresholds, the guards and the verifier's calibration are chosen; the test split
(``FROZEN_TEST_SHA256``: changing it is a new decision record) and the public sets only report, and the
targets are judged on them. ``--dataset FILE`` reports on a user's own pairs instead (top-level
``precision`` and ``recall``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from app.cache.verifier import CrossEncoderVerifier
from app.embeddings import Embedder
from core.config import Settings
from evals.cache_pairs import DEV, TARGET_PRECISION, TARGET_RECALL, TEST, Pair, fit_calibration, load_pairs, report_file
from evals.scenario import file_sha256

FROZEN_TEST_SHA256 = "9eb73b47a6b89e881af15c95a19a88ef2779098ba3cf1c57cb87854112447fb6"


def main(
    settings: Settings,
    dataset: str | Path | None = None,
    *,
    route: str | None = None,
    embedder: Embedder | None = None,
    verifier: CrossEncoderVerifier | None = None,
    public: Mapping[str, Sequence[Pair]] | None = None,
) -> dict[str, Any]:
    """The cache eval: on ``dataset`` alone when given, else dev + frozen test + public sets (default: all of
    :data:`evals.public_pairs.PUBLIC_SETS`). Models default to the packaged ones."""
    if embedder is None:
        from app.embeddings import default_embedder  # loads the model: only when the eval runs

        embedder = default_embedder()
    if verifier is None:
        from app.cache.verifier import default_verifier

        verifier = default_verifier()
    route = route or settings.agent.default_route
    targets = {"precision": TARGET_PRECISION, "recall": TARGET_RECALL}

    def run(pairs: Sequence[Pair]) -> tuple[dict[str, Any], Any, Any]:
        return report_file(pairs, settings, embedder, verifier, route=route)

    if dataset is not None:
        report, _, _ = run(load_pairs(dataset))
        return {"dataset": str(dataset), "route": route, "targets": targets, **report}
    dev_pairs = load_pairs(DEV)
    dev, dev_probes, dev_scores = run(dev_pairs)
    test, _, _ = run(load_pairs(TEST))
    digest = file_sha256(TEST)
    test |= {"dataset": str(TEST), "sha256": digest, "frozen": digest == FROZEN_TEST_SHA256}
    if public is None:
        from evals.public_pairs import PUBLIC_SETS, load_public

        public = {name: load_public(name) for name in PUBLIC_SETS}
    public_reports = {name: run(pairs)[0] for name, pairs in public.items()}
    judged = [test, *public_reports.values()]
    return {
        "route": route,
        "targets": targets,
        "calibration": {
            "shipped": vars(verifier.calibration),
            "fitted_on_dev": vars(fit_calibration(dev_pairs, dev_probes, dev_scores)),
        },
        "dev": {"dataset": str(DEV), **dev},
        "test": test,
        "public": public_reports,
        "passed": test["frozen"] and all(report["passed"] for report in judged) and dev["agrees_with_cache"],
    }
