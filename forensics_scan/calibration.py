"""Choose a checkpoint's decision threshold on genuine speech the user trusts.

Training stores the threshold at the validation EER point, where as many genuine clips
are flagged as fakes are missed. An investigator usually wants the opposite trade: few
genuine recordings accused, at the price of missing more fakes. And a deployment knows
its own genuine audio (its microphones, codecs, speakers) better than any training set.
``fscan calibrate`` therefore scores a calibration set, picks the threshold that keeps
the false-alarm rate on its genuine files at or below a target, and writes a copy of the
checkpoint whose only change is the threshold plus a record of how it was chosen.

The calibration set must not be the data the model is evaluated on: a threshold tuned
on test data makes the test figures meaningless.
"""

from typing import Optional

import numpy as np

from .checkpoint import ModelError, read_checkpoint_info, rewrite_metadata
from .metrics import eer, rates_at


def threshold_for_false_alarm(genuine_scores, max_false_alarm: float) -> float:
    """Lowest threshold that flags at most ``max_false_alarm`` of ``genuine_scores``.

    A file is called fake when ``score >= threshold``. With ``n`` genuine scores at most
    ``floor(max_false_alarm * n)`` of them may reach the threshold, so it is placed just
    above the next-highest genuine score. Ties can only lower the false-alarm rate.

    Raises
    ------
    ValueError
        If there are no genuine scores or the target is outside [0, 1).
    """
    scores = np.sort(np.asarray(genuine_scores, dtype=np.float64))[::-1]
    if scores.size == 0:
        raise ValueError("calibration needs at least one genuine file")
    if not 0 <= max_false_alarm < 1:
        raise ValueError(f"the false-alarm target must be in [0, 1), not {max_false_alarm}")
    allowed = int(np.floor(max_false_alarm * scores.size + 1e-9))
    threshold = np.nextafter(scores[allowed], np.inf)
    return float(min(threshold, 1.0))


def choose_threshold(labels, scores, max_false_alarm: Optional[float] = None) -> dict:
    """Threshold and the error rates it gives on the calibration files.

    Parameters
    ----------
    labels : array-like of {0, 1}
        1 for synthetic, 0 for genuine files.
    scores : array-like
        File scores (the maximum over each file's segments, as the scanner reports).
    max_false_alarm : float, optional
        Target false-alarm rate on the genuine files. When omitted, the EER threshold is
        taken (which needs synthetic files too).

    Returns
    -------
    dict
        ``threshold``, ``rule``, and the ``false_alarm_rate``, ``miss_rate`` and counts
        at that threshold (``miss_rate`` is None without synthetic files, so the record
        stays valid JSON).
    """
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    genuine, fake = scores[labels == 0], scores[labels == 1]
    both = bool(genuine.size and fake.size)
    equal_error, eer_threshold = eer(labels, scores) if both else (None, None)
    if max_false_alarm is None:
        if not both:
            raise ValueError("the EER threshold needs genuine and synthetic files; "
                             "give --max-false-alarm to calibrate on genuine files alone")
        threshold, rule = eer_threshold, "validation EER point"
    else:
        threshold = threshold_for_false_alarm(genuine, max_false_alarm)
        rule = f"false-alarm rate <= {max_false_alarm:.2%} on genuine files"
    result = {"threshold": float(threshold), "rule": rule,
              "n_genuine": int(genuine.size), "n_fake": int(fake.size),
              "false_alarm_rate": float(np.mean(genuine >= threshold)), "miss_rate": None}
    if both:
        rates = rates_at(labels, scores, threshold)
        result.update(miss_rate=rates["miss_rate"], eer=equal_error,
                      balanced_accuracy=rates["balanced_accuracy"])
    return result


def write_calibrated(model_path: str, out_path: str, calibration: dict) -> None:
    """Copy the checkpoint at ``model_path`` to ``out_path`` with a new threshold.

    The tensors are copied unchanged; the metadata gets ``threshold`` and a
    ``calibration`` record (the rule, the figures and the command). A ``held_out`` record
    (``fscan evaluate --record``) is dropped: its error rates were measured at the old
    threshold. A failure leaves nothing behind (``checkpoint.rewrite_metadata``).
    """
    info = read_checkpoint_info(model_path)
    threshold = calibration["threshold"]
    if not 0 <= threshold <= 1:
        raise ModelError(f"calibrated threshold {threshold!r} is outside [0, 1]")
    metadata = dict(info.metadata, threshold=float(threshold),
                    calibration=dict(calibration, calibrated_from=info.sha256))
    metadata.pop("held_out", None)
    rewrite_metadata(model_path, out_path, metadata)
