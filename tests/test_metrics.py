import numpy as np
import pytest

from forensics_scan import metrics

GENUINE, FAKE = 0, 1


def test_perfect_separation_has_zero_eer_and_unit_auc():
    labels = [GENUINE, GENUINE, GENUINE, FAKE, FAKE]
    scores = [0.1, 0.2, 0.3, 0.7, 0.9]
    assert metrics.auc(labels, scores) == 1.0
    eer, threshold = metrics.eer(labels, scores)
    assert eer == 0.0
    rates = metrics.rates_at(labels, scores, threshold)
    assert rates["false_alarm_rate"] == 0.0 and rates["miss_rate"] == 0.0


def test_reversed_scores_have_zero_auc_and_full_eer():
    labels = [GENUINE, GENUINE, FAKE, FAKE]
    scores = [0.9, 0.8, 0.2, 0.1]
    assert metrics.auc(labels, scores) == 0.0
    assert metrics.eer(labels, scores)[0] == 1.0


def test_identical_scores_are_chance():
    labels = [GENUINE, FAKE, GENUINE, FAKE, FAKE]
    scores = [0.5] * 5
    assert metrics.auc(labels, scores) == 0.5
    assert metrics.eer(labels, scores) == (0.5, 0.5)


def test_hand_computed_case():
    # genuine 0.1 0.35 0.4 0.8 / fake 0.3 0.6 0.7 0.9
    labels = [GENUINE, FAKE, GENUINE, GENUINE, FAKE, FAKE, GENUINE, FAKE]
    scores = [0.1, 0.3, 0.35, 0.4, 0.6, 0.7, 0.8, 0.9]
    # fake above genuine: 0.9 beats 4, 0.7 and 0.6 beat 3 each, 0.3 beats 1 -> 11 of 16
    assert metrics.auc(labels, scores) == pytest.approx(11 / 16)
    # at >= 0.6: one genuine of four called fake, one fake of four missed
    assert metrics.eer(labels, scores) == pytest.approx((0.25, 0.6))
    rates = metrics.rates_at(labels, scores, 0.6)
    assert rates == pytest.approx({"false_alarm_rate": 0.25, "miss_rate": 0.25,
                                   "accuracy": 0.75, "balanced_accuracy": 0.75,
                                   "n_genuine": 4, "n_fake": 4, "false_alarms": 1,
                                   "misses": 1})


def test_eer_interpolates_between_operating_points():
    # >= 0.3: false alarms 1/3, misses 1/2; >= 0.25: false alarms 1/3, misses 0.
    # The rates cross on that vertical step of the DET curve, at 1/3.
    labels = [GENUINE, GENUINE, GENUINE, FAKE, FAKE]
    scores = [0.1, 0.2, 0.3, 0.25, 0.9]
    eer, threshold = metrics.eer(labels, scores)
    assert eer == pytest.approx(1 / 3)
    assert threshold == 0.3  # the nearer of the two reachable points


def test_tied_scores_make_a_diagonal_step():
    # a genuine and a fake both score 0.5: from (0, 1/2) to (1/2, 0) in one step
    labels = [GENUINE, GENUINE, FAKE, FAKE]
    scores = [0.1, 0.5, 0.5, 0.9]
    false_alarm_rate, miss_rate, thresholds = metrics.det_curve(labels, scores)
    np.testing.assert_allclose(false_alarm_rate, [0, 0, 0.5, 1])
    np.testing.assert_allclose(miss_rate, [1, 0.5, 0, 0])
    assert thresholds[0] == np.inf and list(thresholds[1:]) == [0.9, 0.5, 0.1]
    assert metrics.eer(labels, scores)[0] == pytest.approx(0.25)
    assert metrics.auc(labels, scores) == pytest.approx(3.5 / 4)


def test_threshold_is_inclusive():
    rates = metrics.rates_at([GENUINE, FAKE], [0.5, 0.5], 0.5)
    assert rates["false_alarm_rate"] == 1.0 and rates["miss_rate"] == 0.0


def test_auc_is_mann_whitney_and_roc_area_with_ties():
    generator = np.random.default_rng(0)
    labels = generator.integers(0, 2, 300)
    scores = generator.integers(0, 12, 300) + 2 * labels  # many ties
    fake, genuine = scores[labels == 1][:, None], scores[labels == 0][None, :]
    pairwise = np.mean((fake > genuine) + 0.5 * (fake == genuine))
    false_alarm_rate, detection_rate, _ = metrics.roc_curve(labels, scores)
    assert metrics.auc(labels, scores) == pytest.approx(pairwise, abs=1e-12)
    area = np.sum(np.diff(false_alarm_rate) * (detection_rate[1:] + detection_rate[:-1]) / 2)
    assert area == pytest.approx(pairwise)


def test_eer_lies_where_the_rates_meet():
    generator = np.random.default_rng(1)
    labels = generator.integers(0, 2, 500)
    scores = generator.normal(labels * 1.5, 1.0)
    eer, threshold = metrics.eer(labels, scores)
    rates = metrics.rates_at(labels, scores, threshold)
    step = 1 / min(labels.sum(), (1 - labels).sum())
    assert abs(rates["false_alarm_rate"] - eer) <= step
    assert abs(rates["miss_rate"] - eer) <= step
    assert 0.15 < eer < 0.35  # two unit normals 1.5 apart: EER = Phi(-0.75) = 0.227


@pytest.mark.parametrize("function", [metrics.roc_curve, metrics.det_curve, metrics.auc,
                                      metrics.eer])
def test_one_class_is_rejected(function):
    with pytest.raises(ValueError, match="both genuine"):
        function([FAKE, FAKE, FAKE], [0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match="both genuine"):
        function([GENUINE], [0.1])


def test_rates_at_rejects_one_class():
    with pytest.raises(ValueError, match="both genuine"):
        metrics.rates_at([GENUINE, GENUINE], [0.1, 0.9], 0.5)


@pytest.mark.parametrize("labels, scores, message", [
    ([0, 2], [0.1, 0.2], "labels must be"),
    (["real", "fake"], [0.1, 0.2], "labels must be"),
    ([0, 1, 1], [0.1, 0.2], "equal length"),
    ([0, 1], [0.1, float("nan")], "NaN"),
])
def test_bad_inputs_are_rejected(labels, scores, message):
    with pytest.raises(ValueError, match=message):
        metrics.eer(labels, scores)


def test_boolean_labels_are_accepted():
    assert metrics.auc(np.array([False, True]), [0.2, 0.8]) == 1.0


def test_probit_is_symmetric_and_finite_at_the_ends():
    values = metrics.probit([0.0, 0.5, 1.0])
    assert values[1] == 0.0 and np.isfinite(values).all()
    assert values[0] == pytest.approx(-values[2]) and values[0] < -3


def _eer(labels, scores):
    return metrics.eer(labels, scores)[0]


def _overlapping(n, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n)
    return labels, rng.normal(labels * 1.0, 1.0)  # d' = 1: EER about 31 %


def test_bootstrap_interval_holds_the_estimate_and_narrows_with_more_data():
    small, large = _overlapping(20), _overlapping(2000)
    low, high = metrics.bootstrap_interval(*small, _eer, n_resamples=300)
    big_low, big_high = metrics.bootstrap_interval(*large, _eer, n_resamples=300)

    assert low <= _eer(*small) <= high
    assert big_low <= _eer(*large) <= big_high and 0.27 < big_low < big_high < 0.35
    assert big_high - big_low < (high - low) / 4  # width falls like 1 / sqrt(n)
    assert metrics.bootstrap_interval(*small, _eer, n_resamples=300) == (low, high)


def test_bootstrap_resamples_whole_groups():
    # five identical segments per file carry no more information than the file itself
    labels, scores = _overlapping(30)
    files = np.arange(labels.size)
    segment_labels, segment_scores = np.repeat(labels, 5), np.repeat(scores, 5)
    by_file = metrics.bootstrap_interval(labels, scores, _eer, n_resamples=300)
    grouped = metrics.bootstrap_interval(segment_labels, segment_scores, _eer,
                                         groups=np.repeat(files, 5), n_resamples=300)
    ungrouped = metrics.bootstrap_interval(segment_labels, segment_scores, _eer,
                                           n_resamples=300)

    assert grouped == pytest.approx(by_file)
    assert ungrouped[1] - ungrouped[0] < (by_file[1] - by_file[0]) / 1.5  # falsely sure


def test_bootstrap_refuses_a_group_with_both_labels():
    with pytest.raises(ValueError, match="both genuine and fake"):
        metrics.bootstrap_interval([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], metrics.auc,
                                   groups=["a", "a", "b", "c"])
