"""Writes random small Llama checkpoints with rope_scaling llama3 and linear, and what Hugging Face transformers computes
for them, for HfRopeScalingTest (tests module), which runs it at test time in its own virtual environment.

OUT/llama3 and OUT/linear are checkpoint folders (config.json + model.safetensors, saved by transformers);
OUT/llama3.gguf and OUT/linear.gguf the same models as llama.cpp's converter lays them out (linear: llama.rope.scaling.type
and .factor; llama3: a rope_freqs tensor of per-pair divisors, the llama3 parameters not recorded);
OUT/reference.safetensors holds input_ids [2, 48] (positions up to 47, beyond original_max_position_embeddings 32) and,
per case, transformers' RoPE inverse frequencies (inv_freq.<case>, as its rope init function computed them) and its
logits in float64 (logits.<case>: the model in float64, RoPE and RMSNorm lifted to float64 like make_fixture.py does,
using the model's own scaled inv_freq)."""

import argparse
import math
import pathlib
import sys

import numpy as np
import torch
import transformers
from safetensors.numpy import save_file
from transformers.models.llama import modeling_llama

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools/gguf_fixture"))
import make_fixture as gguf_fixture  # noqa: E402  (write_gguf: llama.cpp's layout; vocabulary: a 320-token vocabulary)

SEED = 20261208
BATCH, SEQ = 2, 48
# head dim 16 over theta 100: wavelengths 2 pi 100^(i/8) = 6.3, 11.2, 19.9, 35.3, ... so with original context 32 and
# low/high_freq_factor 1/4 (wavelength bounds 32 and 8) llama3 keeps one pair, blends two and divides the rest
SHAPE = dict(
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    rope_theta=100.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
)
CASES = {
    "llama3": dict(
        rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=32
    ),
    "linear": dict(rope_type="linear", factor=4.0),
}


def build_model(vocab_size, scaling, seed):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(vocab_size=vocab_size, rope_scaling=dict(scaling), **SHAPE)
    model = transformers.LlamaForCausalLM(config).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
    return model


def rms_norm_in_input_dtype(self, hidden_states):
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


def rotary_from_own_inv_freq(self, x, position_ids):
    """transformers' rotary forward in the input dtype, with the model's own (scaled) inverse frequencies."""
    freqs = position_ids[:, :, None].to(x.dtype) * self.inv_freq.to(x.dtype)[None, None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * self.attention_scaling, emb.sin() * self.attention_scaling


def float64_logits(model, ids):
    saved = (modeling_llama.LlamaRMSNorm.forward, modeling_llama.LlamaRotaryEmbedding.forward)
    modeling_llama.LlamaRMSNorm.forward = rms_norm_in_input_dtype
    modeling_llama.LlamaRotaryEmbedding.forward = rotary_from_own_inv_freq
    try:
        with torch.no_grad():
            return model.double()(input_ids=ids).logits
    finally:
        modeling_llama.LlamaRMSNorm.forward, modeling_llama.LlamaRotaryEmbedding.forward = saved
        model.float()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=pathlib.Path, required=True)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    tokens, scores, types = gguf_fixture.vocabulary()
    ids = torch.from_numpy(np.random.default_rng(SEED).integers(0, len(tokens), size=(BATCH, SEQ)).astype(np.int64))
    out = {"input_ids": ids.numpy()}
    for i, (name, scaling) in enumerate(CASES.items()):
        model = build_model(len(tokens), scaling, SEED + i)
        rotary = model.model.rotary_emb
        assert rotary.rope_type == scaling["rope_type"], rotary.rope_type
        plain = 1.0 / (SHAPE["rope_theta"] ** (torch.arange(0, 16, 2, dtype=torch.float64) / 16))
        assert not torch.allclose(rotary.inv_freq.double(), plain), name + ": transformers did not scale RoPE"
        model.save_pretrained(str(args.out / name), safe_serialization=True)
        with torch.no_grad():
            native = model(input_ids=ids).logits.double()
        logits = float64_logits(model, ids)
        # the float64 lift changes rounding only: transformers' own float32 forward agrees with it
        rel = (torch.linalg.vector_norm(native - logits) / torch.linalg.vector_norm(logits)).item()
        assert rel < 1e-5, f"{name}: float32 and float64 logits differ by {rel}"
        out["logits." + name] = logits.numpy()
        out["inv_freq." + name] = rotary.inv_freq.double().numpy()
        # as llama.cpp's converter writes it: linear in metadata, llama3 as a rope_freqs tensor
        gguf_fixture.write_gguf(
            args.out / (name + ".gguf"),
            model,
            gguf_fixture.gguf.GGMLQuantizationType.F32,
            tokens,
            scores,
            types,
            rope_theta=SHAPE["rope_theta"],
            rope_scaling=scaling,
        )
    save_file(out, str(args.out / "reference.safetensors"), metadata={"transformers": transformers.__version__})
    print("rope_scaling reference written with transformers", transformers.__version__)


if __name__ == "__main__":
    main()
