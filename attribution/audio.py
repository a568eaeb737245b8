"""Audio: rendering notes to a small compressed file with FluidSynth and a General MIDI soundfont.

:class:`Synthesiser` is the FluidSynth program and a soundfont; :func:`find_synthesiser` looks both up (the
``fluidsynth`` program on ``PATH`` and Debian's ``fluid-soundfont-gm`` at
``/usr/share/sounds/sf2/FluidR3_GM.sf2``) and raises :class:`AudioUnavailable` saying what is missing and
how to install it. Callers that can do without sound (the Content ID pages) catch it and say so.

FluidSynth is run as a program rather than through a Python binding: Debian ships the program and the
soundfont as packages, while the bindings (pyfluidsynth) need the same shared library and add nothing here.
The file is Ogg Vorbis written by FluidSynth itself (libsndfile), at 22.05 kHz: about 10 kB per second of
music, playable by every browser's ``<audio>`` element.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AttributionError

__all__ = ["AudioUnavailable", "Synthesiser", "find_synthesiser", "SOUNDFONTS"]

#: Where Debian's General MIDI soundfonts live, in order of preference (``fluid-soundfont-gm`` first).
SOUNDFONTS = (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), Path("/usr/share/sounds/sf2/default-GM.sf2"))
INSTALL_HINT = "install them with `apt-get install fluidsynth fluid-soundfont-gm` (or `make setup` as root)"


class AudioUnavailable(AttributionError):
    """The synthesiser or the soundfont is missing, so no audio can be rendered."""


@dataclass(frozen=True)
class Synthesiser:
    """FluidSynth and a soundfont; :meth:`render` turns a MIDI file or a notes array into Ogg Vorbis."""

    program: Path
    soundfont: Path
    sample_rate: int = 22050
    gain: float = 0.6  # FluidSynth's default 0.2 is quiet next to other audio on a page
    timeout_s: float = 120.0

    def render(self, source: str | Path | np.ndarray, out: str | Path) -> Path:
        """Render a MIDI file (path) or a notes array to ``out`` (Ogg Vorbis); returns ``out``.

        Raises:
            AudioUnavailable: FluidSynth failed or wrote nothing (its message is included).
        """
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="royaltysim-audio-") as tmp:
            if isinstance(source, np.ndarray):
                from .midi import write_midi

                midi = Path(tmp) / "notes.mid"
                write_midi(source, midi)
            else:
                midi = Path(source)
            partial = Path(tmp) / "audio.ogg"  # moved into place only once complete
            cmd = [
                str(self.program), "-n", "-i", "-q", "-T", "oga", "-r", str(self.sample_rate), "-g", str(self.gain),
                "-F", str(partial), str(self.soundfont), str(midi),
            ]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise AudioUnavailable(f"FluidSynth could not render {midi.name}: {exc}") from None
            unread = "not a SoundFont or MIDI file" in done.stderr  # FluidSynth still exits 0 and writes silence
            if done.returncode != 0 or unread or not partial.is_file() or partial.stat().st_size == 0:
                detail = (done.stderr or done.stdout or "").strip().splitlines()[-3:]
                raise AudioUnavailable(
                    f"FluidSynth failed on {midi.name} (exit {done.returncode}): {' '.join(detail) or 'no output file'}"
                )
            shutil.move(str(partial), out)
        return out


def find_synthesiser(soundfont: str | Path | None = None) -> Synthesiser:
    """The FluidSynth program on ``PATH`` and a General MIDI soundfont (``soundfont`` or Debian's).

    Raises:
        AudioUnavailable: naming what is missing and the packages that provide it.
    """
    program = shutil.which("fluidsynth")
    if soundfont is not None:
        fonts = [Path(soundfont)]
    else:
        fonts = list(SOUNDFONTS)
    font = next((f for f in fonts if f.is_file()), None)
    missing = []
    if program is None:
        missing.append("the `fluidsynth` program is not on PATH")
    if font is None:
        missing.append(f"no General MIDI soundfont at {' or '.join(str(f) for f in fonts)}")
    if missing:
        raise AudioUnavailable(f"no audio can be rendered: {'; '.join(missing)}; {INSTALL_HINT}")
    # FluidSynth renders silence, and exits 0, from a file that is not a soundfont: check its RIFF/sfbk header.
    with open(font, "rb") as fh:
        head = fh.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise AudioUnavailable(f"{font} is not a SoundFont 2 file (no RIFF sfbk header); {INSTALL_HINT}")
    return Synthesiser(program=Path(program), soundfont=font.resolve())
