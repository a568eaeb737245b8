import numpy as np

from attribution.similarity import (
    interval_ngram_similarity,
    pitch_class_histogram,
    pitch_hist_similarity,
    skyline_intervals,
)


def notes(pitches, step=0.5, chord_below=False):
    rows = []
    for i, p in enumerate(pitches):
        rows.append([p, i * step, (i + 1) * step, 80])
        if chord_below:
            rows.append([p - 12, i * step, (i + 1) * step, 80])
    return np.array(rows, dtype=float)


def test_pitch_class_histogram_weights_by_duration():
    n = np.array([[60, 0, 1, 80], [67, 1, 4, 80], [72, 4, 5, 80]], dtype=float)  # C 1s, G 3s, C 1s
    h = pitch_class_histogram(n)
    assert np.isclose(h[0], 2 / 5) and np.isclose(h[7], 3 / 5) and np.isclose(h.sum(), 1)


def test_skyline_takes_the_top_voice():
    assert list(skyline_intervals(notes([60, 62, 64, 60], chord_below=True))) == [2, 2, -4]


def test_transposed_copy_is_fully_contained_but_differs_in_pitch_classes():
    melody = [60, 62, 64, 65, 67, 65, 64, 62, 60]
    original = notes(melody)
    transposed = notes([p + 1 for p in melody])
    unrelated = notes([60, 72, 61, 70, 59, 75, 58, 77, 57])
    ngram = interval_ngram_similarity([transposed], [original, unrelated])
    assert np.isclose(ngram[0, 0], 1.0) and ngram[0, 1] == 0.0
    ph = pitch_hist_similarity([original], [original, transposed])
    assert np.isclose(ph[0, 0], 1.0) and ph[0, 1] < 0.5


def test_empty_output_has_zero_similarity():
    assert interval_ngram_similarity([np.zeros((0, 4))], [notes([60, 62, 64, 65])])[0, 0] == 0.0
