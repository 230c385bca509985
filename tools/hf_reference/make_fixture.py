"""Writes the Hugging Face transformers reference fixture (tests/src/test/resources/hf-llama-reference/):
a tiny LlamaForCausalLM checkpoint and its float64 loss, logits and parameter gradients for one token batch."""

import argparse
import json
import math
import pathlib

import numpy as np
import safetensors
import torch
import transformers
from safetensors.torch import save_file
from transformers.models.llama import modeling_llama

SEED = 20260521
BATCH, SEQ = 3, 12
CONFIG = dict(
    vocab_size=72,
    hidden_size=48,
    intermediate_size=56,
    num_hidden_layers=2,
    num_attention_heads=6,
    num_key_value_heads=2,
    max_position_embeddings=32,
    rope_theta=1000.0,
    rms_norm_eps=1e-4,
    tie_word_embeddings=False,
    hidden_act="silu",
    attention_bias=False,
    mlp_bias=False,
)
EMBED_STD = 0.02  # small residual-stream entries, so rms_norm_eps changes the first norm's output by about 10%

DEFAULT_OUT = pathlib.Path(__file__).resolve().parents[2] / "tests/src/test/resources/hf-llama-reference"


def build_model():
    """The model in float32 with seeded weights: random norm gains, matrices ~ N(0, 1/fan_in)."""
    torch.manual_seed(SEED)
    config = transformers.LlamaConfig(**CONFIG)
    model = transformers.LlamaForCausalLM(config).eval()
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
            elif name == "model.embed_tokens.weight":
                p.copy_(EMBED_STD * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
    return model


def rms_norm_in_input_dtype(self, hidden_states):
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


def rotary_in_input_dtype(self, x, position_ids):
    dim = self.inv_freq.shape[0] * 2
    theta = self.config.rope_parameters["rope_theta"]
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=x.dtype) / dim))
    freqs = position_ids[:, :, None].to(x.dtype) * inv_freq[None, None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * self.attention_scaling, emb.sin() * self.attention_scaling


class Float64Internals:
    """Lifts the float32 casts inside transformers' Llama (RMSNorm and RoPE compute in float32 whatever the model
    dtype) for the duration of a with-block; attention runs as torch's SDPA, which keeps the input dtype."""

    def __enter__(self):
        self.saved = (modeling_llama.LlamaRMSNorm.forward, modeling_llama.LlamaRotaryEmbedding.forward)
        modeling_llama.LlamaRMSNorm.forward = rms_norm_in_input_dtype
        modeling_llama.LlamaRotaryEmbedding.forward = rotary_in_input_dtype
        return self

    def __exit__(self, *exc):
        modeling_llama.LlamaRMSNorm.forward, modeling_llama.LlamaRotaryEmbedding.forward = self.saved


def mean_token_loss(model, input_ids, targets):
    """MoDE-J's loss: mean cross-entropy over all B*T positions, position t predicting token t+1 of the window."""
    logits = model(input_ids=input_ids).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    return loss, logits


def loss_logits_grads(model, input_ids, targets):
    loss, logits = mean_token_loss(model, input_ids, targets)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    return loss.detach(), logits.detach(), grads


def rel_l2(a, ref):
    return (torch.linalg.vector_norm(a.double() - ref) / torch.linalg.vector_norm(ref)).item()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    out = parser.parse_args().out
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    model = build_model()
    gen = torch.Generator().manual_seed(SEED + 1)
    tokens = torch.randint(0, CONFIG["vocab_size"], (BATCH, SEQ + 1), generator=gen)
    input_ids, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    (out / "generation_config.json").unlink(missing_ok=True)
    (out / "tokens.txt").write_text("".join(" ".join(map(str, row)) + "\n" for row in tokens.tolist()))

    f64 = build_model().double()
    f64.config._attn_implementation = "sdpa"
    with Float64Internals():
        loss, logits, grads = loss_logits_grads(f64, input_ids, targets)

    # The same quantity from stock transformers (its float32 casts in place): HF's own loss function with
    # targets given as shift_labels, in float64 and in float32. They differ from the reference by rounding only.
    checks = {}
    for dtype in (torch.float64, torch.float32):
        stock = build_model().to(dtype)
        stock.config._attn_implementation = "eager"
        res = stock(input_ids=input_ids, labels=targets, shift_labels=targets)
        res.loss.backward()
        label = str(dtype).removeprefix("torch.")
        worst_grad = max(rel_l2(p.grad, grads[n]) for n, p in stock.named_parameters())
        checks[label] = dict(loss_abs=abs(res.loss.item() - loss.item()), logits_rel_l2=rel_l2(res.logits, logits),
                             worst_grad_rel_l2=worst_grad)
        assert checks[label]["loss_abs"] < 1e-5 and checks[label]["logits_rel_l2"] < 1e-5 and worst_grad < 1e-4, checks

    tensors = {"input_ids": input_ids, "targets": targets, "loss": loss.reshape(1), "logits": logits}
    tensors.update({"grad." + n: g for n, g in grads.items()})
    meta = {
        "format": "mode-hf-reference",
        "definition": "loss = mean over all B*T positions of cross-entropy(logits[b,t], targets[b,t]); "
                      "targets[b,t] = tokens[b,t+1]; grad.<name> = d loss / d <name>; float64",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
        "seed": SEED,
        "stock_transformers_vs_reference": checks,
    }
    # one metadata entry: safetensors writes several in a random order, and the file should not change on a rerun
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / "reference.safetensors"),
              metadata={"mode_hf_reference": json.dumps(meta, sort_keys=True)})
    print(f"loss {loss.item():.12f}; stock transformers vs reference: {json.dumps(checks)}")
    print(f"wrote {out}: " + ", ".join(f"{p.name} {p.stat().st_size} B" for p in sorted(out.iterdir())))


if __name__ == "__main__":
    main()
