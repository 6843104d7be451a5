"""Frozen result records passed from the scanner to the report writers."""

from dataclasses import asdict, dataclass, field
from typing import Optional, Tuple

# The JSON report's schema (docs/json-schema.md). Bump the version when a field is
# renamed, removed or changes meaning; adding a field is compatible and keeps it.
SCHEMA_NAME = "fscan-report"
SCHEMA_VERSION = 2  # 2: segment verdict "no_speech" with a null score

OK, SKIPPED, ERROR = "ok", "skipped", "error"
REAL, FAKE = "real", "fake"
NO_SPEECH = "no_speech"  # a segment's verdict when it holds nothing to judge


@dataclass(frozen=True)
class SegmentScore:
    """Score of one 5 s window of a file. Times in seconds from the start of the file."""

    index: int
    start_s: float
    end_s: float
    score: Optional[float]  # probability that the window is synthetic, in [0, 1];
    # None when the window holds no speech (silence, steady noise): nothing to judge
    verdict: str  # REAL or FAKE at the scan threshold, or NO_SPEECH

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FileResult:
    """Outcome for one input file, whatever happened to it.

    ``status`` is OK (scored), SKIPPED (nothing to judge, e.g. shorter than 0.1 s) or
    ERROR (could not be read); ``error`` says why for the last two. For a scored file it
    is empty unless part of the file could not be decoded (it then says how much was
    scanned). ``verdict`` and the scores are only set when ``status`` is OK.
    """

    path: str
    status: str
    verdict: str = ""
    score: Optional[float] = None  # file score = max segment score (see scan.aggregate)
    duration_s: Optional[float] = None  # decoded duration that was scanned
    n_segments: int = 0
    max_segment_score: Optional[float] = None
    mean_segment_score: Optional[float] = None
    fake_segments: int = 0
    error: str = ""
    sample_rate: Optional[int] = None  # of the source file, before resampling
    channels: Optional[int] = None
    format: str = ""
    decoder: str = ""
    size_bytes: Optional[int] = None
    sha256: str = ""
    truncated: bool = False  # True when --max-duration cut the scan short
    segments: Tuple[SegmentScore, ...] = field(default_factory=tuple)

    def as_dict(self, with_segments: bool = True) -> dict:
        data = asdict(self)
        if with_segments:
            data["segments"] = [segment.as_dict() for segment in self.segments]
        else:
            del data["segments"]
        return data


@dataclass(frozen=True)
class ScanReport:
    """Everything a writer needs: the files, plus how and with what they were scanned."""

    files: Tuple[FileResult, ...]
    threshold: float
    settings: dict  # hop_s, jobs, cache, max_duration_s, include/exclude, ...
    model: dict  # path, sha256, provenance summary
    fscan_version: str
    generated_at: str  # ISO 8601, UTC
    command: str = ""
    elapsed_s: Optional[float] = None

    @property
    def flagged(self) -> Tuple[FileResult, ...]:
        return tuple(f for f in self.files if f.status == OK and f.verdict == FAKE)

    @property
    def failed(self) -> Tuple[FileResult, ...]:
        return tuple(f for f in self.files if f.status != OK)

    @property
    def audio_seconds(self) -> float:
        return sum(f.duration_s or 0.0 for f in self.files if f.status == OK)

    def summary(self) -> dict:
        counts = {OK: 0, SKIPPED: 0, ERROR: 0}
        for result in self.files:
            counts[result.status] += 1
        return {
            "files": len(self.files),
            "scored": counts[OK],
            "skipped": counts[SKIPPED],
            "errors": counts[ERROR],
            "flagged": len(self.flagged),
            "audio_seconds": round(self.audio_seconds, 3),
        }

    def reliability(self) -> str:
        """How often the model was measured to be wrong, in words, for every report."""
        held_out = self.model.get("held_out")
        calibration = self.model.get("calibration")
        if held_out:
            measured = held_out
            text = (f"How far to trust the verdicts: on {held_out['n_genuine']} genuine and "
                    f"{held_out['n_fake']} synthetic files from {held_out['n_systems']} "
                    f"generators this model never saw ({held_out['data']}), it flagged "
                    f"{_percent(held_out['false_alarm_rate'])} of the genuine files and missed "
                    f"{_percent(held_out['miss_rate'])} of the synthetic ones at threshold "
                    f"{held_out['threshold']:.4g} (file EER {_percent(held_out['file_eer'])}). "
                    f"A file it does not flag is not shown to be genuine.")
        elif calibration:
            measured = calibration
            misses = ("" if calibration["miss_rate"] is None else
                      f" and missed {_percent(calibration['miss_rate'])} of the synthetic ones")
            text = (f"This model records no test on generators it never saw. On its own "
                    f"{calibration['split']} files ({calibration['n_genuine']} genuine, "
                    f"{calibration['n_fake']} synthetic, from generators it was trained on) it "
                    f"flagged {_percent(calibration['false_alarm_rate'])} of the genuine "
                    f"files{misses} at threshold {calibration['threshold']:.4g}; expect more "
                    f"misses on other generators.")
        else:
            return "This model records no measured error rates: its verdicts are unmeasured."
        if abs(measured["threshold"] - self.threshold) > 1e-9:
            text += (f" This scan used threshold {self.threshold:.4g} instead, so those rates "
                     f"do not apply as stated.")
        return text

    def as_dict(self) -> dict:
        return {
            "schema": f"{SCHEMA_NAME}/{SCHEMA_VERSION}",
            "schema_version": SCHEMA_VERSION,
            "fscan_version": self.fscan_version,
            "generated_at": self.generated_at,
            "command": self.command,
            "elapsed_s": self.elapsed_s,
            "threshold": self.threshold,
            "settings": self.settings,
            "model": self.model,
            "summary": self.summary(),
            "reliability": self.reliability(),
            "files": [result.as_dict() for result in self.files],
        }


def _percent(rate: float) -> str:
    return f"{100 * rate:.1f} %"
