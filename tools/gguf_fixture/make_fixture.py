"""Writes the GGUF fixture (model/src/test/resources/gguf-llama/): one tiny random Llama model stored by the `gguf`
package as F32, F16, BF16, Q8_0 and Q4_0 files, laid out as llama.cpp's converter lays out a Llama checkpoint (q/k rows
permuted to interleaved rotary pairs, a SentencePiece "llama" vocabulary in the metadata), and the logits that
Hugging Face transformers computes after loading each file with its own GGUF reader (`gguf_file=`)."""

import argparse
import json
import math
import pathlib
import tempfile

import gguf
import numpy as np
import torch
import transformers
from safetensors.numpy import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "model/src/test/resources/gguf-llama"
TOKENIZER_FIXTURE = ROOT / "model/src/test/resources/hf-tokenizers/llama2-style.json"
SEED = 20261207
PIECES = 61  # BPE pieces after <unk> <s> </s> and the 256 byte tokens: vocabulary 320
CONFIG = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    rope_theta=5000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
)
TYPES = {
    "f32": gguf.GGMLQuantizationType.F32,
    "f16": gguf.GGMLQuantizationType.F16,
    "bf16": gguf.GGMLQuantizationType.BF16,
    "q8_0": gguf.GGMLQuantizationType.Q8_0,
    "q4_0": gguf.GGMLQuantizationType.Q4_0,
}
ALPHABET = "▁ehtaosnrdlicwHT"
TEXTS = ["Hello world", "the cat sat on the mat", "  two  spaces", "café 日本 🙂", "There is the thing.", ""]


def vocabulary():
    """<unk> <s> </s>, <0x00>..<0xFF>, then the first PIECES pieces of the committed Llama-2-style tokenizer fixture
    written with the letters of ALPHABET (so that merges exist), scored as SentencePiece scores BPE pieces (0, -1, ...)."""
    spec = json.loads(TOKENIZER_FIXTURE.read_text(encoding="utf-8"))
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    ranked = sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1])
    pieces = [t for t, i in ranked if i >= 259 and set(t) <= set(ALPHABET)][:PIECES]
    tokens += pieces
    types += [1] * len(pieces)
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))]
    return tokens, scores, types


def permute(w, n_head):
    """llama.cpp's convert_hf_to_gguf permutation: Hugging Face's rotate-half rows to interleaved rotary pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def build_model(vocab_size):
    torch.manual_seed(SEED)
    config = transformers.LlamaConfig(vocab_size=vocab_size, **CONFIG)
    model = transformers.LlamaForCausalLM(config).eval()
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
    return model


def llama3_rope_factors(theta, head_dim, scaling):
    """What llama.cpp's converter stores as rope_freqs for Hugging Face's llama3 rope_scaling: one divisor of the plain
    frequency per rotated pair (1 for short wavelengths, the factor for long ones, a blend between), float32."""
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    context = scaling["original_max_position_embeddings"]
    out = []
    for f in freqs.tolist():
        wavelen = 2 * math.pi / f
        if wavelen < context / high:
            out.append(1.0)
        elif wavelen > context / low:
            out.append(factor)
        else:
            smooth = (context / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def write_gguf(path, model, qtype, tokens, scores, types, rope_theta=CONFIG["rope_theta"], rope_scaling=None):
    """rope_scaling: None, or Hugging Face's linear or llama3 rope_scaling dict, written as llama.cpp's converter
    writes it (linear: llama.rope.scaling.type and .factor; llama3: a rope_freqs tensor, the parameters not recorded)."""
    c = model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("mode-j tiny test llama")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_freq_base(rope_theta)
    if rope_scaling is not None and rope_scaling["rope_type"] == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rope_scaling["factor"])
    elif rope_scaling is not None:
        assert rope_scaling["rope_type"] == "llama3", rope_scaling
        head_dim = c.hidden_size // c.num_attention_heads
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(rope_theta, head_dim, rope_scaling))
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    w.add_vocab_size(c.vocab_size)
    w.add_file_type(int(qtype))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    layer = {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    for name, p in model.state_dict().items():
        a = p.detach().numpy().astype(np.float32)
        if name in names:
            g = names[name]
        else:
            parts = name.split(".")
            g = f"blk.{parts[2]}.{layer['.'.join(parts[3:-1])]}.weight"
        if name.endswith("q_proj.weight"):
            a = permute(a, c.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            a = permute(a, c.num_key_value_heads)
        t = qtype if a.ndim == 2 else gguf.GGMLQuantizationType.F32  # llama.cpp keeps norms in F32
        if t == gguf.GGMLQuantizationType.F32:
            w.add_tensor(g, a)
        elif t == gguf.GGMLQuantizationType.F16:
            w.add_tensor(g, a.astype(np.float16))
        else:
            w.add_tensor(g, gguf.quants.quantize(a, t), raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    tokens, scores, types = vocabulary()
    model = build_model(len(tokens))
    rng = np.random.default_rng(SEED)
    ids = rng.integers(0, len(tokens), size=(2, 9)).astype(np.int64)
    out = {"input_ids": ids}
    meta = {"transformers": transformers.__version__, "gguf": gguf.__version__ if hasattr(gguf, "__version__") else "?"}
    expected_tokens = {}
    for label, qtype in TYPES.items():
        path = args.out / f"tiny-{label}.gguf"
        write_gguf(path, model, qtype, tokens, scores, types)
        loaded = transformers.AutoModelForCausalLM.from_pretrained(
            str(args.out), gguf_file=path.name, dtype=torch.float32
        ).eval()
        with torch.no_grad():
            out[f"logits.{label}"] = loaded(torch.from_numpy(ids)).logits.numpy()
        if label == "f32":
            tok = transformers.AutoTokenizer.from_pretrained(str(args.out), gguf_file=path.name)
            expected_tokens = {t: tok(t, add_special_tokens=False)["input_ids"] for t in TEXTS}
    with torch.no_grad():
        out["logits.original"] = model(torch.from_numpy(ids)).logits.numpy()
    meta["tokens"] = expected_tokens
    save_file(out, str(args.out / "reference.safetensors"), metadata={"mode_gguf_reference": json.dumps(meta)})


if __name__ == "__main__":
    main()
