from types import SimpleNamespace

import pytest
import torch

from plusrl.models.cpu_dropout import CpuDropout, cpu_dropout, keep_mask, sdpa_with_cpu_dropout, use_cpu_dropout
from plusrl.models.loader import load_backbone, load_tokenizer


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_each_element_is_kept_with_probability_one_minus_p(p):
    """Over a million elements the kept share is 1 − p to within 6 standard errors (at most 0.003)."""
    kept = keep_mask(torch.Size([1000, 1000]), p).double().mean().item()
    assert abs(kept - (1 - p)) < 6 * (p * (1 - p) / 1e6) ** 0.5


def test_masks_follow_torchs_seed_and_differ_between_draws():
    shape = torch.Size([3, 5, 7])  # 105 elements: not a multiple of the four drawn per 64 bits
    torch.manual_seed(1)
    first, second = keep_mask(shape, 0.5), keep_mask(shape, 0.5)
    torch.manual_seed(1)
    assert torch.equal(keep_mask(shape, 0.5), first) and not torch.equal(first, second)
    assert keep_mask(shape, 0.0).all()


def test_kept_elements_are_scaled_by_one_over_one_minus_p_and_alone_pass_gradient():
    x = torch.ones(64, 64, requires_grad=True)
    y = cpu_dropout(x, 0.25)
    assert set(y.unique().tolist()) == {0.0, torch.tensor(4 / 3).item()}
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(sum)/dx = the scaled mask
    assert torch.equal(cpu_dropout(x, 0.25, training=False), x)


@pytest.mark.parametrize("mask_kind", ["bool", "additive"])
def test_the_spelled_out_attention_is_sdpas_for_either_kind_of_mask(mask_kind):
    """Batch 2, 3 heads, 5 queries and keys, the last two keys of row 0 masked out."""
    torch.manual_seed(0)
    query, key, value = (torch.randn(2, 3, 5, 8) for _ in range(3))
    attended = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    attended[0, ..., 3:] = False
    mask = attended if mask_kind == "bool" else torch.zeros(2, 1, 5, 5).masked_fill(~attended, float("-inf"))
    module = SimpleNamespace(is_causal=False, training=True)
    spelled_out, _ = sdpa_with_cpu_dropout(module, query, key, value, mask, scaling=0.3, dropout=1e-9)
    expected = torch.nn.functional.scaled_dot_product_attention(query, key, value, attended, scale=0.3)
    torch.testing.assert_close(spelled_out, expected.transpose(1, 2))


def _minilm_with_cpu_dropout(hidden_p: float, attention_p: float):
    model = load_backbone("minilm-l6")
    use_cpu_dropout(model)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Dropout):
            assert isinstance(module, CpuDropout), name
            module.p = attention_p if name.endswith("attention.self.dropout") else hidden_p
    return model


def _padded_batch():
    tokenizer = load_tokenizer("minilm-l6")
    return tokenizer(["Cats.", "Dogs, always dogs: walks, fetch and the way they greet me at the door."],
                     padding=True, return_tensors="pt")


def test_attention_with_cpu_dropout_computes_sdpas_attention_on_a_padded_batch():
    """With a dropout too small to drop anything, training mode (the attention spelled out with
    `keep_mask`) gives the hidden states evaluation mode (torch's sdpa) gives, padding included."""
    batch = _padded_batch()
    assert not batch["attention_mask"].all()
    model = _minilm_with_cpu_dropout(hidden_p=1e-9, attention_p=1e-9)
    with torch.no_grad():
        evaluated = model.eval()(**batch).last_hidden_state
        trained = model.train()(**batch).last_hidden_state
    torch.testing.assert_close(trained, evaluated, atol=1e-4, rtol=1e-4)


def test_the_attentions_own_dropout_is_drawn_in_training_mode():
    """Hidden dropout off, attention dropout on: training-mode passes differ from each other."""
    batch = _padded_batch()
    model = _minilm_with_cpu_dropout(hidden_p=0.0, attention_p=0.5).train()
    with torch.no_grad():
        assert not torch.equal(model(**batch).last_hidden_state, model(**batch).last_hidden_state)


def test_swapped_dropout_modules_keep_the_models_mode():
    """from_pretrained leaves a model in evaluation mode; its new dropout modules must not draw masks."""
    model = load_backbone("minilm-l6")
    use_cpu_dropout(model)
    assert not any(module.training for module in model.modules())
    batch = _padded_batch()
    with torch.no_grad():
        assert torch.equal(model(**batch).last_hidden_state, model(**batch).last_hidden_state)
