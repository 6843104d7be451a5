"""Choose a checkpoint's decision threshold on genuine speech the user trusts.

Training stores the threshold at the validation EER point, where as many genuine clips
are flagged as fakes are missed. An investigator usually wants the opposite trade: few
genuine recordings accused, at the price of missing more fakes. And a deployment knows
its own genuine audio (its microphones, codecs, speakers) better than any training set.
``fscan calibrate`` therefore scores a calibration set, picks the threshold that keeps
the false-alarm rate on its genuine files at or below a target, and writes a copy of the
checkpoint whose only change is the threshold plus a record of how it was chosen.

A calibration set is rarely balanced: ours has hundreds of one-second keyword clips and a
dozen long read-speech files. Counted over files, the target is then met on the keyword
corpora and says little about the rest. With ``--balance-corpora`` every corpus weighs
the same, so the target bounds the false-alarm rate of the average corpus.

The calibration set must not be the data the model is evaluated on: a threshold tuned
on test data makes the test figures meaningless.
"""

from typing import Optional

import numpy as np

from .checkpoint import ModelError, read_checkpoint_info, rewrite_metadata
from .metrics import eer, rates_at


def threshold_for_false_alarm(genuine_scores, max_false_alarm: float,
                              weights=None) -> float:
    """Lowest threshold that flags at most ``max_false_alarm`` of ``genuine_scores``.

    A file is called fake when ``score >= threshold``. The threshold is placed just above
    the highest genuine score that can no longer be flagged: with ``n`` equally weighted
    scores at most ``floor(max_false_alarm * n)`` of them reach it. Ties can only lower
    the false-alarm rate.

    Parameters
    ----------
    genuine_scores : array-like
        File scores of genuine files.
    max_false_alarm : float
        Target false-alarm rate, in [0, 1).
    weights : array-like, optional
        A weight per score (normalised here); the target then bounds the weighted share
        of flagged files. ``corpus_weights`` gives every corpus the same total weight.

    Raises
    ------
    ValueError
        If there are no genuine scores, the target is outside [0, 1) or the weights do
        not match the scores.
    """
    scores = np.asarray(genuine_scores, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("calibration needs at least one genuine file")
    if not 0 <= max_false_alarm < 1:
        raise ValueError(f"the false-alarm target must be in [0, 1), not {max_false_alarm}")
    weights = np.ones_like(scores) if weights is None else np.asarray(weights, np.float64)
    if weights.shape != scores.shape or np.any(weights <= 0):
        raise ValueError("calibration weights must be positive, one per genuine score")
    order = np.argsort(-scores, kind="stable")
    scores = scores[order]
    flagged_share = np.cumsum(weights[order]) / weights.sum()
    allowed = int(np.sum(flagged_share <= max_false_alarm + 1e-9))
    threshold = np.nextafter(scores[allowed], np.inf) if allowed < scores.size else 0.0
    return float(min(threshold, 1.0))


def corpus_weights(corpora) -> np.ndarray:
    """Weights that give every corpus the same total, whatever its number of files.

    With them a false-alarm target bounds the mean over corpora of each corpus's
    false-alarm rate, so a corpus of many short clips cannot set the threshold alone.
    """
    names = np.asarray(corpora, dtype=object)
    _, index, counts = np.unique(names, return_inverse=True, return_counts=True)
    return 1.0 / counts[index]


def choose_threshold(labels, scores, max_false_alarm: Optional[float] = None,
                     corpora=None) -> dict:
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
    corpora : array-like of str, optional
        Each file's corpus. With a target, the target then bounds the mean over corpora of
        each corpus's false-alarm rate instead of the share of all genuine files.

    Returns
    -------
    dict
        ``threshold``, ``rule``, and the ``false_alarm_rate``, ``miss_rate`` and counts
        at that threshold (``miss_rate`` is None without synthetic files, so the record
        stays valid JSON); with ``corpora`` also ``corpus_false_alarm_rate`` (the mean
        over corpora) and ``n_corpora``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    genuine, fake = scores[labels == 0], scores[labels == 1]
    weights = None
    if corpora is not None:
        genuine_corpora = np.asarray(corpora, dtype=object)[labels == 0]
        weights = corpus_weights(genuine_corpora)
    both = bool(genuine.size and fake.size)
    equal_error, eer_threshold = eer(labels, scores) if both else (None, None)
    if max_false_alarm is None:
        if not both:
            raise ValueError("the EER threshold needs genuine and synthetic files; "
                             "give --max-false-alarm to calibrate on genuine files alone")
        threshold, rule = eer_threshold, "validation EER point"
    else:
        threshold = threshold_for_false_alarm(genuine, max_false_alarm, weights)
        rule = f"false-alarm rate <= {max_false_alarm:.2%} on genuine files"
        if weights is not None:
            rule += ", every corpus weighing the same"
    result = {"threshold": float(threshold), "rule": rule,
              "n_genuine": int(genuine.size), "n_fake": int(fake.size),
              "false_alarm_rate": float(np.mean(genuine >= threshold)), "miss_rate": None}
    if weights is not None and genuine.size:
        result.update(n_corpora=len(set(genuine_corpora)), corpus_false_alarm_rate=float(
            np.sum(weights * (genuine >= threshold)) / weights.sum()))
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
