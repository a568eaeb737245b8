"""Fixtures for the economy's tests: small attribution runs written under ``tmp_path``.

Tests never read ``runs/default``; they build tables with the same layout as a real run
(``AttributionTable(...).save(dir)``), with causal scores that are heavy-tailed and partly negative
and similarity scores that agree with them only in part, as in real runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from attribution.table import AttributionTable

CAUSAL = ("trak", "trak_1ckpt", "tracin", "grad_dot", "grad_cos")
SIMILARITY = ("sim_pitch_hist", "sim_interval_ngram", "sim_embedding")


def make_table(n_creators: int = 8, n_outputs: int = 10, seed: int = 0) -> AttributionTable:
    """A small synthetic attribution table with every method a real run has."""
    rng = np.random.default_rng(seed)
    pieces = rng.integers(2, 12, n_creators)
    corpus = pd.DataFrame(
        [
            {
                "train_id": f"c{c}_p{p}",
                "creator": f"composer_{c:02d}",
                "title": f"piece {p}",
                "events": int(rng.integers(200, 2000)),
                "seconds": float(rng.uniform(40, 300)),
            }
            for c in range(n_creators)
            for p in range(pieces[c])
        ]
    )
    outputs = pd.DataFrame(
        {"output_id": [f"gen_{o:03d}" for o in range(n_outputs)], "events": 512, "seconds": 60.0}
    )
    influence = rng.lognormal(0, 1.2, n_creators)  # creator-level heavy tail
    creator_idx = corpus["creator"].str[-2:].astype(int).to_numpy()
    rows = []
    for o in outputs["output_id"]:
        base = influence[creator_idx] * rng.lognormal(0, 0.8, len(corpus))
        for method in CAUSAL:
            score = base * rng.lognormal(0, 0.3, len(corpus)) - 0.15 * base.mean()  # some negative
            rows.append(pd.DataFrame({"output_id": o, "train_id": corpus["train_id"], "creator": corpus["creator"],
                                      "method": method, "score": score}))
        for method in SIMILARITY:
            sim = np.clip(0.3 * base / base.max() + rng.uniform(0, 0.6, len(corpus)), 0, 1)
            rows.append(pd.DataFrame({"output_id": o, "train_id": corpus["train_id"], "creator": corpus["creator"],
                                      "method": method, "score": sim}))
    return AttributionTable(scores=pd.concat(rows, ignore_index=True), corpus=corpus, outputs=outputs)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved small attribution run (shared by the session; never modified)."""
    path = tmp_path_factory.mktemp("attribution_run")
    make_table().save(path)
    return path


def small_scenario(run: Path, **overrides: object) -> dict:
    """A quick scenario dict on the fixture run: few listeners, few months, three arms."""
    raw: dict = {
        "question": "test",
        "seed": 3,
        "seeds": 1,  # one seed keeps each test quick; the tests of replicates ask for more
        "steps": 4,
        "source": {"kind": "corpus", "run": str(run)},
        "consumers": {"n": 300, "sessions": 10},
        "schemes": [
            {"label": "pro-rata", "ai": {"name": "pro_rata"}},
            {"label": "similarity", "ai": {"name": "similarity", "params": {"top_k": 2}}},
            {"label": "causal", "ai": {"name": "causal"}},
        ],
    }
    raw.update(overrides)
    return raw


def write_yaml(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
