from pathlib import Path

import pytest
import torch

from plusrl.models.loader import load_tokenizer

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def save_tiny_qwen2(folder) -> str:
    """A randomly initialised 2-layer Qwen2 with the embedded SmolLM2 tokenizer, saved to `folder`."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    tokenizer = load_tokenizer("smollm2-135m")
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory) -> str:
    """The paper's model family without a download: a randomly initialised 2-layer Qwen2 (grouped-query
    attention, tied embeddings) with the embedded SmolLM2 tokenizer, whose ChatML template Qwen2.5 shares."""
    return save_tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2"))
