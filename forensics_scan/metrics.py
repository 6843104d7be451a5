"""Detection metrics for a genuine-vs-synthetic detector, in plain numpy.

Conventions used throughout: label 1 is a fake (synthetic, the positive class) and label 0
is genuine (bona fide) speech; a higher score means "more likely fake"; a segment or file
is called fake when ``score >= threshold``. Hence

- false-alarm rate: the fraction of genuine examples called fake (false positive rate);
- miss rate: the fraction of fake examples called genuine (false negative rate, 1 - TPR).

Every curve is built from the distinct score values only, so tied scores move the
operating point diagonally instead of in an order that depends on how ties were sorted.
"""

from statistics import NormalDist
from typing import Callable, Tuple

import numpy as np


def roc_curve(labels, scores) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Receiver operating characteristic: false-alarm rate against detection rate.

    Parameters
    ----------
    labels : array-like, shape (n,)
        1 (or True) for fake, 0 (or False) for genuine.
    scores : array-like, shape (n,)
        Higher means more likely fake.

    Returns
    -------
    false_alarm_rate, detection_rate : np.ndarray, shape (k + 1,)
        For each threshold, the fraction of genuine examples and of fake examples with
        ``score >= threshold``. Both start at 0 and end at 1.
    thresholds : np.ndarray, shape (k + 1,)
        Decreasing: ``+inf`` (nothing called fake), then the k distinct scores.

    Raises
    ------
    ValueError
        If the inputs differ in length, a label is not 0/1, a score is NaN, or only one
        class is present.
    """
    is_fake, scores = _check(labels, scores)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_fake = scores[order], is_fake[order]
    # last index of every run of equal scores: the operating points a threshold can reach
    last = np.r_[np.flatnonzero(np.diff(sorted_scores)), scores.size - 1]
    detected = np.cumsum(sorted_fake)[last]
    false_alarms = last + 1 - detected
    detection_rate = np.r_[0, detected] / is_fake.sum()
    false_alarm_rate = np.r_[0, false_alarms] / (~is_fake).sum()
    thresholds = np.r_[np.inf, sorted_scores[last]]
    return false_alarm_rate, detection_rate, thresholds


def det_curve(labels, scores) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detection error tradeoff: false-alarm rate against miss rate.

    The same operating points as ``roc_curve``, with the miss rate ``1 - detection_rate``.
    Plot both rates on a normal-deviate (probit) scale, see ``probit``.

    Returns
    -------
    false_alarm_rate, miss_rate, thresholds : np.ndarray, shape (k + 1,)
        Thresholds decrease from ``+inf``; the false-alarm rate rises from 0 to 1 and the
        miss rate falls from 1 to 0.
    """
    false_alarm_rate, detection_rate, thresholds = roc_curve(labels, scores)
    return false_alarm_rate, 1.0 - detection_rate, thresholds


def auc(labels, scores) -> float:
    """Area under the ROC curve.

    The probability that a random fake example scores higher than a random genuine one,
    counting ties as one half: the Mann-Whitney U statistic divided by
    ``n_fake * n_genuine``. It equals the trapezoidal area under ``roc_curve``.

    Returns
    -------
    float
        1 for perfect separation, 0.5 for chance (or all scores equal), 0 when reversed.
    """
    is_fake, scores = _check(labels, scores)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mid_ranks = ends - (counts - 1) / 2.0  # 1-based average rank of each tied run
    ranks = mid_ranks[inverse]
    n_fake, n_genuine = int(is_fake.sum()), int((~is_fake).sum())
    u_statistic = ranks[is_fake].sum() - n_fake * (n_fake + 1) / 2.0
    return float(u_statistic / (n_fake * n_genuine))


def eer(labels, scores) -> Tuple[float, float]:
    """Equal error rate: where the false-alarm rate equals the miss rate.

    The DET curve (``det_curve``) is followed from the highest threshold down until the
    false-alarm rate reaches the miss rate. When the two cross between two operating
    points, the EER is read off the straight segment joining them, i.e. the error of a
    detector that randomly chooses between the two thresholds (the usual ``brentq`` over
    an interpolated ROC, solved exactly).

    Returns
    -------
    eer : float
        In [0, 1]; 0 for perfect separation, 0.5 when all scores are equal.
    threshold : float
        The score threshold (call fake when ``score >= threshold``) of the reachable
        operating point nearest the crossing, i.e. with the smallest
        ``|false_alarm_rate - miss_rate|`` (the ASVspoof convention); its two error rates
        each lie within one step of ``eer``.
    """
    false_alarm_rate, miss_rate, thresholds = det_curve(labels, scores)
    gap = false_alarm_rate - miss_rate  # rises from -1 to +1 as the threshold falls
    after = int(np.argmax(gap >= 0))
    if gap[after] == 0:
        return float(false_alarm_rate[after]), float(thresholds[after])
    before = after - 1
    fraction = -gap[before] / (gap[after] - gap[before])
    value = false_alarm_rate[before] + fraction * (
        false_alarm_rate[after] - false_alarm_rate[before])
    # the first point has threshold +inf, which is no usable threshold
    nearest = after if before == 0 or abs(gap[after]) <= abs(gap[before]) else before
    return float(value), float(thresholds[nearest])


def rates_at(labels, scores, threshold: float) -> dict:
    """Error rates of the decision ``score >= threshold`` means fake.

    Returns
    -------
    dict
        ``false_alarm_rate`` (genuine called fake / genuine), ``miss_rate`` (fake called
        genuine / fake), ``accuracy`` (correct / all), ``balanced_accuracy``
        (``1 - (false_alarm_rate + miss_rate) / 2``, immune to class imbalance), and the
        counts ``n_genuine``, ``n_fake``, ``false_alarms``, ``misses``.
    """
    is_fake, scores = _check(labels, scores)
    called_fake = scores >= threshold
    false_alarms = int(np.sum(called_fake & ~is_fake))
    misses = int(np.sum(~called_fake & is_fake))
    n_fake = int(is_fake.sum())
    n_genuine = is_fake.size - n_fake
    false_alarm_rate = false_alarms / n_genuine
    miss_rate = misses / n_fake
    return {
        "false_alarm_rate": false_alarm_rate,
        "miss_rate": miss_rate,
        "accuracy": 1.0 - (false_alarms + misses) / is_fake.size,
        "balanced_accuracy": 1.0 - (false_alarm_rate + miss_rate) / 2.0,
        "n_genuine": n_genuine,
        "n_fake": n_fake,
        "false_alarms": false_alarms,
        "misses": misses,
    }


def bootstrap_interval(labels, scores, statistic: Callable[[np.ndarray, np.ndarray], float],
                       groups=None, n_resamples: int = 1000, seed: int = 0
                       ) -> Tuple[float, float]:
    """95 % percentile-bootstrap interval of ``statistic(labels, scores)``.

    Each resample draws the genuine and the fake groups with replacement, as many of
    each as there are, and keeps every row of a drawn group. ``groups`` (one key per
    row) keeps rows that are not independent together: the segments of one file. None
    makes every row its own group. Fixed ``seed``: the same data gives the same interval.

    Raises
    ------
    ValueError
        If a group holds both genuine and fake rows, or ``_check`` refuses the data.
    """
    is_fake, scores = _check(labels, scores)
    keys = np.arange(is_fake.size) if groups is None else np.asarray(groups)
    _, index = np.unique(keys, return_inverse=True)
    order = np.argsort(index, kind="stable")
    counts = np.bincount(index)
    members = np.split(order, np.cumsum(counts)[:-1])
    group_is_fake = np.array([is_fake[rows[0]] for rows in members])
    if any(is_fake[rows].any() != is_fake[rows].all() for rows in members):
        raise ValueError("a group holds both genuine and fake rows")
    fake, genuine = np.flatnonzero(group_is_fake), np.flatnonzero(~group_is_fake)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        drawn = np.concatenate([rng.choice(genuine, genuine.size), rng.choice(fake, fake.size)])
        rows = np.concatenate([members[group] for group in drawn])
        values.append(statistic(is_fake[rows], scores[rows]))
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def probit(rates, floor: float = 1e-4) -> np.ndarray:
    """Normal deviate of each rate, the axis scale of a DET plot.

    Rates are clipped to ``[floor, 1 - floor]`` first, since 0 and 1 map to infinity.
    """
    clipped = np.clip(np.asarray(rates, dtype=float), floor, 1.0 - floor)
    return np.vectorize(NormalDist().inv_cdf, otypes=[float])(clipped)


def _check(labels, scores) -> Tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=float)
    if labels.ndim != 1 or scores.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"labels and scores must be 1-D and of equal length, got shapes "
                         f"{labels.shape} and {scores.shape}")
    if labels.dtype.kind not in "biuf" or not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 1 (fake) or 0 (genuine)")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    is_fake = labels.astype(bool)
    n_fake = int(is_fake.sum())
    if n_fake == 0 or n_fake == is_fake.size:
        only = f", all {'fake' if n_fake else 'genuine'}" if is_fake.size else ""
        raise ValueError(f"needs both genuine (0) and fake (1) examples, got "
                         f"{is_fake.size}{only}")
    return is_fake, scores
