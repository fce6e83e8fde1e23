# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The training commands on a user's data: the output directories load with the package's loaders and with
diffusers' own, augmentation can be turned off, and ``.npz`` data of another shape trains."""

import json

import numpy as np
import torch

from art_purify.cli import main
from art_purify.training.classifier import augment_batch
from art_purify.zoo import load_diffusion_dir
from art_purify.zoo.user import load_classifier_dir, load_user_classifier
from tests.helpers import TINY_UNET

TRAIN = ["--quiet", "--num-threads", "1", "--batch-size", "8"]


def _npz(path, n=32, channels=1, side=8, seed=0):
    rng = np.random.default_rng(seed)
    np.savez(path, x_train=rng.integers(0, 256, (n, side, side, channels), dtype=np.uint8), y_train=np.arange(n) % 4)
    return path


def test_train_diffusion_output_loads_with_load_diffusion_dir_and_diffusers(tmp_path):
    from diffusers import DDPMScheduler, UNet2DModel

    data = _npz(tmp_path / "data.npz")
    (tmp_path / "unet.json").write_text(json.dumps(TINY_UNET))
    out = tmp_path / "run"
    args = ["train-diffusion", "--data", data, "--unet-config", tmp_path / "unet.json", "--steps", "3"]
    assert main([*map(str, args), "--checkpoint-every", "2", "--no-hflip", "--out", str(out), *TRAIN]) == 0
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file() and (out / "model_card.json").is_file()
    assert not list(out.glob("unet/*.bin"))
    unet, scheduler = load_diffusion_dir(out)
    reference = UNet2DModel.from_pretrained(out, subfolder="unet", use_safetensors=True).eval()
    assert DDPMScheduler.from_pretrained(out, subfolder="scheduler").config == scheduler.config
    x, t = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([5, 50])
    with torch.no_grad():
        ours, theirs = unet(x, t).sample, reference(x, t).sample
    assert torch.equal(ours, theirs) and ours.abs().sum() > 0
    card = json.loads((out / "model_card.json").read_text())
    assert card["train_config"]["hflip"] is False and card["augmentation"] == {"hflip": False}
    assert card["unet_config"]["block_out_channels"] == TINY_UNET["block_out_channels"]


def test_hflip_option_changes_the_training_and_defaults_on(tmp_path):
    data = _npz(tmp_path / "data.npz")
    (tmp_path / "unet.json").write_text(json.dumps(TINY_UNET))
    common = ["train-diffusion", "--data", str(data), "--unet-config", str(tmp_path / "unet.json"), "--steps", "2"]
    weights = {}
    for flag in ("--hflip", "--no-hflip"):
        out = tmp_path / flag.strip("-")
        assert main([*common, flag, "--out", str(out), *TRAIN]) == 0
        unet, _ = load_diffusion_dir(out)
        weights[flag] = torch.cat([p.flatten() for p in unet.parameters()])
    assert not torch.equal(weights["--hflip"], weights["--no-hflip"])
    out = tmp_path / "default"
    assert main([*common, "--out", str(out), *TRAIN]) == 0
    assert json.loads((out / "model_card.json").read_text())["train_config"]["hflip"] is True


def test_augment_batch_without_flip_or_crop_is_the_identity_and_draws_the_same():
    x = torch.arange(16 * 1 * 4 * 4, dtype=torch.float32).view(16, 1, 4, 4)
    gen_off, gen_on = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(augment_batch(x, gen_off, pad=0, hflip=False), x)
    flipped = augment_batch(x, gen_on, pad=0, hflip=True)
    changed = [not torch.equal(a, b) for a, b in zip(flipped, x)]
    assert any(changed) and not all(changed)
    assert all(torch.equal(a, b.flip(-1)) for a, b, c in zip(flipped, x, changed) if c)
    # the same draws either way, so turning flips off changes nothing else of a run
    assert torch.equal(gen_off.get_state(), gen_on.get_state())


def test_train_classifier_on_three_channel_npz_loads_with_load_classifier_dir(tmp_path):
    data = _npz(tmp_path / "data.npz", n=32, channels=3, side=8)
    out = tmp_path / "clf"
    args = ["train-classifier", "--data", str(data), "--epochs", "1", "--no-hflip", "--crop-pad", "0"]
    assert main([*args, "--checkpoint-every", "2", "--out", str(out), *TRAIN]) == 0
    model = load_classifier_dir(out)
    assert model.config["in_channels"] == 3 and model.config["num_classes"] == 4
    card = json.loads((out / "model_card.json").read_text())
    assert card["train_config"]["hflip"] is False and card["train_config"]["crop_pad"] == 0
    assert "test_accuracy" not in card["metrics"]  # an .npz of x_train only has no test split of its own
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(x), load_user_classifier(out)(x))


def test_export_run_of_a_diffusers_output_and_the_earlier_flat_layout(tmp_path):
    from art_purify.engine import save_weights, write_json
    from art_purify.models import DDPM_SCHEDULE
    from art_purify.zoo import export_run, load_safetensors, load_unet_weights

    data = _npz(tmp_path / "data.npz")
    (tmp_path / "unet.json").write_text(json.dumps(TINY_UNET))
    out = tmp_path / "run"
    args = ["train-diffusion", "--data", str(data), "--unet-config", str(tmp_path / "unet.json"), "--steps", "2"]
    assert main([*args, "--out", str(out), *TRAIN]) == 0
    unet, _ = load_diffusion_dir(out)
    path = export_run(out, "toy-unet", tmp_path / "zoo")
    meta = json.loads((tmp_path / "zoo" / "toy-unet.json").read_text())
    assert meta["kind"] == "diffusion" and meta["unet_config"]["block_out_channels"] == TINY_UNET["block_out_channels"]
    assert all(t.dtype == torch.float16 for t in load_safetensors(path).values())  # the zoo stores fp16
    shipped = load_unet_weights(path, meta["unet_config"])
    for a, b in zip(shipped.parameters(), unet.parameters()):
        assert torch.equal(a, b.half().float())
    flat = tmp_path / "flat"  # what train-diffusion wrote before the diffusers layout
    save_weights(unet.state_dict(), flat / "unet.safetensors", dtype=torch.float16)
    write_json(TINY_UNET, flat / "unet_config.json")
    write_json(dict(DDPM_SCHEDULE), flat / "scheduler_config.json")
    old, scheduler = load_diffusion_dir(flat)
    assert scheduler.config.num_train_timesteps == 1000
    for a, b in zip(old.parameters(), shipped.parameters()):
        assert torch.equal(a, b)
    (flat / "model_card.json").write_text("{}")
    again = load_safetensors(export_run(flat, "toy-flat", tmp_path / "zoo"))  # an earlier run still exports
    assert all(torch.equal(again[k], v) for k, v in load_safetensors(path).items())


def test_train_atop_for_a_users_classifier_and_evaluate_it_with_its_output(tmp_path, capsys):
    from safetensors.torch import save_file

    from art_purify.zoo.user import load_atop_dir
    from tests.own_models import TinyLeNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = TinyLeNet(num_classes=4)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp_path / "net.safetensors")
    data = _npz(tmp_path / "data.npz", n=64)
    mine = ["--classifier", "tests.own_models:TinyLeNet", "--classifier-weights", str(tmp_path / "net.safetensors")]
    mine += ["--classifier-kwargs", '{"num_classes": 4}']
    out = tmp_path / "atop"
    args = ["train-atop", "--data", str(data), *mine, "--pretrain-epochs", "1", "--epochs", "1", "--width", "4"]
    assert main([*args, "--finetune-examples", "32", "--batch-size", "16", "--out", str(out), "--quiet"]) == 0
    generator = load_atop_dir(out)
    assert generator.config["in_channels"] == 1 and not generator.training
    report = tmp_path / "report"
    np.savez(tmp_path / "test.npz", x=np.load(data)["x_train"][:8], y=np.load(data)["y_train"][:8])
    evaluate = [
        "evaluate",
        "--data",
        str(tmp_path / "test.npz"),
        *mine,
        "--defence",
        "atop",
        "--atop",
        str(out),
        "--n",
        "4",
    ]
    evaluate += ["--max-iter", "1", "--eot", "1", "--votes", "1", "--no-sanity", "--no-figure", "--quiet"]
    capsys.readouterr()
    assert main([*evaluate, "--out", str(report)]) == 0, capsys.readouterr().err
    assert json.loads((report / "report.json").read_text())["atop"] == str(out)
    assert main(["train-atop", "--data", str(data), "--classifier-weights", "w.safetensors", "--out", "x"]) == 2
    assert "need --classifier" in capsys.readouterr().err


def test_training_refuses_a_unet_config_that_does_not_fit_and_resumes_old_checkpoints(tmp_path, capsys):
    from art_purify.engine.loop import check_resumable

    data = _npz(tmp_path / "data.npz")
    for config, text in (
        ({**TINY_UNET, "colour": 1}, "cannot build a diffusers UNet2DModel"),
        ({**TINY_UNET, "in_channels": 3, "out_channels": 3}, "is for 3x8x8 images, the --data is 1x8x8"),
    ):
        (tmp_path / "unet.json").write_text(json.dumps(config))
        args = ["train-diffusion", "--data", str(data), "--unet-config", str(tmp_path / "unet.json"), "--steps", "2"]
        assert main([*args, "--out", str(tmp_path / "run"), *TRAIN]) == 2
        assert text in capsys.readouterr().err
    # a checkpoint written before --hflip / --crop-pad existed was made with flips on and padding 2
    old = {"kind": "train-classifier", "config": {"epochs": 2}}
    check_resumable(old, None, "train-classifier", {"epochs": 2, "hflip": True, "crop_pad": 2})
    try:
        check_resumable(old, None, "train-classifier", {"epochs": 2, "hflip": False, "crop_pad": 2})
    except ValueError as err:
        assert "hflip=False (the checkpoint has True)" in str(err)
    else:
        raise AssertionError("a changed hflip must be refused")
