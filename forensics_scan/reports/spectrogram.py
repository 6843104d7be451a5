"""Small spectrograms of the most suspicious window of flagged files, for the HTML report.

The window is decoded again from the file, with the scanner's own steps
(``audio.stream_blocks`` and ``audio.iter_segments`` with the scan's hop), and drawn
as the log-Mel features the model scored (``features.log_mel``), so the picture is what
the model saw. Nothing of the audio is kept during the scan: a report of 10,000 files
would otherwise hold 10,000 feature arrays for a handful of pictures.

At most ``MAX_SPECTROGRAMS`` are drawn, for the highest-scoring flagged files; the page
says how many were left out. matplotlib is imported only when one is drawn.
"""

import base64
import io
import math
import os
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from forensics_scan.results import FAKE, OK, FileResult, ScanReport, SegmentScore

MAX_SPECTROGRAMS = 20
FIGURE_INCHES = (6.4, 1.9)
DPI = 80  # 512 x 152 pixels
PALETTE_COLOURS = 64
TIME_TOLERANCE_S = 1e-3  # segment times in a report are rounded to 6 decimals


@dataclass(frozen=True)
class Spectrogram:
    """A drawn window (``png_data_uri``) or why there is none (``note``)."""

    segment: SegmentScore
    png_data_uri: str = ""
    note: str = ""


def most_suspicious(result: FileResult) -> Optional[SegmentScore]:
    """The window with the highest score (the earliest of equal ones), or None."""
    scored = [s for s in result.segments if s.score is not None and math.isfinite(s.score)]
    return max(scored, key=lambda s: (s.score, -s.start_s), default=None)


def spectrograms_for(report: ScanReport,
                     limit: int = MAX_SPECTROGRAMS) -> Dict[int, Spectrogram]:
    """Spectrograms of the ``limit`` highest-scoring flagged files, by position in
    ``report.files``. A file that cannot be read again gets a note instead of a picture."""
    flagged = [(position, result) for position, result in enumerate(report.files)
               if result.status == OK and result.verdict == FAKE]
    flagged.sort(key=lambda item: -(item[1].score or 0.0))
    hop_s = float(report.settings.get("hop_s") or 5.0)
    max_duration_s = report.settings.get("max_duration_s")
    drawn = {}
    for position, result in flagged[:limit]:
        segment = most_suspicious(result)
        if segment is not None:
            drawn[position] = _spectrogram(result, segment, hop_s, max_duration_s)
    return drawn


def _spectrogram(result: FileResult, segment: SegmentScore, hop_s: float,
                 max_duration_s: Optional[float]) -> Spectrogram:
    from forensics_scan.audio import DecodeError

    try:
        if result.size_bytes is not None and os.path.getsize(result.path) != result.size_bytes:
            return Spectrogram(segment, note="not drawn: the file changed since the scan")
        samples = read_window(result.path, segment, hop_s, max_duration_s)
    except (OSError, DecodeError, ValueError, MemoryError) as error:
        return Spectrogram(segment, note=f"not drawn: cannot read the file again ({error})")
    if samples is None:
        return Spectrogram(segment, note="not drawn: the window is no longer in the file")
    return Spectrogram(segment, png_data_uri=render_png(samples, segment))


def read_window(path: str, segment: SegmentScore, hop_s: float,
                max_duration_s: Optional[float] = None) -> Optional[np.ndarray]:
    """The 16 kHz samples of ``segment`` as the scan cut them, or None if not found.

    Decodes from the start of the file up to the window (not beyond), honouring the
    scan's ``--max-duration`` so that an end-aligned last window is found again.
    """
    from forensics_scan.audio import SAMPLE_RATE, capped_blocks, iter_segments, stream_blocks

    limit = None if max_duration_s is None else int(float(max_duration_s) * SAMPLE_RATE)
    blocks = (block for block, _ in capped_blocks(stream_blocks(path), limit) if block.size)
    for start_s, end_s, samples in iter_segments(blocks, hop_s):
        if abs(start_s - segment.start_s) < TIME_TOLERANCE_S:
            if abs(end_s - segment.end_s) < TIME_TOLERANCE_S:
                return np.array(samples)
        elif start_s > segment.start_s + TIME_TOLERANCE_S:
            return None
    return None


def render_png(samples: np.ndarray, segment: SegmentScore) -> str:
    """Draw the log-Mel features of ``samples`` as a small PNG; returns a data: URI."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from forensics_scan.features import F_MAX, F_MIN, N_MELS, log_mel

    features = log_mel(np.asarray(samples, dtype=np.float32))
    figure = Figure(figsize=FIGURE_INCHES, dpi=DPI)  # not pyplot: no global state
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.09, 0.25, 0.89, 0.7))
    axes.imshow(features, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                extent=(segment.start_s, segment.end_s, 0, N_MELS))
    axes.set_xlabel("time in the file (s); log-Mel bands from low to high frequency",
                    fontsize=8)
    axes.set_yticks([0, N_MELS])
    axes.set_yticklabels([f"{F_MIN:g} Hz", f"{F_MAX / 1000:g} kHz"])
    axes.tick_params(labelsize=7)
    return "data:image/png;base64," + base64.b64encode(_small_png(figure)).decode("ascii")


def _small_png(figure) -> bytes:
    # A 64-colour palette PNG is a quarter of the size of matplotlib's RGBA one and looks
    # the same at this size; Pillow comes with matplotlib.
    from PIL import Image

    figure.canvas.draw()
    rgb = Image.frombuffer("RGBA", figure.canvas.get_width_height(),
                           figure.canvas.buffer_rgba()).convert("RGB")
    buffer = io.BytesIO()
    rgb.quantize(colors=PALETTE_COLOURS).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
