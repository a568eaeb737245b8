"""The vectorised listeners' building blocks against the plain computations they stand in for.

Each is an exact shortcut, so each is compared number for number: the table-guided sampler with a
binary search per draw, the stream matrix built by per-row sorts with scipy's COO-to-CSR assembly,
the row and column sums with scipy's, and a creator's cached catalogue appeal with its qualities.
Consumer welfare, one sparse product for all listeners, is compared with a loop over listeners to
float rounding.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np
import pytest
import scipy.sparse as sp

from royaltysim.agents import (
    Consumers,
    Creator,
    Listening,
    _column_sums,
    _guide,
    _row_sums,
    _sample_grouped,
    cumulative_probabilities,
)


def _binary_search(cum: np.ndarray, group: np.ndarray, u: np.ndarray) -> np.ndarray:
    """What the sampler must return: per draw, searchsorted on its group's row (capped at m - 1)."""
    rows = np.broadcast_to(group.reshape(group.shape + (1,) * (u.ndim - 1)), u.shape)
    picks = [np.searchsorted(cum[g], x, side="right") for g, x in zip(rows.ravel(), u.ravel(), strict=True)]
    return np.minimum(np.array(picks, dtype=np.intp).reshape(u.shape), cum.shape[1] - 1)


def _awkward_draws(cum: np.ndarray, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 4) uniforms: one at random, one exactly on a bin edge, one on a bucket boundary, one just below it."""
    n, m = group.size, cum.shape[1]
    n_buckets, _, _ = _guide(cum)
    below_one = np.nextafter(1.0, 0.0)
    on_edge = np.minimum(cum[group, rng.integers(0, m, n)], below_one)
    boundary = rng.integers(0, n_buckets, n) / n_buckets
    just_below = np.nextafter(rng.integers(1, n_buckets + 1, n) / n_buckets, 0.0)
    return np.stack([rng.random(n), on_edge, boundary, just_below], axis=1)


@pytest.mark.parametrize("seed", range(40))
def test_guided_sampling_equals_a_binary_search(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_groups, m, n = int(rng.integers(1, 6)), int(rng.integers(1, 80)), 300
    weights = rng.lognormal(0.0, rng.uniform(0.0, 6.0), (n_groups, m))  # up to wildly uneven
    weights[rng.random((n_groups, m)) < rng.uniform(0.0, 0.8)] = 0.0  # runs of zero-weight categories
    if seed % 5 == 0:
        weights[0] = 0.0  # an all-zero row becomes uniform
    cum = cumulative_probabilities(weights)
    group = rng.integers(0, n_groups, n)
    u = _awkward_draws(cum, group, rng)
    picks = _sample_grouped(cum, group, u)
    np.testing.assert_array_equal(picks, _binary_search(cum, group, u))
    np.testing.assert_array_equal(picks[:, 0], [bisect_right(cum[g].tolist(), x) for g, x in zip(group, u[:, 0])])


def test_guided_sampling_edge_cases() -> None:
    cum = np.cumsum([[0.0, 0.25, 0.0, 0.0, 0.75, 0.0]], axis=1)  # [0, .25, .25, .25, 1, 1]
    group = np.zeros(6, dtype=int)
    u = np.array([0.0, np.nextafter(0.25, 0.0), 0.25, 0.5, np.nextafter(1.0, 0.0), 0.999])
    # a draw on an edge belongs to the next category with weight; zero-weight categories are never picked
    np.testing.assert_array_equal(_sample_grouped(cum, group, u), [1, 1, 4, 4, 4, 4])
    one = np.ones((3, 1))  # single-category groups
    np.testing.assert_array_equal(_sample_grouped(one, np.array([0, 2, 1]), np.array([0.0, 0.5, 0.99])), [0, 0, 0])


def test_guided_sampling_keeps_the_shape_of_the_draws() -> None:
    cum = cumulative_probabilities(np.random.default_rng(1).random((3, 7)))
    group = np.array([2, 0, 1, 1])
    u = np.random.default_rng(2).random((4, 5))
    picks = _sample_grouped(cum, group, u)
    assert picks.shape == (4, 5)
    np.testing.assert_array_equal(picks, _binary_search(cum, group, u))


def test_guide_counts_entries_below_each_bucket() -> None:
    cum = cumulative_probabilities(np.random.default_rng(3).lognormal(0.0, 3.0, (4, 9)))
    n_buckets, guide, table = _guide(cum)
    assert n_buckets >= 4 * 9 and n_buckets & (n_buckets - 1) == 0
    for g in range(4):
        row = guide[g * (n_buckets + 1) : (g + 1) * (n_buckets + 1)]
        thresholds = np.arange(n_buckets + 1) / n_buckets
        np.testing.assert_array_equal(row, np.minimum((cum[g][None, :] <= thresholds[:, None]).sum(axis=1), 8))
        cells = table[g * (n_buckets + 1) : g * (n_buckets + 1) + n_buckets]
        np.testing.assert_array_equal(cells, np.where(row[1:] == row[:-1], row[:-1], -1))


@pytest.mark.parametrize("seed", range(5))
def test_stream_matrix_equals_scipys_assembly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k, n_creators = 50, 12, 9
    picks = rng.integers(0, n_creators + 1, (n, k))  # n_creators: the session streamed no creator
    picks[:3] = n_creators  # users who streamed nothing
    counts = rng.integers(0, 500, (n, k))
    streams = Consumers._stream_matrix(picks, counts, n_creators)
    human = picks < n_creators
    users = np.broadcast_to(np.arange(n)[:, None], (n, k))
    expected = sp.csr_matrix(
        (counts[human].astype(float), (users[human], picks[human])), shape=(n, n_creators)
    )
    expected.sum_duplicates()
    assert streams.has_canonical_format and streams.shape == expected.shape
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(streams, name), getattr(expected, name))
        assert getattr(streams, name).dtype == getattr(expected, name).dtype
    np.testing.assert_array_equal(_row_sums(streams), np.asarray(expected.sum(axis=1)).ravel())
    np.testing.assert_array_equal(_column_sums(streams), np.asarray(expected.sum(axis=0)).ravel())


def test_sums_of_an_empty_matrix() -> None:
    empty = sp.csr_matrix((3, 4))
    np.testing.assert_array_equal(_row_sums(empty), np.zeros(3))
    np.testing.assert_array_equal(_column_sums(empty), np.zeros(4))
    assert _row_sums(empty).dtype == _column_sums(empty).dtype == np.float64


def test_creator_appeal_follows_its_qualities() -> None:
    creator = Creator.__new__(Creator)  # only the catalogue is needed, not a model
    creator.qualities = np.array([0.5, 2.0, 1.25])
    assert creator.appeal == np.array([0.5, 2.0, 1.25]).sum() and creator.works == 3
    assert creator.mean_quality == np.array([0.5, 2.0, 1.25]).mean()
    creator.qualities = np.concatenate([creator.qualities, [3.0]])
    assert creator.appeal == 6.75 and creator.mean_quality == 6.75 / 4
    creator.qualities = np.zeros(0)
    assert creator.appeal == 0.0 and creator.mean_quality == 0.0


def test_guided_sampling_with_kept_tables_equals_building_them() -> None:
    rng = np.random.default_rng(5)
    cum = cumulative_probabilities(rng.random((3, 7)) * (rng.random((3, 7)) < 0.6))
    group, u = rng.integers(0, 3, 500), rng.random((500, 4))
    np.testing.assert_array_equal(_sample_grouped(cum, group, u, _guide(cum)), _sample_grouped(cum, group, u))


def _consumers(n: int, sessions: int, rng: np.random.Generator) -> Consumers:
    taste = rng.standard_normal((n, 3))
    adjacency = sp.random(n, n, density=0.2, format="csr", random_state=0)
    adjacency = ((adjacency + adjacency.T) > 0).astype(float).tocsr()
    return Consumers(
        fee=np.ones(n), volume=rng.integers(1, 40, n), heavy=rng.random(n) < 0.3, segment=rng.integers(0, 2, n),
        taste=taste / np.linalg.norm(taste, axis=1, keepdims=True), ai_affinity=rng.random(n) * 0.5,
        adjacency=adjacency, sessions=sessions, social_share=0.3,
    )


@pytest.mark.parametrize("seed", range(5))
def test_welfare_is_the_mean_over_listeners_of_what_each_played(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k, n_creators, n_outputs = 40, 6, 5, 3
    consumers = _consumers(n, k, rng)
    picks = rng.integers(0, n_creators + n_outputs, (n, k))
    counts = rng.integers(0, 5, (n, k)) * (rng.random((n, k)) < 0.8)  # sessions that played nothing
    counts[0] = 0  # a listener who played nothing is left out
    listening = Listening(sp.csr_matrix((n, n_creators)), np.zeros(n_outputs), np.zeros(n), picks, counts)
    creator_style, output_style = rng.standard_normal((n_creators, 3)), rng.standard_normal((n_outputs, 3))
    quality, ai_quality = rng.lognormal(0, 1, n_creators), 0.7

    style = np.vstack([creator_style, output_style])
    log_quality = np.concatenate([np.log(quality), np.full(n_outputs, np.log(ai_quality))])
    per_listener = []
    for u in range(1, n):
        played = counts[u] > 0
        if played.any():
            utility = style[picks[u, played]] @ consumers.taste[u] + log_quality[picks[u, played]]
            per_listener.append(utility @ counts[u, played] / counts[u, played].sum())
    welfare = consumers.welfare(listening, creator_style, quality, output_style, ai_quality)
    assert welfare == pytest.approx(np.mean(per_listener), rel=1e-12, abs=1e-12)
    silent = Listening(listening.streams, listening.ai_plays, listening.ai_streams, picks, np.zeros_like(counts))
    assert consumers.welfare(silent, creator_style, quality, output_style, ai_quality) == 0.0


def test_listening_follows_a_new_output_distribution() -> None:
    """The AI outputs' lookup table is kept between months, but never outlives the distribution it was built for."""
    rng = np.random.default_rng(0)
    n, k = 60, 8
    consumers = _consumers(n, k, rng)
    creator_cum = cumulative_probabilities(rng.random((4, 5)))
    active = np.ones(5, dtype=bool)
    first, second = cumulative_probabilities(rng.random((2, 3))), cumulative_probabilities(rng.random((2, 3)))
    consumers.listen(creator_cum, first, active, 1.0, np.random.default_rng(1))
    fresh = _consumers(n, k, np.random.default_rng(0))
    fresh.last_picks = consumers.last_picks.copy()
    a = consumers.listen(creator_cum, second, active, 1.0, np.random.default_rng(2))
    b = fresh.listen(creator_cum, second, active, 1.0, np.random.default_rng(2))
    assert a.ai_plays.sum() > 0
    np.testing.assert_array_equal(a.picks, b.picks)
