# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""A user's classifier from a factory + safetensors, a TorchScript file, or a module beside the command."""

import pytest
import torch
from safetensors.torch import save_file

from art_purify.zoo import ZooError
from art_purify.zoo.user import check_stage_names, infer_nb_classes, load_user_classifier
from tests.own_models import TinyLeNet


def _script(tmp_path):
    torch.jit.save(torch.jit.script(TinyLeNet().eval()), str(tmp_path / "scripted.pt"))
    return tmp_path / "scripted.pt"


def _weights(tmp_path, **kwargs):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = TinyLeNet(**kwargs).eval()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp_path / "net.safetensors")
    return net, tmp_path / "net.safetensors"


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_factory_torchscript_and_module_in_the_current_directory_give_the_same_logits(tmp_path, monkeypatch):
    net, weights = _weights(tmp_path)
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    state = torch.get_rng_state()
    loaded = load_user_classifier("tests.own_models:TinyLeNet", weights)
    assert torch.equal(state, torch.get_rng_state()), "the factory's init must not move the global RNG"
    assert not loaded.training
    torch.jit.save(torch.jit.script(net), str(tmp_path / "net.pt"))
    scripted = load_user_classifier(tmp_path / "net.pt")
    batch = torch.export.Dim("batch")
    torch.export.save(torch.export.export(net, (x,), dynamic_shapes=({0: batch},)), str(tmp_path / "net.pt2"))
    exported = load_user_classifier(tmp_path / "net.pt2")
    exported.eval()  # as ART does: must not raise
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "my_nets_for_test.py").write_text("from tests.own_models import TinyLeNet as Net\n")
    monkeypatch.chdir(tmp_path / "elsewhere")
    beside = load_user_classifier("my_nets_for_test:Net", weights)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x)) and torch.equal(scripted(x), net(x)) and torch.equal(beside(x), net(x))
        assert torch.allclose(exported(x[:2]), net(x[:2]), atol=1e-6)
    assert infer_nb_classes(loaded, (1, 8, 8), "cpu") == 10


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_user_classifier_errors(tmp_path):
    _, weights = _weights(tmp_path)
    with pytest.raises(ZooError, match="does not match the architecture: missing"):
        save_file({"head.bias": torch.zeros(10)}, tmp_path / "partial.safetensors")
        load_user_classifier("tests.own_models:TinyLeNet", tmp_path / "partial.safetensors")
    with pytest.raises(ZooError, match="has shape"):
        load_user_classifier("tests.own_models:TinyLeNet", weights, {"num_classes": 3})
    with pytest.raises(ZooError, match="could not be called with"):
        load_user_classifier("tests.own_models:TinyLeNet", weights, {"colour": True})
    with pytest.raises(ZooError, match="returned a int, not a torch.nn.Module"):
        load_user_classifier("builtins:int", None, {})  # callable, but not a model factory
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_user_classifier("tests.own_models:TinyLeNet", tmp_path / "none.safetensors")
    with pytest.raises(ZooError, match="not a TorchScript archive"):
        (tmp_path / "fake.pt").write_bytes(b"not an archive")
        load_user_classifier(tmp_path / "fake.pt")
    with pytest.raises(ZooError, match="not a torch.export program"):
        (tmp_path / "fake.pt2").write_bytes(b"not an archive")
        load_user_classifier(tmp_path / "fake.pt2")
    with pytest.raises(ZooError, match="not a safetensors file"):
        torch.save({"x": torch.zeros(1)}, tmp_path / "pickle.safetensors")
        load_user_classifier("tests.own_models:TinyLeNet", tmp_path / "pickle.safetensors")
    with pytest.raises(ZooError, match="need forward hooks"):
        check_stage_names(load_user_classifier(_script(tmp_path)), ["features.0"])
    with pytest.raises(ZooError, match=r"could not be called with \{'side': 'no'\}: TypeError"):
        load_user_classifier("tests.own_models:TinyLeNet", None, {"side": "no"})  # fails inside the constructor
    net = TinyLeNet()
    with pytest.raises(ZooError, match=r"does not take inputs of shape \(N, 3, 8, 8\)"):
        infer_nb_classes(net, (3, 8, 8), "cpu")
    with pytest.raises(ZooError, match=r"no module\(s\) \['layer4'\]"):
        check_stage_names(net, ["features.0", "layer4"])
