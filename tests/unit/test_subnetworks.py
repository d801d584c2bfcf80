"""The sub-network measures of grokmap.analysis.subnetworks against hand-computed values."""
import math

import pytest
import torch

from grokmap.analysis.subnetworks import (neuron_norms, norm_mass_share, norm_participation,
                                          ranked_subnetwork_fraction)
from grokmap.training.models import subnetwork_fraction


def test_neuron_norms_join_incoming_bias_and_outgoing_weights():
    w_in = torch.tensor([[3.0, 0.0], [0.0, 0.0]])
    w_out = torch.tensor([[4.0, 1.0], [0.0, 0.0]])
    assert neuron_norms(w_in, None, w_out).tolist() == [5.0, 1.0]
    assert neuron_norms(w_in, torch.tensor([0.0, 2.0]), w_out).tolist() == pytest.approx([5.0, math.sqrt(5.0)])


def test_norm_participation_and_mass_share():
    assert norm_participation(torch.ones(4)) == pytest.approx(1.0)
    assert norm_participation(torch.tensor([1.0, 0.0, 0.0, 0.0])) == pytest.approx(0.25)
    assert norm_participation(torch.tensor([2.0, 1.0])) == pytest.approx(25 / 34)  # (4 + 1)^2 / (2 (16 + 1))
    assert norm_mass_share(torch.tensor([2.0, 1.0]), 0.8) == 0.5  # 4 of 5 in the first neuron
    assert norm_mass_share(torch.tensor([1.0, 2.0]), 0.9) == 1.0  # 4.5 of 5 needs both
    assert norm_mass_share(torch.ones(10), 0.9) == pytest.approx(0.9)
    assert math.isnan(norm_participation(torch.zeros(3))) and math.isnan(norm_mass_share(torch.zeros(3)))
    with pytest.raises(ValueError, match="mass"):
        norm_mass_share(torch.ones(2), 0.0)


def test_margin_free_measures_ignore_the_readout_scale():
    g = torch.Generator().manual_seed(0)
    w_in, w_out = torch.randn(16, 8, generator=g), torch.randn(5, 16, generator=g)
    # a larger margin (the whole layer scaled) leaves the shares of the squared norm unchanged
    a, b = neuron_norms(w_in, None, w_out), neuron_norms(3 * w_in, None, 3 * w_out)
    assert norm_participation(a) == pytest.approx(norm_participation(b))
    assert norm_mass_share(a) == norm_mass_share(b)


def test_ranked_subnetwork_fraction_depends_on_the_order():
    h = torch.tensor([[1.0, 0.5], [2.0, 0.5]])
    w = torch.eye(2)  # class k reads neuron k; both rows predict class 0
    assert ranked_subnetwork_fraction(h, w, None, torch.tensor([0, 1])) == 0.5
    assert ranked_subnetwork_fraction(h, w, None, torch.tensor([1, 0])) == 1.0


def test_ranked_by_contribution_is_the_records_measure():
    g = torch.Generator().manual_seed(1)
    h, w, b = torch.rand(200, 32, generator=g), torch.randn(7, 32, generator=g), torch.randn(7, generator=g)
    order = torch.argsort(h.abs().mean(0) * w.norm(dim=0), descending=True, stable=True)
    assert ranked_subnetwork_fraction(h, w, b, order) == subnetwork_fraction(h, w, b)
