# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The small shared helpers: networks frozen for a block (eval mode, no parameter gradients), their state restored."""

import pytest
import torch

from art_purify.utils import eval_mode, frozen


def _mixed():
    """A module in train mode with one submodule in eval mode and one frozen parameter."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Dropout(0.5))
    net[2].eval()
    net[0].bias.requires_grad_(False)
    return net


def _flags(net):
    return [m.training for m in net.modules()], [p.requires_grad for p in net.parameters()]


def test_frozen_restores_every_flag_is_reusable_and_keeps_gradients_out_of_the_parameters():
    net = _mixed()
    before = _flags(net)
    x = torch.randn(5, 3, requires_grad=True)
    block = frozen(net)
    for _ in range(2):  # reusable: a checkpointed call's recomputation enters it once per backward pass
        with block:
            assert not any(m.training for m in net.modules()) and not any(p.requires_grad for p in net.parameters())
            with frozen(net):  # nested
                out = net(x)
            assert not any(p.requires_grad for p in net.parameters())
        assert _flags(net) == before
        out.sum().backward()  # after the block: the graph reaches the input only
        assert x.grad is not None and all(p.grad is None for p in net.parameters())
    assert int(net[1].num_batches_tracked) == 0  # eval mode: BatchNorm statistics untouched
    with pytest.raises(RuntimeError):
        with frozen(net):
            net(torch.randn(5, 2))  # a failing call inside the block
    assert _flags(net) == before
    with eval_mode(net):
        assert not net.training and all(p.requires_grad for p in net.parameters() if p is not net[0].bias)
    assert _flags(net) == before
    with frozen(torch.tanh) as fn:  # a plain function has no state
        assert fn is torch.tanh
