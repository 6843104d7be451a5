"""Train the LCNN on labelled genuine and synthetic speech.

Recipe (the bundled checkpoint's model card records the exact command):

1. Every labelled file is cut into 5 s segments exactly as the scanner cuts it
   (``audio.iter_segments``; short clips are tiled, never zero-padded) and turned into
   log-Mel features with ``features.log_mel``, so train-time and scan-time inputs match.
   Every file also gets ``augment_copies`` copies through a random channel (codec,
   band limit, noise, reverberation; ``augment.py``), genuine and synthetic alike.
2. Files are split into train and validation **by group** (speaker or source, see
   ``labels.read_labelled``); synthetic twins carry their original's group, so a twin
   never sits on the other side of the split from its original.
3. Training: random crops of ``crop_frames`` frames, SpecAugment-style time and
   frequency masks filled with the segment mean (SpecAverage), class-balanced BCE loss
   (with OC-softmax's margins when the model has the one-class head, ``model.logit_margin``),
   Adam. Validation on whole segments after every epoch: EER, AUC and accuracy at file
   and segment level; the epoch with the lowest validation EER is kept, and training
   stops after ``patience`` epochs without improvement.
4. The decision threshold is the file-level validation EER threshold.

Twin contrast (``twin_weight > 0``, opt-in): a synthetic twin (a row whose ``original``
column names a genuine file of the table) goes through exactly the same random channel as
its original, and every batch adds, for each synthetic segment, its original's segment at
the same position with the same crop and masks. The loss gains ``twin_weight`` times the
mean of ``softplus(z_original - z_twin)`` over those pairs: within a pair only the
generator differs, so the term rewards what the generator changed and nothing else
(speaker, words, corpus and channel are shared).

Sharpness-aware minimisation (``sam_rho > 0``, opt-in; Foret et al., ICLR 2021): every
step first moves the weights ``sam_rho`` along the normalised gradient, to the worst
point of a small ball around them, takes the gradient there, moves back and lets Adam
step with that gradient. It prefers flat minima, which are reported to carry better to
unseen spoofing systems (Shim et al., Interspeech 2023), at twice the cost per step.

System classification (``system_weight > 0``, opt-in; multi-task training as in Sun et al.,
CVPR Workshops 2023): a second, throw-away linear head on the LCNN's embedding names the
system that made each training segment ("genuine" or a synthetic row's ``system``), with
class-balanced cross-entropy weighted by ``system_weight``. Telling the generators apart
asks the embedding for each one's own traces rather than the single easiest cue that
separates all of them from genuine speech. The checkpoint keeps only the LCNN.

Corpus balance (``corpus_balance``, opt-in): the loss weighs every segment so that, inside
each corpus, genuine and synthetic segments count the same (``corpus_balance_weights``) in
place of the global class balance. Twins are made of only part of each corpus, so plain
weighting leaves "which corpus" predicting the label (speechocean762 has more synthetic
than genuine clips, FSDD three genuine to one); balanced, it predicts nothing.

System balance (``system_balance``, opt-in): the classes still weigh the same, and inside
the synthetic class every system does too (``system_balance_weights``), so the systems with
the most clips (two sets of published-HiFi-GAN twins, say) cannot crowd out the rest.

Weight averaging (``average_from > 0``, opt-in; dense averaging as in SWAD, Cha et al.,
NeurIPS 2021): from epoch ``average_from`` on, a copy of the model holds the running mean
of the weights and batch-norm statistics after every training step since that epoch
began (``WeightAverage``). That copy, not the raw model, is validated, kept and saved from
then on; earlier epochs are judged raw. Averaging along the path of the optimiser lands
in a wide, flat region of the loss, which is reported to carry better to unseen domains.

Fine-tuning (``init``, opt-in): training starts from a checkpoint's weights instead of
random ones, e.g. the bundled model taught a new generator while the table it learned
from stays in the data. The starting weights are validated first, as epoch 0, and are
kept unless an epoch beats them. Its validation split must be the one the checkpoint was
trained with (same ``seed`` and ``val_fraction``; the split hashes group names, so added
files do not move it), or the validation files may be ones the starting weights learned.
"""

import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, List, Optional, Sequence

import numpy as np

from .audio import iter_segments
from .features import frontend_hash, log_mel

Log = Callable[[str], None]


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run."""

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 6
    val_fraction: float = 0.15
    crop_frames: int = 300
    time_masks: int = 2
    time_mask_frames: int = 30
    freq_masks: int = 2
    freq_mask_bins: int = 10
    max_segments_per_file: int = 6
    augment_copies: int = 1  # channel-augmented copies of every file (see augment.py)
    seed: int = 0
    twin_weight: float = 0.0  # > 0: twin contrast (see the module docstring)
    channels: str = "standard"  # channel effects: a key of augment.CHANNEL_SETS
    sam_rho: float = 0.0  # > 0: sharpness-aware minimisation (see the module docstring)
    system_weight: float = 0.0  # > 0: system classification (see the module docstring)
    corpus_balance: bool = False  # genuine = synthetic inside each corpus (module docstring)
    system_balance: bool = False  # every synthetic system weighs the same (module docstring)
    average_from: int = 0  # > 0: judge and keep the weight average from this epoch on
    arch: dict = field(default_factory=dict)
    init: str = ""  # a checkpoint whose weights training starts from (fine-tuning)


@dataclass
class SegmentSet:
    """Features of every segment of a set of files, with their labels."""

    features: np.ndarray  # (n_segments, N_MELS, N_FRAMES), float16 to halve memory
    labels: np.ndarray  # (n_segments,), 1 = synthetic
    file_index: np.ndarray  # (n_segments,), row of the file in the table
    variant: np.ndarray  # (n_segments,), 0 = as recorded, k > 0 = k-th augmented copy

    def subset(self, mask: np.ndarray) -> "SegmentSet":
        return SegmentSet(self.features[mask], self.labels[mask], self.file_index[mask],
                          self.variant[mask])


def split_by_group(groups: Sequence[str], val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation rows: whole groups, chosen by a seeded hash.

    Hashing the group name (rather than shuffling) keeps a group's side stable when
    files are added to or removed from the data set.
    """
    def position(group):
        digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2 ** 64

    return np.array([position(group) < val_fraction for group in groups])


def extract_segments(paths: Sequence[str], labels: Sequence[int], jobs: int = 1,
                     max_segments_per_file: int = 6, augment_copies: int = 0, seed: int = 0,
                     cache_dir: Optional[str] = None, log: Log = print,
                     channel_keys: Optional[Sequence[str]] = None,
                     channels: str = "standard") -> SegmentSet:
    """Segment features for every file; unreadable files are logged and left out.

    Long files contribute at most ``max_segments_per_file`` segments, evenly spread, so a
    handful of long recordings cannot outweigh thousands of short clips. Each file also
    yields ``augment_copies`` copies through a random channel (``augment.random_channel``)
    seeded by ``(seed, row, copy)``: genuine and synthetic files alike. With
    ``channel_keys`` the channel is seeded by ``(seed, key, copy)`` instead, so files that
    share a key (a twin and its original) share their channels exactly. ``channels``
    names the set of effects (``augment.CHANNEL_SETS``).
    """
    from joblib import Parallel, delayed

    channel_seeds = list(range(len(paths))) if channel_keys is None else [
        int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") for key in channel_keys]
    key = hashlib.sha256(json.dumps([list(paths), list(map(int, labels)), frontend_hash(),
                                     max_segments_per_file, augment_copies, seed]
                                    + ([] if channel_keys is None else [channel_seeds])
                                    + ([] if channels == "standard" else [channels])
                                    ).encode()).hexdigest()[:20]
    cache = os.path.join(cache_dir, f"segments-{key}.npz") if cache_dir else None
    if cache and os.path.exists(cache):
        with np.load(cache) as data:
            log(f"features: loaded {len(data['labels'])} segments from {cache}")
            return SegmentSet(data["features"], data["labels"], data["file_index"],
                              data["variant"])
    started = time.time()
    chunks = [range(i, min(i + 64, len(paths))) for i in range(0, len(paths), 64)]
    features, seg_labels, file_index, variant = [], [], [], []
    failures = 0
    done = 0
    parallel = Parallel(n_jobs=jobs, return_as="generator")
    for chunk in parallel(delayed(_chunk_features)([paths[i] for i in rows], list(rows),
                                                   [channel_seeds[i] for i in rows], channels,
                                                   max_segments_per_file, augment_copies, seed)
                          for rows in chunks):
        for row, copies, error in chunk:
            if error:
                failures += 1
                log(f"  skipped {paths[row]}: {error}")
                continue
            for copy, feats in enumerate(copies):
                features.extend(feats)
                seg_labels.extend([labels[row]] * len(feats))
                file_index.extend([row] * len(feats))
                variant.extend([copy] * len(feats))
        done += len(chunk)
        log(f"features: {done}/{len(paths)} files, {len(features)} segments, "
            f"{time.time() - started:.0f} s")
    result = SegmentSet(np.stack(features).astype(np.float16), np.array(seg_labels, np.int64),
                        np.array(file_index, np.int64), np.array(variant, np.int64))
    if failures:
        log(f"features: {failures} unreadable files left out")
    if cache:
        os.makedirs(cache_dir, exist_ok=True)
        np.savez(cache + ".tmp.npz", features=result.features, labels=result.labels,
                 file_index=result.file_index, variant=result.variant)
        os.replace(cache + ".tmp.npz", cache)
    return result


def _chunk_features(paths, rows, channel_seeds, channels, max_segments, augment_copies, seed):
    from .audio import DecodeError, load_audio
    from .augment import CHANNEL_SETS, random_channel

    out = []
    for path, row, channel_seed in zip(paths, rows, channel_seeds):
        try:
            audio = load_audio(path)
        except (DecodeError, OSError, ValueError) as error:
            out.append((row, [], str(error)))
            continue
        if audio.size == 0 or not np.any(audio):
            out.append((row, [], "no audio"))
            continue
        copies = [audio] + [random_channel(audio,
                                           np.random.default_rng([seed, channel_seed, copy]),
                                           CHANNEL_SETS[channels])
                            for copy in range(1, augment_copies + 1)]
        out.append((row, [_segment_features(clip, max_segments) for clip in copies], ""))
    return out


def _segment_features(audio: np.ndarray, max_segments: int) -> List[np.ndarray]:
    feats = [log_mel(samples) for _, _, samples in iter_segments(iter([audio]))]
    if len(feats) > max_segments:
        keep = np.linspace(0, len(feats) - 1, max_segments).round().astype(int)
        feats = [feats[i] for i in keep]
    return [f.astype(np.float16) for f in feats]


def augment(batch, config: TrainConfig, generator, same_as=None):
    """Random crop plus SpecAverage time/frequency masks, on a (batch, mels, frames) tensor.

    ``same_as`` (a long tensor, one entry per row) makes rows share their crop and masks:
    row ``i`` gets the random draws of row ``same_as[i]``, which must come first. Without
    it every row draws its own.
    """
    import torch

    total, mels, frames = batch.shape
    same_as = torch.arange(total) if same_as is None else same_as
    n = int(same_as.max()) + 1  # rows with draws of their own
    crop = min(config.crop_frames, frames)
    starts = torch.randint(0, frames - crop + 1, (n,), generator=generator)[same_as]
    index = starts[:, None] + torch.arange(crop)[None, :]
    batch = torch.gather(batch, 2, index[:, None, :].expand(total, mels, crop)).clone()
    fill = batch.mean(dim=(1, 2), keepdim=True).expand_as(batch)
    for axis, count, width, size in ((2, config.time_masks, config.time_mask_frames, crop),
                                     (1, config.freq_masks, config.freq_mask_bins, mels)):
        for _ in range(count):
            widths = torch.randint(0, width + 1, (n,), generator=generator)
            starts = (torch.rand(n, generator=generator) * (size - widths)).long()[same_as]
            widths = widths[same_as]
            positions = torch.arange(size)[None, :]
            mask = (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])
            mask = mask[:, None, :] if axis == 2 else mask[:, :, None]
            batch = torch.where(mask.expand_as(batch), fill, batch)
    return batch


def original_rows(table) -> np.ndarray:
    """Row of each file's genuine original in ``table``, or -1.

    A synthetic row names its original in the ``original`` column; genuine rows, rows
    without the column and originals missing from the table get -1.
    """
    rows = np.full(len(table), -1, dtype=np.int64)
    if "original" not in table:
        return rows
    where = {path: row for row, path in enumerate(table["path"])}
    genuine = (table["label"] != "fake").to_numpy()
    for row, (label, original) in enumerate(zip(table["label"], table["original"])):
        source = where.get(original, -1) if label == "fake" and isinstance(original, str) else -1
        if source >= 0 and genuine[source]:
            rows[row] = source
    return rows


def twin_segments(data: SegmentSet, originals: np.ndarray) -> np.ndarray:
    """For each segment of a twin, the segment of its original at the same place, else -1.

    "The same place" is the same augmented copy and the same segment number in the file;
    a twin has its original's length, so its segments cover the same stretch of speech.
    Segments of a twin whose original was left out (unreadable) or is shorter get -1.
    """
    counted = {}  # (row, copy) -> segments seen so far
    places = []  # (row, copy, segment number) of every segment
    for row, copy in zip(data.file_index.tolist(), data.variant.tolist()):
        number = counted.get((row, copy), 0)
        counted[(row, copy)] = number + 1
        places.append((row, copy, number))
    where = {place: index for index, place in enumerate(places)}
    return np.array([where.get((originals[row], copy, number), -1) if originals[row] >= 0 else -1
                     for row, copy, number in places], dtype=np.int64)


class SystemTask:
    """The system-classification loss: a linear head naming each segment's system.

    Classes are "genuine" and every synthetic system of ``table``; each class weighs in
    inversely to its number of training segments, so the genuine majority and the largest
    generators do not drown the rest.
    """

    GENUINE = "genuine"

    def __init__(self, table, train_set: SegmentSet, embedding: int, weight: float):
        import torch

        names = np.where(table["label"] == "fake", table["system"].astype(str), self.GENUINE)
        self.classes, row_class = np.unique(names, return_inverse=True)
        if len(self.classes) < 3:
            raise ValueError("system classification needs at least two synthetic systems "
                             "(the 'system' column)")
        segment_class = row_class[train_set.file_index]
        counts = np.bincount(segment_class, minlength=len(self.classes))
        balance = len(segment_class) / (len(self.classes) * np.maximum(counts, 1))
        self.targets = torch.from_numpy(segment_class.astype(np.int64))
        self.cross_entropy = torch.nn.CrossEntropyLoss(
            weight=torch.tensor(balance, dtype=torch.float32))
        self.head = torch.nn.Linear(embedding, len(self.classes))
        self.weight = weight

    def loss(self, embedding, rows: np.ndarray):
        """Weighted loss for the training segments ``rows`` given their embeddings."""
        import torch

        return self.weight * self.cross_entropy(self.head(embedding),
                                                self.targets[torch.from_numpy(rows)])


def corpus_balance_weights(table, data: SegmentSet) -> np.ndarray:
    """Loss weight of each segment of ``data`` such that, inside every corpus, genuine and
    synthetic segments weigh the same and the corpus keeps its share of the total.

    The corpus is ``labels.corpus_names``'s (``group`` up to its first ':', as
    ``build-dataset`` writes groups). A corpus with one class only keeps weight 1 per
    segment before the weights are scaled to average 1.
    """
    import pandas as pd

    from .labels import corpus_names

    corpus = corpus_names(table).to_numpy()[data.file_index]
    cells = pd.DataFrame({"corpus": corpus, "label": data.labels})
    per_cell = cells.groupby(["corpus", "label"])["label"].transform("size")
    per_corpus = cells.groupby("corpus")["label"].transform("size")
    classes = cells.groupby("corpus")["label"].transform("nunique")
    weights = (per_corpus / (classes * per_cell)).to_numpy(dtype=np.float64)
    return (weights / weights.mean()).astype(np.float32)


def system_balance_weights(table, data: SegmentSet) -> np.ndarray:
    """Loss weight of each segment of ``data``: 1 for a genuine one; for a synthetic one,
    the genuine segments' count shared equally among the systems (the ``system`` column)
    and then among that system's segments. The classes weigh the same, as with BCE's
    ``pos_weight``, and so does every synthetic system."""
    return _class_weights(data.labels, table["system"].astype(str).to_numpy()[data.file_index])


def _class_weights(labels: np.ndarray, systems: np.ndarray) -> np.ndarray:
    """1 per genuine segment; the genuine count shared equally among the ``systems`` of
    the synthetic segments, then among each system's segments."""
    fake = labels == 1
    weights = np.ones(len(labels))
    if fake.any():
        names, which, counts = np.unique(systems[fake], return_inverse=True, return_counts=True)
        weights[fake] = max(int(np.sum(~fake)), 1) / (len(names) * counts[which])
    return weights.astype(np.float32)


def evaluate_segments(model, data: SegmentSet, batch_size: int = 128) -> np.ndarray:
    """Probabilities for every segment in ``data``."""
    import torch

    model.eval()
    scores = []
    with torch.no_grad():
        for start in range(0, len(data.labels), batch_size):
            batch = torch.from_numpy(data.features[start:start + batch_size].astype(np.float32))
            scores.append(torch.sigmoid(model(batch)).numpy())
    return np.concatenate(scores)


def validation_metrics(scores: np.ndarray, data: SegmentSet) -> dict:
    """Segment- and file-level EER/AUC; file score = max of its segments (as scanning)."""
    from .metrics import auc, eer

    seg_eer, _ = eer(data.labels, scores)
    # every augmented copy counts as a file of its own, scored like a scan would score it
    keys = data.file_index * 64 + data.variant
    files, inverse = np.unique(keys, return_inverse=True)
    file_scores = np.full(files.size, -np.inf)
    np.maximum.at(file_scores, inverse, scores)
    file_labels = np.zeros(files.size, dtype=np.int64)
    file_labels[inverse] = data.labels
    file_eer, file_threshold = eer(file_labels, file_scores)
    return {"segment_eer": float(seg_eer), "segment_auc": float(auc(data.labels, scores)),
            "file_eer": float(file_eer), "file_auc": float(auc(file_labels, file_scores)),
            "file_threshold": float(file_threshold),
            "file_accuracy": float(np.mean((file_scores >= file_threshold) == file_labels))}


def train(table, out_path: str, config: TrainConfig = TrainConfig(), jobs: int = 1,
          cache_dir: Optional[str] = None, command: str = "", log: Log = print) -> dict:
    """Train on ``table`` (columns ``path,label,system,group``) and save a checkpoint.

    Returns the training summary (also stored in the checkpoint's provenance and
    written beside it as ``<out>.history.json`` with a chart ``<out>.history.png``).
    """
    import torch

    from .augment import CHANNEL_SETS
    from .model import count_parameters, logit_margin

    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    if config.epochs < 1 and not config.init:
        raise ValueError("training needs at least one epoch (0 only validates an --init "
                         "checkpoint)")
    if config.average_from > config.epochs:
        raise ValueError(f"--average-from {config.average_from} is after the last epoch "
                         f"({config.epochs})")
    if config.corpus_balance and config.system_balance:
        raise ValueError("corpus balance and system balance weigh the segments two ways; "
                         "choose one")
    if config.channels not in CHANNEL_SETS:
        raise ValueError(f"unknown channel set {config.channels!r}; "
                         f"choose from {', '.join(sorted(CHANNEL_SETS))}")
    model = starting_model(config, log)  # before the features: a bad --init fails at once
    widths = "-".join(str(width) for width in [model.arch["stem"], *model.arch["blocks"]])
    log(f"model: LCNN, {count_parameters(model):,} parameters (widths {widths})")
    labels = (table["label"] == "fake").astype(int).to_numpy()
    is_val = split_by_group(table["group"].tolist(), config.val_fraction, config.seed)
    for name, mask in (("train", ~is_val), ("validation", is_val)):
        if len(set(labels[mask])) < 2:
            raise ValueError(f"the {name} split has only one class; add data or change the seed")
    paths = table["path"].tolist()
    channel_keys = originals = None
    if config.twin_weight > 0:
        originals = original_rows(table)
        if not np.any(originals >= 0):
            raise ValueError("twin contrast needs synthetic rows whose 'original' column "
                             "names a genuine file of the data")
        channel_keys = [paths[source] if source >= 0 else path
                        for path, source in zip(paths, originals)]
    data = extract_segments(paths, labels, jobs=jobs, cache_dir=cache_dir,
                            max_segments_per_file=config.max_segments_per_file,
                            augment_copies=config.augment_copies, seed=config.seed, log=log,
                            channel_keys=channel_keys, channels=config.channels)
    on_val = is_val[data.file_index]
    train_set, val_set = data.subset(~on_val), data.subset(on_val)
    partners = None if originals is None else twin_segments(train_set, originals)
    if partners is not None:
        log(f"twin contrast: {int(np.sum(partners >= 0))} training segments paired with "
            f"their original's")
    log(f"split: train {len(train_set.labels)} segments ({train_set.labels.mean():.0%} fake), "
        f"validation {len(val_set.labels)} segments ({val_set.labels.mean():.0%} fake), "
        f"{int(is_val.sum())} validation files")

    parameters, task = list(model.parameters()), None
    if config.system_weight > 0:
        task = SystemTask(table, train_set, model.arch["embedding"], config.system_weight)
        parameters += list(task.head.parameters())
        log(f"system classification: {len(task.classes)} classes "
            f"({', '.join(task.classes)}), weight {config.system_weight}")
    optimiser = torch.optim.Adam(parameters, lr=config.learning_rate,
                                 weight_decay=config.weight_decay)
    balance = ("corpus" if config.corpus_balance else
               "system" if config.system_balance else "class")
    loss_fn = _segment_loss(table, train_set, logit_margin(model.arch), balance)
    generator = torch.Generator().manual_seed(config.seed)
    history: List[dict] = []
    best = average = None
    started = time.time()

    def save():
        # after every improvement, so an interrupted run still leaves its best model
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(best["state"])
        summary = _summary(command, config, best, model, table, is_val, started)
        _save_outputs(out_path, model, summary, history, best["metrics"]["file_threshold"])
        model.load_state_dict(state)
        return summary

    if config.init:
        metrics = validation_metrics(evaluate_segments(model, val_set), val_set)
        history.append({"epoch": 0, "train_loss": None, "averaged": False, "elapsed_s": 0.0,
                        **metrics})
        log(f"epoch   0  (starting weights)  {_validation_figures(metrics)}")
        best = _kept_epoch(0, metrics, model)
    try:
        for epoch in range(1, config.epochs + 1):
            if epoch == config.average_from:
                average = WeightAverage(model)
            loss = _train_epoch(model, optimiser, loss_fn, train_set, config, generator,
                                partners, task, average)
            judged = model if average is None else average.model
            metrics = validation_metrics(evaluate_segments(judged, val_set), val_set)
            record = {"epoch": epoch, "train_loss": loss, "averaged": average is not None,
                      "elapsed_s": round(time.time() - started, 1), **metrics}
            history.append(record)
            log(f"epoch {epoch:3d}  loss {loss:.4f}  {_validation_figures(metrics)}"
                f"{'  (average)' if average is not None else ''}  ({record['elapsed_s']:.0f} s)")
            candidate = _kept_epoch(epoch, metrics, judged)
            if best is None or candidate["key"] < best["key"]:
                best = candidate
                save()
            elif epoch - best["epoch"] >= config.patience:
                log(f"early stop: no improvement for {config.patience} epochs")
                break
    except KeyboardInterrupt:
        if best is None:
            raise
        log(f"interrupted: keeping the best epoch so far ({best['epoch']})")
    summary = save()
    log(f"saved {out_path}: best epoch {best['epoch']}, validation file EER "
        f"{best['metrics']['file_eer']:.2%}, threshold {best['metrics']['file_threshold']:.4f}")
    return summary


def _validation_figures(metrics: dict) -> str:
    """An epoch's validation figures as the training log shows them."""
    return (f"val segment EER {metrics['segment_eer']:.2%}  file EER {metrics['file_eer']:.2%}"
            f"  file AUC {metrics['file_auc']:.4f}")


def _kept_epoch(epoch: int, metrics: dict, model) -> dict:
    """An epoch as training keeps its best: the figures it is ranked by (file EER, then
    segment EER, then AUC), and a copy of its weights."""
    return {"key": (metrics["file_eer"], metrics["segment_eer"], -metrics["file_auc"]),
            "epoch": epoch, "metrics": metrics,
            "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}


def starting_model(config: TrainConfig, log: Log = print):
    """A new LCNN with ``config.arch``, or with ``config.init`` that checkpoint's model.

    Raises
    ------
    ValueError
        If the checkpoint cannot be loaded or its architecture is not ``config.arch``'s.
    """
    from .checkpoint import ModelError
    from .model import LCNN, load_checkpoint

    model = LCNN(config.arch)
    if not config.init:
        return model
    try:
        start = load_checkpoint(config.init)
    except ModelError as error:
        raise ValueError(f"cannot start from {config.init}: {error}") from error
    if json.dumps(start.model.arch, sort_keys=True) != json.dumps(model.arch, sort_keys=True):
        raise ValueError(f"{config.init} is another architecture ({start.model.arch}) than "
                         f"the one asked for ({model.arch})")
    trained = start.metadata.get("provenance", {}).get("config", {})
    split = (trained.get("seed"), trained.get("val_fraction"))
    if split != (config.seed, config.val_fraction):
        log(f"warning: {config.init} was not trained with this validation split (its seed "
            f"and fraction: {split[0]}, {split[1]}): validation files may be ones it learned")
    log(f"fine-tuning from {config.init}")
    return start.model


def _segment_loss(table, train_set: SegmentSet, margin: float, balance: str = "class"):
    """The loss of a batch, ``loss_fn(logits, target, rows)``: binary cross-entropy of the
    logits moved ``margin`` towards the wrong side (0 = plain BCE; > 0 = OC-softmax, see
    model.OneClassHead), each segment weighted so that the classes weigh the same overall
    (``balance`` "class"), inside each corpus ("corpus", ``corpus_balance_weights``) or
    overall with every synthetic system alike ("system", ``system_balance_weights``).
    ``rows`` index ``train_set``."""
    import torch

    if balance == "corpus":
        weights = corpus_balance_weights(table, train_set)
    elif balance == "system":
        weights = system_balance_weights(table, train_set)
    else:  # one synthetic "system": a synthetic segment weighs genuine / synthetic (pos_weight)
        weights = _class_weights(train_set.labels, np.zeros(len(train_set.labels)))
    weights = torch.from_numpy(weights)
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")

    def loss_fn(logits, target, rows):
        shifted = logits - margin * (2 * target - 1)
        return (bce(shifted, target) * weights[torch.from_numpy(np.asarray(rows))]).mean()
    return loss_fn


def _train_epoch(model, optimiser, loss_fn, train_set: SegmentSet, config: TrainConfig,
                 generator, partners: Optional[np.ndarray] = None,
                 task: Optional[SystemTask] = None,
                 average: Optional["WeightAverage"] = None) -> float:
    import torch
    from torch.nn.functional import softplus

    model.train()
    trainee = model if task is None else torch.nn.ModuleList([model, task.head])  # for SAM
    order = torch.randperm(len(train_set.labels), generator=generator).numpy()
    losses = []
    for start in range(0, len(order), config.batch_size):
        rows = np.sort(order[start:start + config.batch_size])
        if len(rows) < 2:
            continue  # batch norm needs two samples
        target = torch.from_numpy(train_set.labels[rows].astype(np.float32))
        # twins in the batch bring their originals, cropped and masked alike (see the top)
        twins = rows[partners[rows] >= 0] if partners is not None else rows[:0]
        originals = partners[twins] if len(twins) else twins
        same_as = np.concatenate([np.arange(len(rows)), np.searchsorted(rows, twins)])
        batch = torch.from_numpy(
            train_set.features[np.concatenate([rows, originals])].astype(np.float32))
        inputs = augment(batch, config, generator, torch.from_numpy(same_as))

        def batch_loss():
            embedding = model.embed(inputs)
            logits = model.head[-1](embedding).squeeze(1)  # = model(inputs)
            loss = loss_fn(logits[:len(rows)], target, rows)
            if task is not None:
                loss = loss + task.loss(embedding[:len(rows)], rows)
            if len(twins):
                twin_logits = logits[torch.from_numpy(same_as[len(rows):])]
                original_logits = logits[len(rows):]
                loss = loss + config.twin_weight * softplus(original_logits - twin_logits).mean()
            return loss

        optimiser.zero_grad()
        loss = batch_loss()
        loss.backward()
        if config.sam_rho > 0:
            sharpness_aware_gradient(trainee, batch_loss, config.sam_rho)
        optimiser.step()
        if average is not None:
            average.update(model)
        losses.append(loss.item())
    return float(np.mean(losses))


class WeightAverage:
    """A copy of a model holding the running mean of its states (weights, batch-norm
    statistics) since the copy was made; ``update`` after every optimiser step.

    Integer buffers (batch norm's step counters) take the latest value.
    """

    def __init__(self, model):
        import copy

        self.model = copy.deepcopy(model)
        self.count = 0

    def update(self, model) -> None:
        import torch

        self.count += 1
        with torch.no_grad():
            for mean, value in zip(self.model.state_dict().values(),
                                   model.state_dict().values()):
                if mean.is_floating_point():
                    mean.add_(value - mean, alpha=1.0 / self.count)
                else:
                    mean.copy_(value)


def sharpness_aware_gradient(model, batch_loss: Callable, rho: float) -> None:
    """Replace the gradients in ``model`` by those at the worst nearby point (SAM).

    Expects the gradients of ``batch_loss()`` at the current weights. The weights move
    ``rho`` along the normalised gradient, the loss is differentiated again there, and
    the weights and buffers (batch norm's running statistics) are put back exactly as
    they were: only the gradients change.
    """
    import torch

    params = [p for p in model.parameters() if p.grad is not None]
    saved = [p.detach().clone() for p in params]
    buffers = [(b, b.clone()) for b in model.buffers()]
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
    try:
        with torch.no_grad():
            for param in params:
                param.add_(param.grad * (rho / (norm + 1e-12)))
        model.zero_grad()
        batch_loss().backward()
    finally:
        with torch.no_grad():
            for param, value in zip(params, saved):
                param.copy_(value)
            for buffer, value in buffers:
                buffer.copy_(value)


def _summary(command, config, best, model, table, is_val, started) -> dict:
    import torch

    from .model import count_parameters

    return {
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "config": asdict(config),
        "best_epoch": best["epoch"],
        "validation": best["metrics"],
        "parameters": count_parameters(model),
        "data": _data_summary(table, is_val),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "train_seconds": round(time.time() - started, 1),
    }


def _save_outputs(out_path: str, model, summary: dict, history: List[dict],
                  threshold: float) -> None:
    from .model import save_checkpoint

    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    save_checkpoint(out_path, model, threshold=threshold, provenance=summary)
    stem = os.path.splitext(out_path)[0]
    with open(stem + ".history.json", "w") as handle:
        json.dump({"summary": summary, "history": history}, handle, indent=2, sort_keys=True)
    plot_history(history, stem + ".history.png")
    with open(stem + ".card.md", "w") as handle:
        handle.write(model_card(summary, threshold=threshold))


def _data_summary(table, is_val) -> dict:
    summary = {}
    for split, mask in (("train", ~is_val), ("validation", is_val)):
        part = table[mask]
        summary[split] = {
            "files": int(len(part)),
            "groups": int(part["group"].nunique()),
            "by_system": {str(k): int(v)
                          for k, v in part["system"].value_counts().sort_index().items()},
        }
    return summary


def model_card(summary: dict, threshold: float) -> str:
    """Markdown description of a trained checkpoint: data, recipe, validation figures."""
    validation = summary["validation"]
    config = summary["config"]
    optimiser = "Adam"
    if config.get("sam_rho"):
        optimiser += f" with sharpness-aware minimisation (rho {config['sam_rho']})"
    if config.get("corpus_balance"):
        optimiser += ", genuine and synthetic balanced inside each corpus"
    if config.get("system_balance"):
        optimiser += ", every synthetic system weighted the same"
    if config.get("system_weight"):
        optimiser += (f", plus a system-classification head (cross-entropy weight "
                      f"{config['system_weight']}, not kept)")
    if config.get("average_from"):
        kept = "averaged" if summary["best_epoch"] >= config["average_from"] else "raw"
        optimiser += (f", weights averaged over every step from epoch "
                      f"{config['average_from']} on (the kept epoch is {kept})")
    if config.get("init"):
        optimiser += f", starting from the weights of {config['init']}"
        if summary["best_epoch"] == 0:
            optimiser += " (no epoch beat them: they are kept as they were)"
    lines = [
        "# fscan LCNN: model card",
        "",
        "Light CNN with Max-Feature-Map activations scoring 5 s segments of 16 kHz speech "
        "(80-bin log-Mel). Output: probability that the segment is synthetic.",
        "",
        f"- Trained: {summary['trained_at']} with torch {summary['torch']}, "
        f"{summary['train_seconds']:.0f} s, best epoch {summary['best_epoch']}",
        f"- Command: `{summary['command']}`",
        f"- Parameters: {summary['parameters']:,}",
        f"- Decision threshold: {threshold:.4f} (file-level EER point on the validation split)",
        f"- Recipe: random {config['crop_frames']}-frame crops, {config['time_masks']} time and "
        f"{config['freq_masks']} frequency SpecAverage masks, {config['augment_copies']} "
        f"channel-augmented copy per clip (both classes), class-balanced BCE, {optimiser} "
        f"(lr {config['learning_rate']}), early stopping on validation EER "
        f"(patience {config['patience']}), seed {config['seed']}",
        "",
        "## Validation split (held-out speakers/sources of the training data)",
        "",
        "| level | EER | AUC |",
        "|---|---:|---:|",
        f"| segment | {validation['segment_eer']:.2%} | {validation['segment_auc']:.4f} |",
        f"| file | {validation['file_eer']:.2%} | {validation['file_auc']:.4f} |",
        "",
        "## Training data (files per system)",
        "",
        "| system | train | validation |",
        "|---|---:|---:|",
    ]
    data = summary["data"]
    systems = sorted(set(data["train"]["by_system"]) | set(data["validation"]["by_system"]))
    for system in systems:
        lines.append(f"| {system} | {data['train']['by_system'].get(system, 0)} | "
                     f"{data['validation']['by_system'].get(system, 0)} |")
    lines.append(f"| **groups** | {data['train']['groups']} | {data['validation']['groups']} |")
    return "\n".join(lines) + "\n"


def plot_history(history: Sequence[dict], path: str) -> None:
    """Loss and validation EER/AUC per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    trained = [h for h in history if h["train_loss"] is not None]  # not fine-tuning's epoch 0
    left.plot([h["epoch"] for h in trained], [h["train_loss"] for h in trained], marker="o")
    left.set(xlabel="epoch", ylabel="training loss (BCE)", title="Training loss")
    right.plot(epochs, [100 * h["segment_eer"] for h in history], marker="o", label="segment EER")
    right.plot(epochs, [100 * h["file_eer"] for h in history], marker="s", label="file EER")
    right.plot(epochs, [100 * (1 - h["file_auc"]) for h in history], ls="--", label="100·(1-AUC)")
    right.set(xlabel="epoch", ylabel="%", title="Validation (held-out speakers)")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
