# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
import json

import pytest
import torch

from art_purify.datasets import load_fashion_mnist
from art_purify.diffusion import DiffusionSchedule, ddim_denoise, diffuse, strided_timesteps
from art_purify.zoo import ZooError, load_classifier, load_diffusion, load_diffusion_dir, load_safetensors
from tests.helpers import TINY_UNET


def test_unknown_zoo_name():
    with pytest.raises(ZooError, match="unknown zoo classifier 'cifar-10'; available: fashion-mnist"):
        load_classifier("cifar-10")
    with pytest.raises(ZooError, match="unknown zoo diffusion"):
        load_diffusion("imagenet")


def test_pickle_is_refused(tmp_path):
    path = tmp_path / "weights.safetensors"
    torch.save({"w": torch.zeros(3)}, path)
    with pytest.raises(ZooError, match="not a safetensors file"):
        load_safetensors(path)


def test_truncated_safetensors_and_missing_file(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"w": torch.arange(1000.0)}, str(path))
    path.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(ZooError, match="corrupt safetensors"):
        load_safetensors(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_safetensors(tmp_path / "absent.safetensors")


@pytest.mark.slow
def test_shipped_classifier_is_accurate_on_the_embedded_test_images():
    model = load_classifier("fashion-mnist")
    assert not model.training
    x, y = load_fashion_mnist()
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(x[i : i + 500])).argmax(1) for i in range(0, len(x), 500)])
    assert (pred.numpy() == y).mean() >= 0.90


@pytest.mark.slow
def test_shipped_diffusion_model_denoises():
    unet, scheduler = load_diffusion("fashion-mnist")
    assert type(unet).__name__ == "UNet2DModel" and type(scheduler).__name__ == "DDPMScheduler"
    assert scheduler.config.num_train_timesteps == 1000 and scheduler.config.beta_end == pytest.approx(0.02)
    assert not any(p.requires_grad for p in unet.parameters())
    x, _ = load_fashion_mnist(n=32)
    x0 = torch.from_numpy(x) * 2 - 1
    schedule = DiffusionSchedule(scheduler)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    xt = diffuse(x0, 100, schedule, noise)
    with torch.no_grad():
        out = ddim_denoise(unet, xt, strided_timesteps(100, 20), schedule)
    noisy_err = (xt / schedule.alpha_bar(100, xt).sqrt() - x0).pow(2).mean()
    denoised_err = (out - x0).pow(2).mean()
    assert denoised_err < 0.2 * noisy_err


def test_any_diffusers_unet_directory_plugs_in(tmp_path, tiny_unet):
    tiny_unet.save_pretrained(tmp_path / "model", safe_serialization=True)
    unet, scheduler = load_diffusion_dir(tmp_path / "model")
    assert (
        unet.config.block_out_channels == tuple(TINY_UNET["block_out_channels"])
        or list(unet.config.block_out_channels) == TINY_UNET["block_out_channels"]
    )
    assert scheduler.config.num_train_timesteps == 1000
    loaded, original = unet.state_dict(), tiny_unet.state_dict()
    assert loaded.keys() == original.keys() and all(torch.equal(loaded[k], original[k]) for k in original)
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # same weights; float32 kernels may differ in the last bits between two module instances
        assert torch.allclose(unet(x, 10).sample, tiny_unet(x, 10).sample, rtol=0, atol=1e-5)


def test_diffusers_directory_without_safetensors_is_refused(tmp_path, tiny_unet):
    tiny_unet.save_pretrained(tmp_path / "model", safe_serialization=False)
    with pytest.raises(ZooError, match="only safetensors"):
        load_diffusion_dir(tmp_path / "model")
    with pytest.raises(FileNotFoundError):
        load_diffusion_dir(tmp_path / "absent")


def test_shipped_metadata_records_how_the_models_were_made():
    from importlib import resources

    for stem in (
        "fashion-mnist-classifier",
        "fashion-mnist-unet",
        "fashion-mnist-atop",
        "fashion-mnist-atop-pretrained",
    ):
        meta = json.loads(resources.files("art_purify.zoo").joinpath("weights", stem + ".json").read_text())
        assert meta["model_card"]["command"].startswith("art-purify train-")
        assert meta["model_card"]["train_examples"] == 60000
    sizes = [p.stat().st_size for p in resources.files("art_purify.zoo").joinpath("weights").iterdir()]
    assert sum(sizes) < 10 * 2**20


@pytest.mark.slow
def test_shipped_models_purify_without_losing_much_accuracy():
    """Fast guard of docs/models.md's check (there: 10,000 images, -2.58 points); loose bound for 300 images."""
    from art_purify.diffusion import diffuse_and_denoise

    model = load_classifier("fashion-mnist")
    unet, scheduler = load_diffusion("fashion-mnist")
    x, y = load_fashion_mnist(n=300)
    x = torch.from_numpy(x)
    purified = diffuse_and_denoise(
        unet, x, 100, 5, DiffusionSchedule(scheduler), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        clean = (model(x).argmax(1).numpy() == y).mean()
        after = (model(purified).argmax(1).numpy() == y).mean()
    assert clean - after <= 0.05, (clean, after)


def test_shipped_atop_purifiers_restore_images_the_classifier_recognises():
    """The AToP purifiers (docs/models.md): RT2 + generator keeps most clean accuracy; fine-tuning changed them."""
    from art_purify.defences.preprocessor import AToPPurificationPyTorch, RandomMaskingPyTorch
    from art_purify.zoo import load_atop

    model = load_classifier("fashion-mnist")
    x, y = load_fashion_mnist(n=200)
    tuned, pretrained = load_atop("fashion-mnist"), load_atop("fashion-mnist", pretrained=True)
    assert any(not torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), pretrained.state_dict().values()))
    purifier = AToPPurificationPyTorch(tuned, RandomMaskingPyTorch.preset("rt2"), seed=0, device_type="cpu")
    with torch.no_grad():
        purified, _ = purifier.forward(torch.from_numpy(x))
        accuracy = (model(purified).argmax(1).numpy() == y).mean()
    assert accuracy >= 0.7, accuracy
    with pytest.raises(ZooError, match="unknown zoo atop"):
        load_atop("cifar10")
