"""Training: twin pairing, shared channels and crops (twin contrast), sharpness-aware steps,
system classification, corpus balance, weight averaging."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from forensics_scan import training
from forensics_scan.labels import read_labelled
from forensics_scan.model import LCNN, load_checkpoint
from forensics_scan.training import (SegmentSet, SystemTask, TrainConfig, augment,
                                     corpus_balance_weights, extract_segments, original_rows,
                                     _segment_loss, sharpness_aware_gradient,
                                     system_balance_weights, twin_segments)


def test_original_rows_link_twins_to_genuine_rows_only():
    table = pd.DataFrame({
        "path": ["/d/a.wav", "/d/b.wav", "/d/twin_a.wav", "/d/twin_gone.wav", "/d/twin_b.wav",
                 "/d/twin_of_twin.wav"],
        "label": ["real", "real", "fake", "fake", "fake", "fake"],
        "original": ["", None, "/d/a.wav", "/d/missing.wav", "/d/b.wav", "/d/twin_a.wav"],
    })
    assert original_rows(table).tolist() == [-1, -1, 0, -1, 1, -1]
    assert original_rows(table.drop(columns="original")).tolist() == [-1] * 6


def _segments(spec):
    """SegmentSet from (file row, copy, label) per segment; features = segment number."""
    rows, copies, labels = map(np.array, zip(*spec))
    features = np.arange(len(spec), dtype=np.float16)[:, None, None] * np.ones((1, 2, 3))
    return SegmentSet(features, labels, rows, copies)


def test_twin_segments_pair_the_same_copy_and_place():
    data = _segments([(0, 0, 0), (0, 0, 0), (0, 1, 0), (0, 1, 0),  # original, 2 copies
                      (1, 0, 1), (1, 0, 1), (1, 0, 1), (1, 1, 1),  # twin: one more segment
                      (2, 0, 1)])  # twin whose original is not in this split
    partners = twin_segments(data, originals=np.array([-1, 0, 3, -1]))
    assert partners.tolist() == [-1, -1, -1, -1, 0, 1, -1, 2, -1]


def test_paired_rows_get_the_same_crop_and_masks():
    config = TrainConfig(crop_frames=40, time_masks=2, time_mask_frames=10, freq_masks=2,
                         freq_mask_bins=6)
    batch = torch.randn(3, 16, 60)
    stacked = torch.cat([batch, batch[[0, 2]]])
    out = augment(stacked, config, torch.Generator().manual_seed(5),
                  same_as=torch.tensor([0, 1, 2, 0, 2]))
    assert out.shape == (5, 16, 40)
    assert torch.equal(out[3], out[0]) and torch.equal(out[4], out[2])
    # without partners the draws are those of the bundled recipe, row for row
    plain = augment(batch, config, torch.Generator().manual_seed(5))
    explicit = augment(batch, config, torch.Generator().manual_seed(5), torch.arange(3))
    assert torch.equal(plain, explicit)
    apart = augment(torch.cat([batch, batch[[0]]]), config, torch.Generator().manual_seed(5))
    assert not torch.equal(apart[3], apart[0])  # rows of their own draw their own


def test_a_twin_and_its_original_share_their_channel(tmp_path, speechlike, write_audio):
    signal = speechlike(6.0, seed=4)
    paths = [write_audio(tmp_path / "original.wav", signal),
             write_audio(tmp_path / "twin.wav", signal)]  # a "vocoder" that changes nothing
    shared = extract_segments(paths, [0, 1], augment_copies=1, seed=2, log=lambda _: None,
                              channel_keys=[paths[0], paths[0]])
    copy = shared.variant == 1
    assert copy.sum() == 4  # two segments per file
    original, twin = shared.features[copy & (shared.file_index == 0)], \
        shared.features[copy & (shared.file_index == 1)]
    assert np.array_equal(original, twin)
    apart = extract_segments(paths, [0, 1], augment_copies=1, seed=2, log=lambda _: None)
    copy = apart.variant == 1
    assert not np.array_equal(apart.features[copy & (apart.file_index == 0)],
                              apart.features[copy & (apart.file_index == 1)])


def _twin_manifest(tmp_path, speechlike, write_audio, with_originals=True,
                   fake_systems=("crude",)):
    rows = []
    for speaker in range(4):
        for clip in range(2):
            signal = speechlike(2.0, seed=10 * speaker + clip)
            real = write_audio(tmp_path / f"real_{speaker}_{clip}.wav", signal)
            fake = write_audio(tmp_path / f"fake_{speaker}_{clip}.wav",
                               np.clip(signal * 8, -0.5, 0.5))  # crude "vocoder"
            system = fake_systems[clip % len(fake_systems)]
            rows += [(real, "real", "bonafide", f"s{speaker}", ""),
                     (fake, "fake", system, f"s{speaker}", real)]
    table = pd.DataFrame(rows, columns=["path", "label", "system", "group", "original"])
    if not with_originals:
        table = table.drop(columns="original")
    table.to_csv(tmp_path / "manifest.csv", index=False)
    return read_labelled(str(tmp_path / "manifest.csv"))


def test_twin_contrast_trains_and_records_its_weight(tmp_path, speechlike, write_audio,
                                                      tiny_arch):
    table = _twin_manifest(tmp_path, speechlike, write_audio)
    lines = []
    config = TrainConfig(epochs=1, batch_size=4, val_fraction=0.5, seed=3, twin_weight=1.0,
                         arch=tiny_arch)
    summary = training.train(table, str(tmp_path / "model.safetensors"), config,
                             log=lines.append)
    paired = [line for line in lines if line.startswith("twin contrast:")]
    assert paired and int(paired[0].split()[2]) > 0
    assert summary["config"]["twin_weight"] == 1.0
    assert f"model: LCNN, {summary['parameters']:,} parameters (widths 4-4-4)" in lines


def test_the_one_class_head_trains_and_is_recorded(tmp_path, speechlike, write_audio,
                                                   tiny_arch):
    table = _twin_manifest(tmp_path, speechlike, write_audio)
    config = TrainConfig(epochs=2, batch_size=4, val_fraction=0.5, seed=3,
                         arch=dict(tiny_arch, head="one-class"))
    path = str(tmp_path / "model.safetensors")
    summary = training.train(table, path, config, log=lambda _: None)
    detector = load_checkpoint(path)
    assert detector.model.arch["head"] == "one-class"
    assert detector.model.arch["one_class"]["scale"] == 20.0
    assert summary["config"]["arch"]["head"] == "one-class"
    assert np.isfinite(summary["validation"]["file_eer"])


def test_twin_contrast_without_originals_is_a_clear_error(tmp_path, speechlike, write_audio,
                                                           tiny_arch):
    table = _twin_manifest(tmp_path, speechlike, write_audio, with_originals=False)
    config = TrainConfig(epochs=1, val_fraction=0.5, seed=3, twin_weight=1.0,
                         arch=tiny_arch)
    with pytest.raises(ValueError, match="original"):
        training.train(table, str(tmp_path / "model.safetensors"), config, log=lambda _: None)


def test_a_manifests_original_column_is_read_as_a_path(tmp_path):
    (tmp_path / "sub").mkdir()
    pd.DataFrame({"path": ["a.wav", "sub/b.wav"], "label": ["real", "fake"],
                  "original": ["", "a.wav"]}).to_csv(tmp_path / "sub" / "m.csv", index=False)
    table = read_labelled(str(tmp_path / "sub" / "m.csv"))
    assert table["original"].tolist() == ["", str(tmp_path / "sub" / "a.wav")]


def test_the_channel_set_changes_only_the_augmented_copies(tmp_path, speechlike, write_audio):
    paths = [write_audio(tmp_path / "clip.wav", speechlike(6.0, seed=5))]
    sets = {name: extract_segments(paths, [0], augment_copies=3, seed=1, log=lambda _: None,
                                   channels=name, cache_dir=str(tmp_path / "cache"))
            for name in ("standard", "rawboost")}
    standard, rawboost = sets["standard"], sets["rawboost"]
    clean = standard.variant == 0
    assert np.array_equal(standard.features[clean], rawboost.features[clean])
    assert not np.array_equal(standard.features[~clean], rawboost.features[~clean])
    assert len(list((tmp_path / "cache").iterdir())) == 2  # cached apart


def test_an_unknown_channel_set_is_a_clear_error(tmp_path, speechlike, write_audio, tiny_arch):
    table = _twin_manifest(tmp_path, speechlike, write_audio)
    config = TrainConfig(epochs=1, val_fraction=0.5, channels="studio", arch=tiny_arch)
    with pytest.raises(ValueError, match="unknown channel set 'studio'"):
        training.train(table, str(tmp_path / "model.safetensors"), config, log=lambda _: None)


def _gradients_and_loss(tiny_arch, seed=0):
    with torch.random.fork_rng():  # leave the global stream to the tests that follow
        torch.manual_seed(seed)
        model = LCNN(dict(tiny_arch, dropout=0.0))
        inputs = torch.randn(6, model.arch["n_mels"], 40)
    model.train()
    target = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 0.0])

    def batch_loss():
        return torch.nn.functional.binary_cross_entropy_with_logits(model(inputs), target)
    return model, batch_loss


def test_a_sharpness_aware_step_takes_the_gradient_at_the_perturbed_weights(tiny_arch):
    model, batch_loss = _gradients_and_loss(tiny_arch)
    batch_loss().backward()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    plain = [p.grad.clone() for p in model.parameters()]
    sharpness_aware_gradient(model, batch_loss, rho=0.5)
    sharp = [p.grad.clone() for p in model.parameters()]

    # the weights (batch-norm running statistics included) are where they were
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key]), key
    # the gradient is the one at weights + rho * g / |g|, computed here by hand
    norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in plain]))
    twin, twin_loss = _gradients_and_loss(tiny_arch)
    twin.load_state_dict(weights)
    with torch.no_grad():
        for param, grad in zip(twin.parameters(), plain):
            param.add_(0.5 * grad / norm)
    twin_loss().backward()
    for param, got in zip(twin.parameters(), sharp):
        assert torch.allclose(param.grad, got, rtol=1e-4, atol=1e-5)
    assert not all(torch.allclose(a, b) for a, b in zip(plain, sharp))


def test_sharpness_aware_training_runs_and_is_recorded(tmp_path, speechlike, write_audio,
                                                       tiny_arch):
    table = _twin_manifest(tmp_path, speechlike, write_audio)
    runs = {}
    for rho in (0.0, 0.05):
        config = TrainConfig(epochs=1, batch_size=4, val_fraction=0.5, seed=3, sam_rho=rho,
                             arch=tiny_arch)
        path = tmp_path / f"model{rho}.safetensors"
        runs[rho] = training.train(table, str(path), config, log=lambda _: None)
        assert runs[rho]["config"]["sam_rho"] == rho
        card = (tmp_path / f"model{rho}.card.md").read_text()
        assert ("sharpness-aware minimisation (rho 0.05)" in card) == (rho > 0)
    plain, sharp = (load_checkpoint(str(tmp_path / f"model{rho}.safetensors")).model
                    for rho in (0.0, 0.05))
    assert any(not torch.equal(a, b) for a, b in zip(plain.state_dict().values(),
                                                       sharp.state_dict().values()))


# --- system classification ---------------------------------------------------------------

def test_the_system_task_names_genuine_and_each_generator_with_balanced_weights():
    table = pd.DataFrame({"label": ["real", "fake", "fake", "fake"],
                          "system": ["bonafide", "world", "lpc", "world"]})
    segments = SegmentSet(np.zeros((7, 1, 1)), np.array([0, 0, 0, 1, 1, 1, 0]),
                          file_index=np.array([0, 0, 0, 1, 3, 2, 0]), variant=np.zeros(7))
    task = SystemTask(table, segments, embedding=4, weight=0.5)

    assert list(task.classes) == ["genuine", "lpc", "world"]
    assert task.targets.tolist() == [0, 0, 0, 2, 2, 1, 0]
    # 7 segments over 3 classes: weight 7 / (3 * count), so each class weighs the same
    assert torch.allclose(task.cross_entropy.weight, torch.tensor([7 / 12, 7 / 3, 7 / 6]))
    with torch.no_grad():
        task.head.bias.zero_()
    embedding = torch.zeros(2, 4)  # equal logits: the loss is weight * ln(3)
    assert task.loss(embedding, np.array([1, 3])).item() == pytest.approx(0.5 * np.log(3))


def test_system_classification_needs_two_generators(tmp_path, speechlike, write_audio,
                                                    tiny_arch):
    table = _twin_manifest(tmp_path, speechlike, write_audio)  # one synthetic system
    config = TrainConfig(epochs=1, val_fraction=0.5, seed=3, system_weight=0.5,
                         arch=tiny_arch)
    with pytest.raises(ValueError, match="two synthetic systems"):
        training.train(table, str(tmp_path / "model.safetensors"), config, log=lambda _: None)


def test_system_classification_trains_and_keeps_only_the_lcnn(tmp_path, speechlike,
                                                              write_audio, tiny_arch):
    table = _twin_manifest(tmp_path, speechlike, write_audio, fake_systems=("gen_a", "gen_b"))
    models = {}
    for weight in (0.0, 0.5):
        lines = []
        config = TrainConfig(epochs=1, batch_size=4, val_fraction=0.5, seed=3,
                             system_weight=weight, arch=tiny_arch)
        path = str(tmp_path / f"model{weight}.safetensors")
        summary = training.train(table, path, config, log=lines.append)
        assert summary["config"]["system_weight"] == weight
        assert any("3 classes (gen_a, gen_b, genuine)" in line for line in lines) == (weight > 0)
        card = (tmp_path / f"model{weight}.card.md").read_text()
        assert ("system-classification head (cross-entropy weight 0.5" in card) == (weight > 0)
        models[weight] = load_checkpoint(path).model
    plain, multi = models[0.0], models[0.5]
    assert plain.state_dict().keys() == multi.state_dict().keys()  # the extra head is dropped
    assert any(not torch.equal(a, b) for a, b in zip(plain.state_dict().values(),
                                                       multi.state_dict().values()))


# --- corpus balance ----------------------------------------------------------------------

def test_the_segment_loss_balances_classes_moves_logits_by_the_margin_and_weighs_corpora():
    table = pd.DataFrame({"group": ["fsdd:a", "ocean:b"]})
    # fsdd: 1 synthetic + 2 genuine segments; ocean: 1 genuine, 1 synthetic
    labels = np.array([1, 0, 0, 0, 1])
    segments = SegmentSet(np.zeros((5, 1, 1)), labels, np.array([0, 0, 0, 1, 1]), np.zeros(5))
    rows = np.array([0, 1])  # a synthetic and a genuine fsdd segment, both at logit 0
    logits, target = torch.zeros(2), torch.tensor([1.0, 0.0])
    log2 = np.log(2.0)

    plain = _segment_loss(table, segments, 0.0, "class")
    # 3 genuine : 2 synthetic -> the synthetic term weighs 1.5
    assert float(plain(logits, target, rows)) == pytest.approx((1.5 * log2 + log2) / 2)
    # a margin moves each logit towards the wrong side: the synthetic one to -1
    shifted = _segment_loss(table, segments, 1.0, "class")(logits[:1], target[:1], rows[:1])
    assert float(shifted) == pytest.approx(1.5 * np.log1p(np.e))

    weights = corpus_balance_weights(table, segments)  # fsdd: synthetic 1.5, genuine 0.75
    assert weights[0] == pytest.approx(2 * weights[1])
    balanced = _segment_loss(table, segments, 0.0, "corpus")
    assert float(balanced(logits, target, rows)) == pytest.approx(
        log2 * (weights[0] + weights[1]) / 2)


def test_system_balance_weighs_every_synthetic_system_alike_and_the_classes_alike():
    table = pd.DataFrame({"system": ["bonafide", "bonafide", "hifigan", "hifigan", "world"]})
    # 4 genuine segments; hifigan: 6 synthetic segments, world: 2
    file_index = np.array([0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4])
    labels = (file_index >= 2).astype(int)
    segments = SegmentSet(np.zeros((12, 1, 1)), labels, file_index, np.zeros(12))
    weights = system_balance_weights(table, segments)

    assert weights[:4].tolist() == pytest.approx([1.0] * 4)
    assert weights[4:10].sum() == pytest.approx(2.0) and weights[10:].sum() == pytest.approx(2.0)
    assert weights[10] == pytest.approx(3 * weights[4])  # world's 2 segments weigh hifigan's 6
    one_system = segments.subset(file_index <= 3)  # hifigan alone: BCE's pos_weight, 4 / 6
    assert system_balance_weights(table, one_system)[4:].tolist() == pytest.approx([4 / 6] * 6)

    loss = _segment_loss(table, segments, 0.0, "system")
    target = torch.tensor([1.0, 1.0])
    expected = np.log(2.0) * (weights[4] + weights[10]) / 2
    assert float(loss(torch.zeros(2), target, np.array([4, 10]))) == pytest.approx(expected)


def test_corpus_and_system_balance_together_are_refused_before_any_work(tmp_path):
    table = pd.DataFrame({"path": ["missing.wav"], "label": ["real"], "system": ["bonafide"],
                          "group": ["a"]})
    config = TrainConfig(corpus_balance=True, system_balance=True)
    with pytest.raises(ValueError, match="choose one"):
        training.train(table, str(tmp_path / "x.safetensors"), config, log=lambda _: None)


def test_corpus_balance_evens_the_classes_inside_each_corpus():
    table = pd.DataFrame({"group": ["fsdd:jackson", "fsdd:theo", "ocean:7", "ocean:8", "solo"]})
    # fsdd: 3 genuine + 1 synthetic segment; ocean: 1 genuine + 3 synthetic; solo: genuine
    file_index = np.array([0, 0, 1, 1, 2, 3, 3, 3, 4, 4])
    labels = np.array([0, 0, 0, 1, 0, 1, 1, 1, 0, 0])
    segments = SegmentSet(np.zeros((10, 1, 1)), labels, file_index, np.zeros(10))
    weights = corpus_balance_weights(table, segments)

    assert weights.mean() == pytest.approx(1.0)
    for corpus in ([0, 1], [2, 3]):
        inside = np.isin(file_index, corpus)
        assert weights[inside & (labels == 0)].sum() == pytest.approx(
            weights[inside & (labels == 1)].sum())
        assert weights[inside].sum() == pytest.approx(inside.sum())  # its share is kept
    assert weights[3] == pytest.approx(3 * weights[0])  # fsdd's one synthetic segment: 3x
    assert weights[8:].tolist() == pytest.approx([1.0, 1.0])  # one class only: unchanged


@pytest.mark.parametrize("flag, card", [("corpus_balance", "balanced inside each corpus"),
                                        ("system_balance", "every synthetic system weighted")])
def test_balanced_training_runs_and_is_recorded(tmp_path, speechlike, write_audio, tiny_arch,
                                                flag, card):
    table = _twin_manifest(tmp_path, speechlike, write_audio)
    config = TrainConfig(epochs=1, batch_size=4, val_fraction=0.5, seed=3, arch=tiny_arch,
                         **{flag: True})
    summary = training.train(table, str(tmp_path / "model.safetensors"), config,
                             log=lambda _: None)
    assert summary["config"][flag] is True
    assert card in (tmp_path / "model.card.md").read_text()
    assert np.isfinite(summary["validation"]["file_eer"])


# --- weight averaging --------------------------------------------------------------------

def test_the_weight_average_is_the_mean_of_every_state_it_was_given(tiny_arch):
    states = []
    with torch.random.fork_rng():  # leave the global stream to the tests that follow
        for seed in (1, 2, 3):
            torch.manual_seed(seed)
            model = LCNN(tiny_arch)
            model.train()
            model(torch.randn(4, model.arch["n_mels"], 40))  # moves batch-norm statistics
            states.append(model)
    average = training.WeightAverage(states[0])
    for model in states:
        average.update(model)

    for key, value in average.model.state_dict().items():
        given = [model.state_dict()[key] for model in states]
        if value.is_floating_point():
            assert torch.allclose(value, torch.stack(given).mean(0), atol=1e-6), key
        else:  # step counters: the latest
            assert torch.equal(value, given[-1]), key
    assert average.count == 3


def test_averaged_training_keeps_the_average_and_says_so(tmp_path, speechlike, write_audio,
                                                         tiny_arch):
    table = _twin_manifest(tmp_path, speechlike, write_audio)
    config = TrainConfig(epochs=2, batch_size=4, val_fraction=0.5, seed=3, average_from=1,
                         patience=5, arch=tiny_arch)
    path = tmp_path / "model.safetensors"
    summary = training.train(table, str(path), config, log=lambda _: None)
    history = json.loads((tmp_path / "model.history.json").read_text())["history"]
    assert [record["averaged"] for record in history] == [True, True]
    assert summary["config"]["average_from"] == 1
    assert "weights averaged over every step from epoch 1" in (tmp_path / "model.card.md"
                                                               ).read_text()

    plain = tmp_path / "plain.safetensors"
    training.train(table, str(plain), TrainConfig(epochs=2, batch_size=4, val_fraction=0.5,
                                                  seed=3, patience=5, arch=tiny_arch),
                   log=lambda _: None)
    averaged, raw = (load_checkpoint(str(p)).model for p in (path, plain))
    assert any(not torch.equal(a, b) for a, b in zip(averaged.state_dict().values(),
                                                       raw.state_dict().values()))


def test_averaging_after_the_last_epoch_is_a_clear_error(tmp_path, speechlike, write_audio,
                                                         tiny_arch):
    table = _twin_manifest(tmp_path, speechlike, write_audio)
    config = TrainConfig(epochs=2, average_from=3, arch=tiny_arch)
    with pytest.raises(ValueError, match="after the last epoch"):
        training.train(table, str(tmp_path / "model.safetensors"), config, log=lambda _: None)


def _start_checkpoint(tmp_path, table, tiny_arch):
    """A checkpoint to fine-tune: one epoch on ``table`` with seed 3 and half the groups
    held out."""
    start = tmp_path / "start.safetensors"
    training.train(table, str(start), TrainConfig(epochs=1, batch_size=4, val_fraction=0.5,
                                                  seed=3, arch=tiny_arch), log=lambda _: None)
    return start


def test_fine_tuning_starts_from_the_checkpoints_weights(tmp_path, speechlike, write_audio,
                                                         tiny_arch):
    table = _twin_manifest(tmp_path, speechlike, write_audio)
    start = _start_checkpoint(tmp_path, table, tiny_arch)
    # no epoch to train: the starting weights are validated (epoch 0) and kept as they are
    config = TrainConfig(epochs=0, batch_size=4, val_fraction=0.5, seed=3, arch=tiny_arch,
                         init=str(start))
    lines = []
    summary = training.train(table, str(tmp_path / "tuned.safetensors"), config,
                             log=lines.append)
    history = json.loads((tmp_path / "tuned.history.json").read_text())["history"]
    assert [record["epoch"] for record in history] == [0]
    assert history[0]["train_loss"] is None
    # epoch 0 validates the starting weights: the checkpoint's own validation figures
    started = load_checkpoint(str(start)).metadata["provenance"]["validation"]
    assert history[0]["file_eer"] == pytest.approx(started["file_eer"])
    assert summary["best_epoch"] == 0
    tuned, original = (load_checkpoint(str(p)).model.state_dict()
                       for p in (tmp_path / "tuned.safetensors", start))
    assert all(torch.equal(tuned[k], original[k]) for k in original)
    assert summary["config"]["init"] == str(start)
    assert any(line.startswith("fine-tuning from") for line in lines)
    assert not any(line.startswith("warning") for line in lines)
    assert "no epoch beat them" in (tmp_path / "tuned.card.md").read_text()


def test_training_without_an_epoch_or_a_start_is_a_clear_error(tmp_path, speechlike,
                                                               write_audio, tiny_arch):
    table = _twin_manifest(tmp_path, speechlike, write_audio)
    with pytest.raises(ValueError, match="at least one epoch"):
        training.train(table, str(tmp_path / "model.safetensors"),
                       TrainConfig(epochs=0, arch=tiny_arch), log=lambda _: None)


def test_fine_tuning_trains_from_the_starting_weights_and_warns_of_another_split(
        tmp_path, speechlike, write_audio, tiny_arch, monkeypatch):
    table = _twin_manifest(tmp_path, speechlike, write_audio)
    start = _start_checkpoint(tmp_path, table, tiny_arch)
    first_epoch_weights = []
    train_epoch = training._train_epoch

    def recording_train_epoch(model, *args, **kwargs):
        if not first_epoch_weights:
            first_epoch_weights.append({k: v.clone() for k, v in model.state_dict().items()})
        return train_epoch(model, *args, **kwargs)

    monkeypatch.setattr(training, "_train_epoch", recording_train_epoch)
    lines = []
    config = TrainConfig(epochs=1, batch_size=4, val_fraction=0.5, seed=4, arch=tiny_arch,
                         init=str(start), patience=5)
    training.train(table, str(tmp_path / "tuned.safetensors"), config, log=lines.append)

    assert any("not trained with this validation split" in line for line in lines)
    original = load_checkpoint(str(start)).model.state_dict()
    assert all(torch.equal(first_epoch_weights[0][k], original[k]) for k in original)
    history = json.loads((tmp_path / "tuned.history.json").read_text())["history"]
    assert [record["epoch"] for record in history] == [0, 1]
    assert history[1]["train_loss"] > 0


def test_fine_tuning_another_architecture_is_a_clear_error(tmp_path, speechlike, write_audio,
                                                           tiny_arch):
    table = _twin_manifest(tmp_path, speechlike, write_audio)
    start = _start_checkpoint(tmp_path, table, tiny_arch)
    config = TrainConfig(epochs=1, val_fraction=0.5, seed=3, init=str(start),
                         arch=dict(tiny_arch, head="one-class"))
    with pytest.raises(ValueError, match="another architecture"):
        training.train(table, str(tmp_path / "tuned.safetensors"), config, log=lambda _: None)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot start from"):
        training.train(table, str(tmp_path / "tuned.safetensors"),
                       TrainConfig(epochs=1, init=str(broken), arch=tiny_arch),
                       log=lambda _: None)
