"""The sampler: default sampling unchanged, prompts kept verbatim, and the note-closing decoder."""

import hashlib

import numpy as np
import pytest
import torch

from attribution.generate import GenerationConfig, NoteCloser, generate_outputs, sample
from attribution.model import ModelConfig, MusicTransformer
from attribution.tokenize import EventTokenizer

TOK = EventTokenizer()
BANNED = [TOK.pad_id, TOK.bos_id, TOK.eos_id]

# sha256 of the (3, 33) tokens that `sample` gave at commit 8076cca (before prompts and decoding rules) for
# _model() and the call in test_default_sampling_is_bit_identical_to_before.
BEFORE = "a1e73f5f1eb2845e7f88b06d424ffffcec29913c1d7937d61e2291c64e7431e8"


def _model(block_size: int = 32) -> MusicTransformer:
    """An untrained, seeded model: its samples are close to uniform, so notes hang and run long."""
    torch.manual_seed(0)
    return MusicTransformer(ModelConfig(vocab_size=391, block_size=block_size, n_layer=2, n_head=2, d_model=32, pad_id=388))


def test_default_sampling_is_bit_identical_to_before():
    tokens = sample(_model(), 3, 33, TOK.bos_id, temperature=1.0, top_k=20, seed=5, banned=BANNED)
    assert hashlib.sha256(tokens.astype(np.int64).tobytes()).hexdigest() == BEFORE


def test_generate_outputs_with_default_config_samples_plainly(tmp_path):
    cfg = GenerationConfig(n_outputs=3, length=33, top_k=20, seed=5)
    assert cfg.note_closer(TOK) is None
    rows = generate_outputs(_model(), TOK, cfg, tmp_path)
    saved = np.stack([np.load(tmp_path / f"{r['output_id']}.npy") for r in rows])
    assert hashlib.sha256(saved.astype(np.int64).tobytes()).hexdigest() == BEFORE
    assert "forced_events" not in rows[0]  # the build's outputs.parquet keeps its columns


def test_prompt_is_kept_verbatim_and_sampling_is_seeded():
    prompt = TOK.encode(np.array([[60, 0.0, 0.3, 80], [64, 0.3, 0.6, 90]]))[:-1]
    a = sample(_model(), 2, 30, TOK.bos_id, top_k=20, seed=1, banned=BANNED, prompt=prompt)
    b = sample(_model(), 2, 30, TOK.bos_id, top_k=20, seed=1, banned=BANNED, prompt=prompt)
    c = sample(_model(), 2, 30, TOK.bos_id, top_k=20, seed=2, banned=BANNED, prompt=prompt)
    assert a.shape == (2, 30)
    assert (a[:, : len(prompt)] == prompt).all()
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_prompt_must_start_with_bos_and_leave_room():
    with pytest.raises(ValueError, match="starting with BOS"):
        sample(_model(), 1, 10, TOK.bos_id, prompt=np.array([60, 61]))
    with pytest.raises(ValueError, match="nothing to generate"):
        sample(_model(), 1, 3, TOK.bos_id, prompt=np.array([TOK.bos_id, 60, 61]))


def _endings(tokens):
    return [TOK.decode(seq, with_endings=True) for seq in tokens]


def test_note_closer_closes_every_note_and_caps_note_length():
    limit = 0.3
    plain = sample(_model(), 8, 33, TOK.bos_id, top_k=None, seed=3, banned=BANNED)
    rule = NoteCloser(TOK, max_note_seconds=limit, close_at_end=True)
    closed = sample(_model(), 8, 33, TOK.bos_id, top_k=None, seed=3, banned=BANNED, rule=rule)
    # the untrained model leaves notes sounding and long without the rule: the test can fail
    plain_notes = _endings(plain)
    assert sum((e == "end").sum() for _, e in plain_notes) > 0
    assert max((n[:, 2] - n[:, 1]).max() for n, _ in plain_notes if len(n)) > limit
    for notes, endings in _endings(closed):
        assert "end" not in set(endings)
        assert (notes[:, 2] - notes[:, 1] <= limit + 1e-9).all()
    # forced positions hold note-offs (or, for a note struck on that step, the longest shift within the
    # limit), and the rule did force some
    assert rule.forced.sum() > 0 and rule.forced.shape == closed.shape
    forced = closed[rule.forced]
    is_off = (forced >= TOK.note_off_id(0)) & (forced <= TOK.note_off_id(127))
    assert is_off.mean() > 0.5 and (is_off | (forced == TOK.shift_id(round(limit / TOK.time_step)))).all()
    assert (rule.constrained | ~rule.forced).all()


def test_note_closer_only_at_end_and_from_a_prompt():
    prompt = TOK.encode(np.array([[60, 0.0, 0.3, 80]]))[:-1]
    rule = NoteCloser(TOK, close_at_end=True)
    tokens = sample(_model(), 4, 20, TOK.bos_id, top_k=None, seed=0, banned=BANNED, prompt=prompt, rule=rule)
    assert (tokens[:, : len(prompt)] == prompt).all()
    assert not rule.forced[:, : len(prompt)].any()
    assert all("end" not in set(e) for _, e in _endings(tokens))


def _closed_without_time(tokens, forced, min_steps=1):
    """Forced NOTE_OFFs whose note sounded fewer than ``min_steps`` grid steps (by default: zero-length notes)."""
    off0, off127 = TOK.note_off_id(0), TOK.note_off_id(127)
    shifts = (TOK.shift_id(1), TOK.shift_id(TOK.max_shift_steps))
    bad = 0
    for seq, f in zip(tokens, forced):
        now, started = 0, {}
        for j, t in enumerate(seq.tolist()):
            if t < 128:
                started[t] = now
            elif off0 <= t <= off127:
                begun = started.pop(t - 128, None)
                bad += bool(f[j]) and begun is not None and now - begun < min_steps
            elif shifts[0] <= t <= shifts[1]:
                now += t - shifts[0] + 1
    return bad


@pytest.mark.parametrize("limit", [None, 0.3])
def test_note_closer_never_closes_a_note_on_the_step_it_was_struck(limit):
    rule = NoteCloser(TOK, max_note_seconds=limit, close_at_end=True)
    tokens = sample(_model(), 64, 33, TOK.bos_id, top_k=None, seed=7, banned=BANNED, rule=rule)
    assert rule.forced[:, -3:].sum() > 20  # the end rule acted often enough for the check to mean something
    assert _closed_without_time(tokens, rule.forced) == 0
    assert all("end" not in set(e) for _, e in _endings(tokens))
    # without a length limit the end rule's closing never clicks: a note it closes sounded at least 0.1 s (with a
    # limit, the oldest note's limit can leave less room, and the limit wins)
    end_forced = rule.forced & (np.arange(tokens.shape[1]) >= tokens.shape[1] - 6)[None, :]
    if limit is None:
        assert _closed_without_time(tokens, end_forced, min_steps=10) == 0


def test_note_closer_rejects_a_limit_below_one_step():
    with pytest.raises(ValueError, match="at least one time step"):
        NoteCloser(TOK, max_note_seconds=0.001)
    with pytest.raises(ValueError, match="at least one time step"):
        NoteCloser(TOK, max_note_seconds=float("nan"))


def test_generation_config_with_rule_records_forced_events(tmp_path):
    cfg = GenerationConfig(n_outputs=2, length=33, top_k=None, seed=1, max_note_seconds=0.2, close_notes_at_end=True)
    rows = generate_outputs(_model(), TOK, cfg, tmp_path)
    assert all(r["forced_events"] >= 0 for r in rows) and sum(r["forced_events"] for r in rows) > 0
    for r in rows:
        _, endings = TOK.decode(np.load(tmp_path / f"{r['output_id']}.npy"), with_endings=True)
        assert "end" not in set(endings)
