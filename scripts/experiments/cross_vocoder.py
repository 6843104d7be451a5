"""Cross-vocoder screen: can a front end learn neural-vocoder artefacts that transfer?

Train on genuine clips and their HiFi-GAN-like twins (training speaker groups only);
validate on Vocos-like twins and their originals from the held-out groups, a vocoder
the model never saw. A NAME containing "rev" swaps the two vocoders. Selection proxy
for unseen generators that never touches eval_public.

Usage: python scripts/experiments/cross_vocoder.py NAME KIND FLOOR [EPOCHS [lcnn|resnet]]

SEEN, UNSEEN and MANIFEST (environment) name other systems and another table, e.g.
SEEN=hifigan_v1 UNSEEN=hifigan_v1 MANIFEST=work/dataset/MANIFEST_hifigan_v1.csv: can a
front end learn the published HiFi-GAN's artefacts at all (held-out speakers, same
vocoder)?
"""
import importlib.util
import json
import os
import sys

import torch

name, kind, floor = sys.argv[1], sys.argv[2], float(sys.argv[3])
epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 8
arch = sys.argv[5] if len(sys.argv) > 5 else "lcnn"
spec = importlib.util.spec_from_file_location("variants", "scripts/experiments/frontend_variants.py")
lib = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lib)
from forensics_scan import training
from forensics_scan.labels import read_labelled
from forensics_scan.model import LCNN

training.log_mel = lib.make_log_feats(kind, floor)
training.frontend_hash = lambda: f"screen-{kind}-{floor:g}"
t = read_labelled(os.environ.get("MANIFEST", "work/dataset/MANIFEST.csv"))
is_val_group = training.split_by_group(t["group"].tolist(), 0.15, 0)
seen, unseen = ("hifigan_like", "vocos_like") if "rev" not in name else ("vocos_like", "hifigan_like")
seen, unseen = os.environ.get("SEEN", seen), os.environ.get("UNSEEN", unseen)
orig_seen = set(t.original[t.system == seen]); orig_unseen = set(t.original[t.system == unseen])
train_rows = (~is_val_group) & ((t.system == seen) | t.path.isin(orig_seen)).to_numpy()
val_rows = is_val_group & ((t.system == unseen) | t.path.isin(orig_unseen)).to_numpy()
sub = t[train_rows | val_rows].reset_index(drop=True)
is_val = (val_rows[train_rows | val_rows])
labels = (sub.label == "fake").astype(int).to_numpy()
data = training.extract_segments(sub.path.tolist(), labels, jobs=1, augment_copies=1, seed=0,
                                 cache_dir="work/screen/cache", log=lambda m: None)
on_val = is_val[data.file_index]
tr, va = data.subset(~on_val), data.subset(on_val & (data.variant == 0))
print(f"{name}: train {len(tr.labels)} seg, val {len(va.labels)} seg ({va.labels.mean():.0%} fake)", flush=True)
torch.manual_seed(0)  # the same initial weights for every front end
if arch == "resnet":
    sys.path.insert(0, "scripts/experiments")
    from resnet import ResNet

    model = ResNet()
else:
    model = LCNN()
print(f"{arch}: {sum(p.numel() for p in model.parameters()):,} parameters", flush=True)
hist = lib.train_and_validate(model, tr, va, epochs, "unseen-vocoder val")
json.dump(hist, open(f"work/screen/{name}.json", "w"), indent=1)
