"""Content ID pages: one HTML page per piece (where it came from, seen and heard) and an index per run.

* :func:`write_piece_page` -- a page for one generated output or scored piece (:mod:`attribution.content_id`
  gathers the numbers): its piano roll with each passage coloured by the creator it draws on most and a
  legend with shares, the top influencing training pieces with a piano-roll snippet of their best-matching
  window, similarity and causal attribution side by side with hidden influencers marked, and audio.
* :func:`write_index_page` -- every piece of the run with its top creators, linking to the pages.
* :func:`write_pages` -- both, for all pieces or some, sharing the rendered audio.
* :func:`piano_roll` -- the geometry of an inline-SVG piano roll (drawn by the template).

Audio is rendered with FluidSynth (:mod:`attribution.audio`) into ``OUT/audio/``; when the synthesiser or
soundfont is missing the pages are still written, without ``<audio>``, and say why. Pages are plain files:
open them from disk, no server. The page's small script moves a playhead over the piano roll while the
audio plays and seeks to a passage when it is clicked; the page reads fully without it.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import audio as _audio
from .content_id import (
    HIDDEN_RULE,
    MATCH_RULE,
    TRAK,
    ContentIdRun,
    Influence,
    Piece,
    influences,
    note_passages,
    passage_leaders,
    token_clock,
)
from .midi import write_midi
from .table import is_similarity_method
from .tokenize import pitch_name

__all__ = ["ContentIdPages", "Roll", "piano_roll", "write_index_page", "write_pages", "write_piece_page", "PALETTE"]

#: Colours of the creators a page names (Okabe-Ito first, readable by colour-blind readers).
PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#8C6D31", "#7F3C8D", "#66A61E", "#1F3A93",
)
OTHER_COLOUR = "#9a9a9a"  # creators beyond the palette
NONE_COLOUR = "#d9d9d9"  # a passage no creator has a positive score for
TEMPLATE = "content_id_template.html"
INDEX_TEMPLATE = "content_id_index_template.html"

_SIM_NAMES = {
    "sim_pitch_hist": "pitch-class mix",
    "sim_interval_ngram": "melodic patterns",
    "sim_embedding": "model embedding",
}


@dataclass
class Roll:
    """An inline-SVG piano roll: time runs left to right (``px_per_s``), pitch bottom to top."""

    roll_id: str
    width: float
    height: float
    x0: float  # left margin (pitch labels)
    px_per_s: float
    seconds: float
    notes: list[dict] = field(default_factory=list)  # x, y, w, h, fill, title, key (legend entry)
    bands: list[dict] = field(default_factory=list)  # x, w, fill, label, title, start, key
    pitch_lines: list[dict] = field(default_factory=list)  # y, label
    time_ticks: list[dict] = field(default_factory=list)  # x, label


def _tick_step(seconds: float, max_ticks: int) -> float:
    for step in (0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120):
        if seconds / step <= max_ticks:
            return step
    return 300.0


def piano_roll(
    roll_id: str, notes: np.ndarray, fills: list[str], *, width: float = 960, max_height: float = 320,
    titles: list[str] | None = None, keys: list[str] | None = None, bands: list[dict] | None = None, seconds: float | None = None,
) -> Roll:
    """The geometry of a piano roll of ``notes`` (pitch, start, end, velocity), note ``i`` filled ``fills[i]``.

    ``bands`` are time spans drawn behind the notes (``start``, ``end`` in seconds, ``fill``, ``label``,
    ``title``); ``seconds`` is the length drawn (default: the last note end).
    """
    x0, top, bottom = 38.0, 16.0, 18.0
    end = float(seconds if seconds is not None else (notes[:, 2].max() if len(notes) else 1.0))
    end = max(end, 0.5)
    low = int(notes[:, 0].min()) - 1 if len(notes) else 59
    high = int(notes[:, 0].max()) + 1 if len(notes) else 72
    if high - low < 12:  # at least an octave, centred on the notes
        pad = (12 - (high - low)) // 2
        low, high = low - pad, low - pad + 12
    row = float(np.clip(max_height / (high - low + 1), 3.0, 9.0))
    height = top + row * (high - low + 1) + bottom
    px = (width - x0 - 4) / end

    def y_of(pitch: float) -> float:
        return top + (high - pitch) * row

    roll = Roll(roll_id, width, round(height, 1), x0, px, end)
    for i, (pitch, start, stop, _) in enumerate(notes):
        roll.notes.append({
            "x": round(x0 + start * px, 2), "y": round(y_of(pitch), 2), "w": round(max((stop - start) * px, 1.5), 2),
            "h": round(max(row - 0.6, 1.5), 2), "fill": fills[i], "key": keys[i] if keys else "",
            "title": titles[i] if titles else f"{pitch_name(int(pitch))}, {start:.2f}-{stop:.2f} s",
        })
    for band in bands or []:
        roll.bands.append(band | {
            "x": round(x0 + band["start"] * px, 2), "w": round(max((band["end"] - band["start"]) * px, 3.0), 2),  # a chord-only passage stays visible
            "y": top, "h": round(row * (high - low + 1), 2),
        })
    for pitch in range(low, high + 1):
        if pitch % 12 == 0:
            roll.pitch_lines.append({"y": round(y_of(pitch) + row / 2, 2), "label": pitch_name(pitch)})
    step = _tick_step(end, max_ticks=max(3, int(width / 90)))
    for k in range(int(end / step) + 1):
        roll.time_ticks.append({"x": round(x0 + k * step * px, 2), "label": f"{k * step:g} s"})
    return roll


def _slug(piece_id: str) -> str:
    """A file name for a piece id (ids are slugs already; anything else is replaced)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", piece_id) or "piece"


def _pct(x: float) -> str:
    return f"{x:.0%}" if x >= 0.01 or x == 0 else "<1%"


class ContentIdPages:
    """Writes Content ID pages of one run into one folder, rendering each audio file once.

    Args:
        run: the run (a folder or a loaded :class:`ContentIdRun`).
        out_dir: where the pages go (``audio/`` and ``midi/`` beside them).
        top: influencing pieces shown per page.
        audio: render audio if FluidSynth and a soundfont are found (False: never; the page says so).
    """

    def __init__(self, run: ContentIdRun | str | Path, out_dir: str | Path, top: int = 8, audio: bool = True) -> None:
        self.run = run if isinstance(run, ContentIdRun) else ContentIdRun(run)
        self.out_dir = Path(out_dir)
        self.top = top
        self.synth: _audio.Synthesiser | None = None
        if not audio:
            self.audio_note = "Audio was switched off when these pages were written (--no-audio)."
        else:
            try:
                self.synth = _audio.find_synthesiser()
                self.audio_note = ""
            except _audio.AudioUnavailable as exc:
                self.audio_note = str(exc)
        self._rendered: dict[str, str] = {}  # content hash -> audio path relative to out_dir

    # ----------------------------------------------------------------- files
    def _env(self):
        import jinja2

        loader = jinja2.FileSystemLoader(Path(__file__).parent)
        return jinja2.Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True)

    def _audio_file(self, name: str, notes: np.ndarray) -> str | None:
        """Render ``notes`` to ``audio/<name>.ogg`` (once per content); its path relative to the pages, or None."""
        if self.synth is None or not len(notes):
            return None
        key = hashlib.sha256(np.ascontiguousarray(notes).tobytes()).hexdigest()[:16]
        if key not in self._rendered:
            rel = f"audio/{_slug(name)}.ogg"
            try:
                self.synth.render(notes, self.out_dir / rel)
            except _audio.AudioUnavailable as exc:  # one failed file: the page says so and keeps going
                self.audio_note = str(exc)
                return None
            self._rendered[key] = rel
        return self._rendered[key]

    # ----------------------------------------------------------------- a piece
    def piece_page(self, piece_id: str) -> Path:
        """Write ``OUT/<piece_id>.html`` (with its audio and MIDI); returns the page's path."""
        run, piece = self.run, self.run.piece(piece_id)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        shares = piece.table.creator_shares(TRAK).iloc[0].sort_values(ascending=False, kind="stable")
        leads = passage_leaders(piece)
        # Colours go first to the creators who lead passages (most passages first), then by share, so the roll
        # is coloured wherever it can be; the legend lists them by share.
        led = Counter(lead.creator for lead in leads if lead.creator)
        positive = [c for c in shares.index if shares[c] > 0]
        named = sorted(led, key=lambda c: (-led[c], -float(shares.get(c, 0.0)), c))
        named += [c for c in positive if c not in led]
        colour = {c: PALETTE[i] if i < len(PALETTE) else OTHER_COLOUR for i, c in enumerate(named)}
        key = {c: c if i < len(PALETTE) else "other creators" for i, c in enumerate(named)}  # legend entry of each

        bounds = [(lead.first_event, lead.end_event) for lead in leads]
        where = note_passages(piece.tokens, piece.notes, run.tokenizer, bounds)
        clock = token_clock(piece.tokens, run.tokenizer)
        seconds = float(max(clock[-1], piece.notes[:, 2].max() if len(piece.notes) else 0.0))
        bands, fills, titles, keys = [], [], [], []
        for lead in leads:
            start, end = clock[min(lead.first_event + 1, len(clock) - 1)], clock[min(lead.end_event + 1, len(clock) - 1)]
            who = f"draws most on {lead.creator} ({_pct(lead.share)} of its positive attribution)" if lead.creator \
                else "no creator has a positive causal score"
            top_title = run.build.corpus.set_index("train_id")["title"].get(lead.top_piece, "") if lead.top_piece else ""
            bands.append({
                "start": float(start), "end": float(end), "fill": colour.get(lead.creator, NONE_COLOUR),
                "key": key.get(lead.creator, "none"), "label": str(lead.passage + 1),
                "title": f"passage {lead.passage + 1} (events {lead.first_event}-{lead.end_event - 1}, "
                f"{start:.1f}-{end:.1f} s): {who}" + (f"; top piece: {top_title}" if top_title else ""),
            })
        for i, (pitch, start, stop, _) in enumerate(piece.notes):
            lead = leads[where[i]] if where[i] >= 0 else None
            fills.append(colour.get(lead.creator, NONE_COLOUR) if lead else NONE_COLOUR)
            keys.append(key.get(lead.creator, "none") if lead else "")
            titles.append(f"{pitch_name(int(pitch))}, {start:.2f}-{stop:.2f} s"
                          + (f", passage {lead.passage + 1}: {lead.creator or 'no positive score'}" if lead else ""))
        roll = piano_roll("roll-piece", piece.notes, fills, titles=titles, keys=keys, bands=bands, seconds=seconds)

        legend = []
        coloured = sorted(named[: len(PALETTE)], key=lambda c: (-float(shares.get(c, 0.0)), c))
        for c in coloured:
            legend.append({"colour": colour[c], "key": c, "creator": c, "share": _pct(float(shares.get(c, 0.0))),
                           "passages": led[c]})
        rest = named[len(PALETTE):]
        if rest:
            legend.append({"colour": OTHER_COLOUR, "key": "other creators", "creator": f"{len(rest)} other creators",
                           "share": _pct(float(shares[rest].sum())), "passages": sum(led[c] for c in rest)})
        unled = sum(1 for lead in leads if lead.creator is None)
        if unled:
            legend.append({"colour": NONE_COLOUR, "key": "none", "creator": "no creator with a positive score", "share": "", "passages": unled})

        infs = influences(run, piece, top=self.top)
        cards = [self._influence_card(k, inf, colour, leads, clock) for k, inf in enumerate(infs)]
        sim_methods = [m for m in piece.table.methods if is_similarity_method(m)]
        context = {
            "run": run.run_dir.name, "run_path": str(run.run_dir), "piece": piece, "kind": piece.kind,
            "notes": len(piece.notes), "events": int(len(piece.tokens) - 1), "seconds": seconds,
            "passage_events": (leads[0].end_event - leads[0].first_event) if leads else None,
            "roll": roll, "legend": legend, "influences": cards, "hidden_count": sum(c["hidden"] for c in cards),
            "sim_methods": [{"name": m, "label": _SIM_NAMES.get(m, m)} for m in sim_methods],
            "creators": self._creator_rows(piece, shares, colour, sim_methods),
            "similar": self._most_similar(piece, sim_methods),
            "hidden_rule": HIDDEN_RULE, "match_rule": MATCH_RULE.format(window=run.block_size),
            "audio": self._audio_file(piece.piece_id, piece.notes), "audio_note": self.audio_note,
            "midi": self._midi_file(piece), "provenance": self._provenance(piece),
        }
        html = self._env().get_template(TEMPLATE).render(**context)
        page = self.out_dir / f"{_slug(piece_id)}.html"
        page.write_text(html)
        return page

    def _midi_file(self, piece: Piece) -> str | None:
        if not len(piece.notes):
            return None
        rel = f"midi/{_slug(piece.piece_id)}.mid"
        write_midi(piece.notes, self.out_dir / rel)
        return rel

    def _influence_card(self, k: int, inf: Influence, colour: dict, leads: list, clock: np.ndarray) -> dict:
        card = {
            "rank": k + 1, "inf": inf, "colour": colour.get(inf.creator, OTHER_COLOUR), "hidden": inf.hidden,
            "share": _pct(inf.share), "roll": None, "audio": None, "passage": None,
            "sims": [{"value": f"{v:.2f}", "pct": f"{p:.0%}"} for v, p in inf.similarity.values()],
        }
        if inf.passage is not None:
            lead = next((lead for lead in leads if lead.passage == inf.passage), None)
            if lead is not None:
                start = clock[min(lead.first_event + 1, len(clock) - 1)]
                card["passage"] = {"number": inf.passage + 1, "start": f"{start:.1f}"}
        if inf.window is not None:
            notes = self.run.window_notes(inf.window)
            card["roll"] = piano_roll(f"roll-w{inf.window}", notes, [card["colour"]] * len(notes), width=440, max_height=110)
            card["audio"] = self._audio_file(f"window-{inf.window}", notes)
            card["window"] = inf.window
        return card

    def _creator_rows(self, piece: Piece, shares, colour: dict, sim_methods: list[str]) -> list[dict]:
        sims = {m: piece.table.creator_shares(m, how="max").iloc[0] for m in sim_methods}
        rows = []
        for c in list(shares.index[:10]):
            if shares[c] <= 0 and not any(s[c] > 0 for s in sims.values()):
                continue
            rows.append({"creator": c, "colour": colour.get(c, OTHER_COLOUR), "trak": _pct(float(shares[c])),
                         "sims": [_pct(float(sims[m][c])) for m in sim_methods]})
        return rows

    def _most_similar(self, piece: Piece, sim_methods: list[str], n: int = 3) -> list[dict]:
        """For each similarity measure, its ``n`` most similar pieces and where the causal score ranks them."""
        trak = piece.table.pivot(TRAK).iloc[0].fillna(0.0)
        rank = trak.rank(ascending=False, method="min")
        title = piece.table.corpus.set_index("train_id")
        out = []
        for m in sim_methods:
            sim = piece.table.pivot(m).iloc[0].fillna(0.0).sort_values(ascending=False, kind="stable")
            out.append({"label": _SIM_NAMES.get(m, m), "name": m, "rows": [
                {"title": title.loc[t, "title"], "creator": title.loc[t, "creator"], "sim": f"{sim[t]:.2f}",
                 "rank": int(rank[t]), "trak": f"{trak[t]:.3g}"} for t in sim.index[:n]]})
        return out

    def _provenance(self, piece: Piece) -> list[tuple[str, str]]:
        keys = ("source_file", "file_sha256", "scored_at", "windows", "seed", "temperature", "top_k")
        return [(k, str(piece.info[k])) for k in keys if k in piece.info and piece.info[k] == piece.info[k]]

    # ----------------------------------------------------------------- the index
    def index_page(self) -> Path:
        """Write ``OUT/index.html``: every piece of the run with its top creators, linking to the pages."""
        run = self.run
        self.out_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        for source in (run.build, run.scored):
            if source is None:
                continue
            shares = source.creator_shares(TRAK)
            info = source.outputs.set_index("output_id")
            for pid in source.output_ids:
                if source is run.scored and run.kind(pid) != "scored":
                    continue
                s = shares.loc[pid].sort_values(ascending=False, kind="stable")
                s = s[s > 0]
                tops = [{"creator": c, "share": _pct(float(s[c])), "width": round(float(s[c]) * 160, 1),
                         "colour": PALETTE[i]} for i, c in enumerate(s.index[:3])]
                rows.append({
                    "id": pid, "href": f"{_slug(pid)}.html", "kind": "generated" if source is run.build else "scored",
                    "seconds": f"{float(info.loc[pid, 'seconds']):.1f}", "events": int(info.loc[pid, "events"]),
                    "tops": tops, "rest": round(float(s.iloc[3:].sum()) * 160, 1), "rest_share": _pct(float(s.iloc[3:].sum())),
                })
        corpus = run.build.corpus
        html = self._env().get_template(INDEX_TEMPLATE).render(
            run=run.run_dir.name, run_path=str(run.run_dir), rows=rows, pieces=len(corpus),
            creators=corpus["creator"].nunique(), other_colour=OTHER_COLOUR,
        )
        page = self.out_dir / "index.html"
        page.write_text(html)
        return page


def write_piece_page(run_dir: str | Path, piece_id: str, out_dir: str | Path, top: int = 8, audio: bool = True) -> Path:
    """The Content ID page of one generated output or scored piece of ``run_dir``, written into ``out_dir``."""
    return ContentIdPages(run_dir, out_dir, top=top, audio=audio).piece_page(piece_id)


def write_index_page(run_dir: str | Path, out_dir: str | Path) -> Path:
    """``out_dir/index.html``: every piece of ``run_dir`` with its top creators, linking to ``<id>.html``."""
    return ContentIdPages(run_dir, out_dir, audio=False).index_page()


def write_pages(
    run_dir: str | Path, out_dir: str | Path, piece_ids: list[str] | None = None, top: int = 8, audio: bool = True,
) -> tuple[Path, list[Path], str]:
    """The index and the pages of ``piece_ids`` (default: every piece); returns (index, pages, audio note)."""
    writer = ContentIdPages(run_dir, out_dir, top=top, audio=audio)
    ids = piece_ids or writer.run.piece_ids
    for pid in ids:
        writer.run.kind(pid)  # unknown ids are refused before anything is written
    pages = [writer.piece_page(pid) for pid in ids]
    return writer.index_page(), pages, writer.audio_note
