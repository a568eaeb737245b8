import numpy as np
import pandas as pd
import pytest

from attribution.table import AttributionTable, AttributionTableError, apply_negative_policy


def make_table():
    corpus = pd.DataFrame(
        {"train_id": ["a/1", "a/2", "b/1"], "creator": ["a", "a", "b"], "title": ["x", "y", "z"],
         "events": [10, 20, 30], "seconds": [1.0, 2.0, 3.0]}
    )
    outputs = pd.DataFrame({"output_id": ["o1", "o2"], "events": [5, 5], "seconds": [1.0, 1.0]})
    scores = pd.DataFrame(
        {"output_id": ["o1"] * 3 + ["o2"] * 3, "train_id": ["a/1", "a/2", "b/1"] * 2,
         "creator": ["a", "a", "b"] * 2, "method": "trak", "score": [1.0, 2.0, -1.0, 0.5, -0.5, 1.0]}
    )
    return AttributionTable(scores=scores, corpus=corpus, outputs=outputs)


def test_round_trip_and_creator_aggregation(tmp_path):
    make_table().save(tmp_path)
    t = AttributionTable.load(tmp_path)
    assert t.methods == ["trak"] and t.creators == ["a", "b"]
    kept = t.to_creators("trak", negative="keep")
    assert kept.loc["o1", "a"] == 3.0 and kept.loc["o2", "a"] == 0.0 and kept.loc["o1", "b"] == -1.0
    # the policy applies to catalogue totals: a's +0.5 and -0.5 pieces cancel for o2
    clipped = t.to_creators("trak")
    assert clipped.loc["o1", "a"] == 3.0 and clipped.loc["o1", "b"] == 0.0
    assert clipped.loc["o2", "a"] == 0.0 and clipped.loc["o2", "b"] == 1.0
    shares = t.creator_shares("trak")
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    assert shares.loc["o2", "b"] == 1.0
    # similarity reads the best piece per creator
    sim = t.scores.assign(method="sim_x", score=t.scores["score"].abs())
    t2 = AttributionTable(scores=sim, corpus=t.corpus, outputs=t.outputs)
    assert t2.to_creators("sim_x", how="max").loc["o1", "a"] == 2.0


def test_negative_policies():
    x = np.array([[-1.0, 0.0, 2.0]])
    assert apply_negative_policy(x, "clip").tolist() == [[0.0, 0.0, 2.0]]
    assert apply_negative_policy(x, "shift").tolist() == [[0.0, 1.0, 3.0]]
    assert apply_negative_policy(x, "abs").tolist() == [[1.0, 0.0, 2.0]]
    with pytest.raises(AttributionTableError, match="clip"):
        apply_negative_policy(x, "bogus")


def test_clear_errors(tmp_path):
    with pytest.raises(AttributionTableError, match="does not exist"):
        AttributionTable.load(tmp_path / "nope")
    make_table().save(tmp_path)
    (tmp_path / "outputs.parquet").unlink()
    with pytest.raises(AttributionTableError, match="outputs.parquet is missing"):
        AttributionTable.load(tmp_path)
    with pytest.raises(AttributionTableError, match="available methods"):
        make_table().pivot("sim_embedding")
    t = make_table()
    with pytest.raises(AttributionTableError, match="missing column"):
        AttributionTable(scores=t.scores.drop(columns="method"), corpus=t.corpus, outputs=t.outputs)
