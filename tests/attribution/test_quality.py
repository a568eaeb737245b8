"""Generation-quality metrics against hand-computed values, and the `quality` command on a tiny run."""

import math

import numpy as np
import pytest
import torch

from attribution.quality import (
    DURATION_EDGES,
    corpus_sequences,
    duration_histogram,
    hanging_fraction,
    js_divergence,
    log_likelihood_per_event,
    long_fraction,
    piece_metrics,
    pitch_class_counts,
    quality_table,
)
from attribution.tokenize import EventTokenizer
from attribution.windows import make_windows

TOK = EventTokenizer()


def _hanging_piece() -> np.ndarray:
    """C4 for 0.5 s closed by its NOTE_OFF, then E4 struck and left sounding for 5 s until the sequence ends."""
    return np.array(
        [TOK.bos_id, TOK.note_on_id(60), TOK.shift_id(50), TOK.note_off_id(60), TOK.note_on_id(64)]
        + [TOK.shift_id(100)] * 5
    )


def test_decode_with_endings_says_how_each_note_ended():
    seq = np.array([TOK.bos_id, TOK.note_on_id(60), TOK.note_on_id(67), TOK.shift_id(10), TOK.note_on_id(60),
                    TOK.shift_id(10), TOK.note_off_id(67), TOK.shift_id(5)])
    notes, endings = TOK.decode(seq, with_endings=True)
    assert np.array_equal(notes, TOK.decode(seq))
    # sorted by (start, pitch): C4 0-0.1 (struck again), G4 0-0.2 (NOTE_OFF), C4 0.1-0.25 (left sounding)
    assert list(endings) == ["restrike", "off", "end"]
    assert hanging_fraction(endings) == pytest.approx(1 / 3)


def test_piece_metrics_of_a_hand_made_piece():
    pieces, notes = piece_metrics([_hanging_piece()], TOK)
    assert pieces.iloc[0].to_dict() == {"piece": 0, "events": 9, "notes": 2, "seconds": pytest.approx(5.5),
                                        "hanging": 1, "long": 1}
    assert notes["duration"].tolist() == pytest.approx([0.5, 5.0])
    assert list(notes["ending"]) == ["off", "end"]
    assert long_fraction(notes["duration"]) == 0.5 and long_fraction(np.array([4.0, 4.01])) == 0.5
    assert math.isnan(hanging_fraction(np.array([])))


def test_histograms_and_js_divergence_by_hand():
    assert duration_histogram([0.5, 5.0, 0.01]).sum() == 3
    h = duration_histogram([0.5, 5.0])
    assert h[DURATION_EDGES.index(0.5)] == 1 and h[DURATION_EDGES.index(4.0)] == 1
    assert pitch_class_counts([60, 72, 64]).tolist() == [2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert js_divergence([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    # p = (1, 0), q = (1/2, 1/2), m = (3/4, 1/4): JS = (KL(p||m) + KL(q||m)) / 2 in bits
    expected = 0.5 * (math.log2(4 / 3) + 0.5 * math.log2(2 / 3) + 0.5 * math.log2(2))
    assert js_divergence([1, 0], [1, 1]) == pytest.approx(expected)
    with pytest.raises(ValueError, match="shapes"):
        js_divergence([1, 0], [1, 0, 0])


def test_quality_table_of_known_pieces():
    corpus_notes = np.array([[60, 0.0, 0.5, 80], [64, 0.5, 1.0, 80], [67, 1.0, 1.5, 80], [60, 1.5, 2.0, 80]])
    corpus = [TOK.encode(corpus_notes)]
    table = quality_table([_hanging_piece()], corpus, TOK).set_index("metric")
    assert table.loc["hanging notes (share)"].tolist() == [0.5, 0.0]
    assert table.loc["notes > 4 s (share)"].tolist() == [0.5, 0.0]
    assert table.loc["notes per piece (mean)"].tolist() == [2, 4]
    assert table.loc["seconds per piece (mean)"].tolist() == pytest.approx([5.5, 2.0])
    assert table.loc["note seconds q50"].tolist() == pytest.approx([2.75, 0.5])
    # durations: piece one 0.5 s and one 5 s, corpus four 0.5 s -> p = (1/2, 1/2), q = (1, 0) on two bins
    expected = 0.5 * (math.log2(4 / 3) + 0.5 * math.log2(2 / 3) + 0.5 * math.log2(2))
    assert table.loc["duration JS divergence vs corpus", "pieces"] == pytest.approx(expected)
    # pitch classes: piece C, E; corpus C, E, G, C -> (1/2, 1/2, 0) vs (1/2, 1/4, 1/4)
    p, q = np.array([0.5, 0.5, 0]), np.array([0.5, 0.25, 0.25])
    m = (p + q) / 2
    kl = lambda a, b: sum(x * math.log2(x / y) for x, y in zip(a, b) if x > 0)  # noqa: E731
    assert table.loc["pitch-class JS divergence vs corpus", "pieces"] == pytest.approx(0.5 * (kl(p, m) + kl(q, m)))


def test_log_likelihood_per_event_matches_the_model_sum_within_and_across_windows():
    from attribution.model import ModelConfig, MusicTransformer, sequence_log_likelihood

    torch.manual_seed(0)
    model = MusicTransformer(ModelConfig(block_size=8, n_layer=1, n_head=2, d_model=16))
    short = np.array([TOK.bos_id, 60, 300, 188, 61, 301, 189])
    whole = sequence_log_likelihood(model, torch.as_tensor(short[None])).item()
    assert log_likelihood_per_event(model, [short], TOK.pad_id) == pytest.approx(whole / 6, rel=1e-5)
    long = np.concatenate([short, short[1:], short[1:]])  # 19 tokens: windows of 9 with stride 8
    parts = [long[0:9], long[8:17], long[16:19]]
    total = sum(sequence_log_likelihood(model, torch.as_tensor(w[None])).item() for w in parts)
    assert log_likelihood_per_event(model, [long], TOK.pad_id) == pytest.approx(total / 18, rel=1e-5)


def test_corpus_sequences_reassemble_the_training_pieces(tmp_path):
    seqs = [np.array([TOK.bos_id, *range(60, 60 + k), TOK.eos_id]) for k in (3, 17, 30)]
    w = make_windows(seqs, block_size=8, pad_id=TOK.pad_id)
    np.savez(tmp_path / "windows.npz", train_tokens=w.tokens, train_piece=w.piece, val_tokens=w.tokens[:0],
             val_piece=w.piece[:0], pad_id=TOK.pad_id)
    back = corpus_sequences(tmp_path / "windows.npz")
    assert len(back) == 3 and all(np.array_equal(a, b) for a, b in zip(back, seqs))
