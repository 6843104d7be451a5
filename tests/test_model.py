"""LCNN architecture and checkpoint loading (forensics_scan/model.py)."""

import json
import os
import pickle

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from forensics_scan.features import N_FRAMES, N_MELS
from forensics_scan.model import (BUNDLED_NAME, LCNN, ONE_CLASS, LCNNEnsemble, MaxFeatureMap,
                                  ModelError, OneClassHead, bundled_model_path,
                                  count_parameters, load_checkpoint, logit_margin,
                                  save_checkpoint, save_ensemble, unpack_ensemble)


def _features(batch, frames=N_FRAMES, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, N_MELS, frames, generator=generator)


def _rewrite(source, target, edit_metadata=None, edit_state=None, raw_metadata=None):
    """Copy a checkpoint, changing its tensors and/or its fscan metadata."""
    state = load_file(source)
    with safe_open(source, framework="pt") as handle:
        metadata = json.loads(handle.metadata()["fscan"])
    if edit_metadata:
        edit_metadata(metadata)
    if edit_state:
        edit_state(state)
    text = raw_metadata if raw_metadata is not None else json.dumps(metadata)
    save_file(state, str(target), metadata={"fscan": text})
    return str(target)


# --- architecture ------------------------------------------------------------------------

@pytest.mark.parametrize("frames", [N_FRAMES, 101, 1001])
def test_forward_gives_one_logit_per_item(tiny_arch, frames):
    torch.manual_seed(0)
    model = LCNN(tiny_arch).eval()

    with torch.no_grad():
        logits = model(_features(3, frames))

    assert logits.shape == (3,)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("arch", [{}, {"head": "one-class"}, {"band_norm": True}])
def test_the_last_layer_on_the_embedding_is_the_forward_pass(tiny_arch, arch):
    torch.manual_seed(0)
    model = LCNN(dict(tiny_arch, **arch)).eval()
    features = _features(3)

    with torch.no_grad():
        embedding = model.embed(features)
        logits = model(features)

    assert embedding.shape == (3, model.arch["embedding"])
    assert torch.allclose(model.head[-1](embedding).squeeze(1), logits)


def test_default_architecture_is_small_and_runs():
    model = LCNN().eval()

    with torch.no_grad():
        logits = model(_features(2))

    assert logits.shape == (2,)
    assert count_parameters(model) < 1_000_000


def test_band_norm_ignores_a_fixed_spectral_colouring(tiny_arch):
    """A constant per-band offset in log-Mel is a fixed EQ or microphone response: with
    band_norm it cannot move the logit; without it, it does."""
    torch.manual_seed(0)
    features = _features(3)
    colouring = torch.linspace(-6.0, 6.0, N_MELS)[None, :, None]
    plain = LCNN(tiny_arch).eval()
    torch.manual_seed(0)
    normed = LCNN(dict(tiny_arch, band_norm=True)).eval()

    with torch.no_grad():
        assert torch.allclose(normed(features), normed(features + colouring), atol=1e-4)
        assert not torch.allclose(plain(features), plain(features + colouring), atol=1e-2)
    assert "band_norm" not in plain.arch  # checkpoints without it load and score as before


def test_max_feature_map_halves_channels():
    x = torch.randn(2, 6, 5, 7)

    y = MaxFeatureMap()(x)

    assert y.shape == (2, 3, 5, 7)
    assert torch.equal(y, torch.maximum(x[:, :3], x[:, 3:]))
    flat = torch.randn(4, 10)
    assert torch.equal(MaxFeatureMap()(flat), torch.maximum(flat[:, :5], flat[:, 5:]))


def test_mismatched_arch_is_rejected():
    with pytest.raises(ValueError):
        LCNN({"blocks": [4, 4], "pool": [True]})
    with pytest.raises(ValueError, match="unknown head 'softmax'"):
        LCNN({"head": "softmax"})


def test_one_class_head_scores_direction_only_within_its_bounds():
    torch.manual_seed(2)
    head = OneClassHead(8, **ONE_CLASS)
    x = torch.randn(6, 8)
    direction = head.direction.detach()

    logits = head(x)

    assert logits.shape == (6, 1)
    assert torch.allclose(head(7.5 * x), logits, atol=1e-5)  # length does not count
    scale, centre = ONE_CLASS["scale"], 0.55
    assert torch.allclose(head(direction), torch.tensor([[scale * (centre - 1)]]))
    assert torch.allclose(head(-direction), torch.tensor([[scale * (centre + 1)]]))
    assert bool(((logits >= scale * (centre - 1) - 1e-4)
                 & (logits <= scale * (centre + 1) + 1e-4)).all())


def test_shifted_bce_is_oc_softmax():
    """Training's loss for the one-class head equals the published OC-softmax loss."""
    torch.manual_seed(3)
    model = LCNN({"stem": 4, "blocks": [4], "pool": [True], "head": "one-class"}).eval()
    head = model.head[-1]
    embeddings = torch.randn(10, model.arch["embedding"])
    target = torch.tensor([0, 1] * 5, dtype=torch.float32)
    cosine = torch.nn.functional.cosine_similarity(embeddings, head.direction, dim=1)
    margins = torch.where(target == 0, ONE_CLASS["genuine_margin"],
                          ONE_CLASS["synthetic_margin"])
    sign = 1 - 2 * target  # (-1)^y
    published = torch.nn.functional.softplus(ONE_CLASS["scale"] * (margins - cosine) * sign)

    margin = logit_margin(model.arch)
    ours = torch.nn.functional.binary_cross_entropy_with_logits(
        head(embeddings).squeeze(1) - margin * (2 * target - 1), target, reduction="none")

    assert margin == pytest.approx(7.0)
    assert logit_margin(LCNN({"stem": 4, "blocks": [4], "pool": [True]}).arch) == 0.0
    assert torch.allclose(ours, published, atol=1e-5)


# --- checkpoints -------------------------------------------------------------------------

@pytest.mark.parametrize("head", ["linear", "one-class"])
def test_save_load_round_trip_is_exact(tmp_path, tiny_arch, head):
    torch.manual_seed(1)
    model = LCNN(dict(tiny_arch, head=head)).eval()
    path = str(tmp_path / "model.safetensors")
    features = _features(4, seed=3)

    save_checkpoint(path, model, threshold=0.37, provenance={"test": True, "epochs": 2})
    detector = load_checkpoint(path)

    with torch.no_grad():
        expected = torch.sigmoid(model(features))
    assert torch.equal(detector.score(features), expected)
    assert not detector.model.training
    assert detector.threshold == pytest.approx(0.37)
    assert detector.metadata["provenance"] == {"test": True, "epochs": 2}
    assert detector.model.arch == model.arch
    assert len(detector.sha256) == 64 and detector.path == path


def test_scores_are_deterministic(tiny_checkpoint):
    features = _features(5)
    first = load_checkpoint(tiny_checkpoint).score(features)
    second = load_checkpoint(tiny_checkpoint).score(features)

    assert torch.equal(first, second)
    assert ((first >= 0) & (first <= 1)).all()


def test_foreign_front_end_is_refused(tmp_path, tiny_checkpoint):
    def other_front_end(metadata):
        metadata["frontend"]["hop_length"] = 256

    path = _rewrite(tiny_checkpoint, tmp_path / "other.safetensors", other_front_end)

    with pytest.raises(ModelError, match="front-end"):
        load_checkpoint(path)


@pytest.mark.parametrize("edit, raw", [
    (lambda m: m.update(format="someone-else/1"), None),
    (lambda m: m.update(arch={"stem": 4, "blocks": [8, 8], "pool": [True, True]}), None),
    (lambda m: m.update(arch="lcnn"), None),
    (lambda m: m.pop("threshold"), None),
    (None, "{not json"),
    (None, "[1, 2, 3]"),  # valid JSON, not an object: was an AttributeError
])
def test_damaged_metadata_is_refused(tmp_path, tiny_checkpoint, edit, raw):
    path = _rewrite(tiny_checkpoint, tmp_path / "bad.safetensors", edit, raw_metadata=raw)

    with pytest.raises(ModelError):
        load_checkpoint(path)


def test_missing_tensor_is_refused(tmp_path, tiny_checkpoint):
    def drop_one(state):
        state.pop(sorted(state)[0])

    path = _rewrite(tiny_checkpoint, tmp_path / "partial.safetensors", edit_state=drop_one)

    with pytest.raises(ModelError):
        load_checkpoint(path)


def test_safetensors_without_fscan_metadata_is_refused(tmp_path):
    path = str(tmp_path / "plain.safetensors")
    save_file({"weight": torch.zeros(3)}, path)

    with pytest.raises(ModelError):
        load_checkpoint(path)


@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.5, 0.999])
def test_truncated_checkpoint_is_refused(tmp_path, tiny_checkpoint, fraction):
    data = open(tiny_checkpoint, "rb").read()
    path = tmp_path / "truncated.safetensors"
    path.write_bytes(data[:int(len(data) * fraction)])

    with pytest.raises(ModelError):
        load_checkpoint(str(path))


def test_random_bytes_are_refused(tmp_path, rng):
    path = tmp_path / "random.safetensors"
    path.write_bytes(rng.bytes(50_000))

    with pytest.raises(ModelError):
        load_checkpoint(str(path))


def test_torch_pickle_checkpoint_is_refused(tmp_path, tiny_arch):
    torch.manual_seed(0)
    path = str(tmp_path / "state.pt")
    torch.save(LCNN(tiny_arch).state_dict(), path)

    with pytest.raises(ModelError):
        load_checkpoint(path)


class _Payload:
    """Unpickling this creates ``marker``: stands in for arbitrary code execution."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_malicious_pickle_never_runs(tmp_path, writer):
    proof = str(tmp_path / "proof-the-payload-works")
    pickle.loads(pickle.dumps(_Payload(proof))).close()
    assert os.path.exists(proof)  # the payload is live: unpickling it does run code

    marker = str(tmp_path / "pwned")
    path = str(tmp_path / "lcnn.safetensors")
    if writer == "pickle":
        with open(path, "wb") as handle:
            pickle.dump({"model": _Payload(marker)}, handle)
    else:
        torch.save({"model": _Payload(marker)}, path)

    with pytest.raises(ModelError):
        load_checkpoint(path)
    assert not os.path.exists(marker)


# --- ensembles ---------------------------------------------------------------------------

def _member(tmp_path, tiny_arch, seed, config=None, **arch):
    """A random tiny LCNN saved with ``provenance.config = config``; returns its path."""
    torch.manual_seed(seed)
    path = str(tmp_path / f"member{seed}.safetensors")
    provenance = {"config": config or {"val_fraction": 0.15, "seed": 0},
                  "trained_at": f"2026-01-0{seed}T00:00:00Z"}
    save_checkpoint(path, LCNN(dict(tiny_arch, **arch)).eval(), 0.7, provenance)
    return path


def test_an_ensemble_scores_the_mean_of_its_members_logits(tmp_path, tiny_arch):
    paths = [_member(tmp_path, tiny_arch, 1), _member(tmp_path, tiny_arch, 2, head="one-class")]
    members = [load_checkpoint(path).model for path in paths]
    out = str(tmp_path / "ensemble.safetensors")

    save_ensemble(paths, out, command="fscan ensemble a b")
    detector = load_checkpoint(out)

    features = _features(3)
    with torch.no_grad():
        expected = torch.sigmoid((members[0](features) + members[1](features)) / 2)
    assert isinstance(detector.model, LCNNEnsemble)
    torch.testing.assert_close(detector.score(features), expected)
    # a placeholder until calibrated; the members' own thresholds (0.7) are not it
    assert detector.threshold == 0.5
    assert count_parameters(detector.model) == sum(map(count_parameters, members))


def test_an_ensemble_records_its_members_and_their_common_split(tmp_path, tiny_arch):
    paths = [_member(tmp_path, tiny_arch, 1), _member(tmp_path, tiny_arch, 2)]
    out = str(tmp_path / "ensemble.safetensors")

    save_ensemble(paths, out, command="fscan ensemble a b")
    provenance = load_checkpoint(out).metadata["provenance"]

    assert [member["sha256"] for member in provenance["members"]] == [
        load_checkpoint(path).sha256 for path in paths]
    assert provenance["config"] == {"val_fraction": 0.15, "seed": 0}  # calibrate --split works
    assert provenance["trained_at"] == "2026-01-02T00:00:00Z"  # the newest member
    assert provenance["command"] == "fscan ensemble a b"


def test_members_with_different_splits_leave_the_split_unrecorded(tmp_path, tiny_arch):
    paths = [_member(tmp_path, tiny_arch, 1),
             _member(tmp_path, tiny_arch, 2, config={"val_fraction": 0.15, "seed": 1})]
    out = str(tmp_path / "ensemble.safetensors")

    save_ensemble(paths, out)

    assert "config" not in load_checkpoint(out).metadata["provenance"]


def test_an_ensemble_member_that_is_an_ensemble_is_unpacked(tmp_path, tiny_arch):
    pair = str(tmp_path / "pair.safetensors")
    save_ensemble([_member(tmp_path, tiny_arch, 1), _member(tmp_path, tiny_arch, 2)], pair)
    out = str(tmp_path / "three.safetensors")

    save_ensemble([pair, _member(tmp_path, tiny_arch, 3, blocks=[4, 4], pool=[True, False])],
                  out)

    model = load_checkpoint(out).model
    assert len(model.members) == 3
    assert model.members[2].arch["blocks"] == [4, 4]


def test_an_ensemble_needs_two_different_checkpoints(tmp_path, tiny_arch):
    path = _member(tmp_path, tiny_arch, 1)
    out = str(tmp_path / "ensemble.safetensors")

    with pytest.raises(ModelError, match="at least two"):
        save_ensemble([path], out)
    with pytest.raises(ModelError, match="twice"):
        save_ensemble([path, path], out)
    with pytest.raises(ValueError, match="at least two"):
        LCNNEnsemble({"members": [tiny_arch]})
    assert not os.path.exists(out)


def test_an_ensemble_checkpoint_with_a_missing_member_is_refused(tmp_path, tiny_arch):
    out = str(tmp_path / "ensemble.safetensors")
    save_ensemble([_member(tmp_path, tiny_arch, 1), _member(tmp_path, tiny_arch, 2)], out)

    def drop_second_member(state):
        for name in [name for name in state if name.startswith("members.1.")]:
            del state[name]

    damaged = _rewrite(out, tmp_path / "damaged.safetensors", edit_state=drop_second_member)
    with pytest.raises(ModelError, match="does not match its architecture"):
        load_checkpoint(damaged)


def test_unpacked_members_score_and_remember_what_they_were(tmp_path, tiny_arch):
    paths = [_member(tmp_path, tiny_arch, 1), _member(tmp_path, tiny_arch, 2, head="one-class")]
    originals = [load_checkpoint(path) for path in paths]
    pair = str(tmp_path / "pair.safetensors")
    save_ensemble(paths, pair)

    unpacked = [load_checkpoint(path)
                for path in unpack_ensemble(pair, str(tmp_path / "members"))]

    features = _features(3)
    for original, member, index in zip(originals, unpacked, (0, 1)):
        assert isinstance(member.model, LCNN)
        torch.testing.assert_close(member.score(features), original.score(features),
                                   rtol=0, atol=0)
        assert member.threshold == 0.7  # the member's own, not the ensemble's placeholder
        provenance = member.metadata["provenance"]
        assert provenance["config"] == {"val_fraction": 0.15, "seed": 0}  # for train --init
        assert provenance["unpacked_from"] == {"path": pair, "member": index,
                                               "sha256": load_checkpoint(pair).sha256,
                                               "member_sha256": original.sha256}
    assert unpacked[1].model.arch["head"] == "one-class"


def test_members_of_an_ensemble_of_ensembles_are_unpacked_without_a_record(tmp_path,
                                                                           tiny_arch):
    pair = str(tmp_path / "pair.safetensors")
    save_ensemble([_member(tmp_path, tiny_arch, 1), _member(tmp_path, tiny_arch, 2)], pair)
    three = str(tmp_path / "three.safetensors")
    save_ensemble([pair, _member(tmp_path, tiny_arch, 3)], three)

    unpacked = [load_checkpoint(path)
                for path in unpack_ensemble(three, str(tmp_path / "members"))]

    # three LCNNs, two recorded checkpoints: which record is whose is unknown
    assert len(unpacked) == 3
    assert all(member.threshold == 0.5 for member in unpacked)
    assert all("config" not in member.metadata["provenance"] for member in unpacked)


def test_a_single_lcnn_is_not_unpacked(tmp_path, tiny_arch):
    with pytest.raises(ModelError, match="not an ensemble"):
        unpack_ensemble(_member(tmp_path, tiny_arch, 1), str(tmp_path / "members"))
    assert not (tmp_path / "members").exists()


def test_a_failed_save_leaves_the_previous_checkpoint_and_no_partial_file(tmp_path, tiny_arch,
                                                                         monkeypatch):
    import safetensors.torch

    path = _member(tmp_path, tiny_arch, 1)
    with open(path, "rb") as handle:
        before = handle.read()

    def disk_full(state, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    with pytest.raises(OSError):
        save_checkpoint(path, LCNN(tiny_arch), 0.5, {})

    with open(path, "rb") as handle:
        assert handle.read() == before
    assert os.listdir(tmp_path) == [os.path.basename(path)]


def test_missing_checkpoint_is_a_model_error(tmp_path):
    with pytest.raises(ModelError):
        load_checkpoint(str(tmp_path / "nowhere" / "lcnn.safetensors"))


def test_a_folder_is_not_a_checkpoint(tmp_path):
    with pytest.raises(ModelError):
        load_checkpoint(str(tmp_path))


def test_bundled_model_path_names_the_lcnn_checkpoint():
    path = bundled_model_path()

    assert os.path.basename(path) == BUNDLED_NAME == "lcnn.safetensors"
    assert os.path.isabs(path)
