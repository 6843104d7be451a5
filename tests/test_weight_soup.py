"""scripts/experiments/weight_soup.py: the mean of several LCNNs' weights."""

import pytest
import torch

from forensics_scan.checkpoint import ModelError
from forensics_scan.model import LCNN, load_checkpoint, save_checkpoint, save_ensemble
from project_scripts import load_script

weight_soup = load_script("scripts/experiments/weight_soup.py")


def _lcnn(tmp_path, arch, seed, **change):
    torch.manual_seed(seed)
    model = LCNN(dict(arch, **change))
    with torch.no_grad():  # batch-norm statistics that differ between the models
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
    path = str(tmp_path / f"lcnn{seed}.safetensors")
    save_checkpoint(path, model.eval(), 0.7, {"seed": seed})
    return path


def test_every_weight_and_statistic_is_the_mean(tmp_path, tiny_arch):
    paths = [_lcnn(tmp_path, tiny_arch, seed) for seed in (1, 2, 3)]
    states = [load_checkpoint(path).model.state_dict() for path in paths]

    souped = weight_soup.soup([load_checkpoint(path) for path in paths]).state_dict()

    assert souped.keys() == states[0].keys()
    for name, tensor in souped.items():
        if tensor.is_floating_point():
            expected = (states[0][name] + states[1][name] + states[2][name]) / 3
            torch.testing.assert_close(tensor, expected)
        else:
            assert torch.equal(tensor, states[0][name])


def test_a_soup_of_one_model_with_itself_scores_as_it_does(tmp_path, tiny_arch):
    path = _lcnn(tmp_path, tiny_arch, 4)
    features = torch.randn(3, 80, 500, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(weight_soup.soup([load_checkpoint(path)] * 2)(features),
                                   load_checkpoint(path).model(features))


def test_models_that_do_not_match_are_refused(tmp_path, tiny_arch):
    one, other = _lcnn(tmp_path, tiny_arch, 5), _lcnn(tmp_path, tiny_arch, 6, stem=8)
    with pytest.raises(ModelError, match="another architecture"):
        weight_soup.soup([load_checkpoint(one), load_checkpoint(other)])
    with pytest.raises(ModelError, match="at least two"):
        weight_soup.soup([load_checkpoint(one)])
    pair = str(tmp_path / "pair.safetensors")
    save_ensemble([one, _lcnn(tmp_path, tiny_arch, 7)], pair)
    with pytest.raises(ModelError, match="ensemble"):
        weight_soup.soup([load_checkpoint(one), load_checkpoint(pair)])


def test_the_soup_keeps_the_validation_split_its_members_share(tmp_path, tiny_arch):
    def member(seed, split):
        path = _lcnn(tmp_path, tiny_arch, seed)
        save_checkpoint(path, load_checkpoint(path).model, 0.7, {"config": split})
        return path

    same = [member(8, {"val_fraction": 0.15, "seed": 0, "epochs": 3}),
            member(9, {"val_fraction": 0.15, "seed": 0, "epochs": 6})]
    provenance = weight_soup.soup_provenance([load_checkpoint(p) for p in same])
    assert provenance["config"] == {"val_fraction": 0.15, "seed": 0}
    assert [m["sha256"] for m in provenance["soup_of"]] == [load_checkpoint(p).sha256
                                                            for p in same]
    other = member(10, {"val_fraction": 0.15, "seed": 1})
    assert "config" not in weight_soup.soup_provenance([load_checkpoint(p)
                                                        for p in (*same, other)])
