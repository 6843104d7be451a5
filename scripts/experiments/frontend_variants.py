"""Front-end variants for screening experiments (not used by fscan itself).

``make_log_feats(kind, floor, norm)`` mirrors ``features.log_mel`` with a Mel ("mel") or
linear-frequency ("linear", triangular bands equally spaced 0-8 kHz) filterbank, a
relative log floor, and either the segment mean ("global") or each band's mean ("band")
subtracted. The screens in this folder swap it into ``training`` to compare front ends
on the training data's own validation splits (never on eval_public).
"""
import numpy as np
from forensics_scan import features
N = features.N_FFT

def linear_basis(n_bands=80):
    bins = np.linspace(0, 8000, 1 + N // 2)
    edges = np.linspace(0, 8000, n_bands + 2)
    w = np.diff(edges)
    d = edges[:, None] - bins[None, :]
    return np.maximum(0, np.minimum(-d[:-2] / w[:-1, None], d[2:] / w[1:, None])).astype(np.float32)

def make_log_feats(kind, floor, norm='global'):
    basis = features._mel_basis() if kind == "mel" else linear_basis()
    basis = basis / basis.sum(axis=1, keepdims=True)
    def log_feats(segments):
        single = segments.ndim == 1
        spec = features.stft(np.atleast_2d(segments))
        power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
        m = np.matmul(basis, power.transpose(0, 2, 1))
        m += floor * m.mean(axis=(1, 2), keepdims=True) + np.float32(1e-20)
        lm = np.log(m)
        lm -= lm.mean(axis=(1, 2) if norm == 'global' else 2, keepdims=True)
        return lm[0] if single else lm
    return log_feats


def train_and_validate(model, train_set, val_set, epochs, label, extra=None):
    """Train ``model`` like ``fscan train`` does (crops, SpecAverage, class-balanced BCE,
    Adam) and return the validation metrics of every epoch, printing each.

    ``extra(scores, val_set)`` may add figures to an epoch's record. Seed torch before
    building ``model``: its initial weights and the dropout draws follow that seed.
    """
    import torch

    from forensics_scan import training

    config = training.TrainConfig(seed=0)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate,
                                 weight_decay=config.weight_decay)
    n_fake = train_set.labels.sum()
    pos_weight = torch.tensor((len(train_set.labels) - n_fake) / n_fake, dtype=torch.float32)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    generator = torch.Generator().manual_seed(0)
    history = []
    for epoch in range(1, epochs + 1):
        loss = training._train_epoch(model, optimiser, loss_fn, train_set, config, generator)
        scores = training.evaluate_segments(model, val_set)
        metrics = training.validation_metrics(scores, val_set)
        metrics.update(extra(scores, val_set) if extra else {})
        history.append({"epoch": epoch, "loss": loss, **metrics})
        print(f"epoch {epoch} loss {loss:.4f} {label} seg EER {metrics['segment_eer']:.2%} "
              f"file EER {metrics['file_eer']:.2%} AUC {metrics['file_auc']:.4f}", flush=True)
    return history
