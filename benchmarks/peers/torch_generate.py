#!/usr/bin/env python3
"""PyTorch peer of `mode bench`: greedy decoding tokens/s with a KV cache on the CPU (or a GPU).

The same Llama-style model as MoDE-J's benchmark (RMSNorm, RoPE, grouped-query attention, SwiGLU, tied
embeddings, float32, random weights) as Hugging Face transformers' LlamaForCausalLM, generating greedily with
`generate(use_cache=True)` from a random prompt. Prefill and decode are timed apart: one run generates 1 token (the
prompt's pass), another `--new` tokens; decode tokens/s = (new - 1) / (time(new) - time(1)), the median over
`--repeats` pairs. Prints one JSON object on stdout.

    python3 benchmarks/peers/torch_generate.py --threads 2 --prompt 128 --new 128
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--ffn", type=int, default=688)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--prompt", type=int, default=128, help="prompt tokens")
    p.add_argument("--new", type=int, default=128, help="generated tokens")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument("--eps", type=float, default=1e-5)
    p.add_argument("--device", default="cpu")
    return p.parse_args()


def main():
    args = parse_args()
    if args.new < 2 or args.prompt < 1 or args.prompt + args.new > args.context:
        sys.exit("torch_generate.py: need --new >= 2, --prompt >= 1 and prompt + new <= context")
    import torch
    try:
        import transformers
        from transformers import LlamaConfig, LlamaForCausalLM
    except ImportError as e:
        sys.exit("torch_generate.py: transformers is not installed (%s); pip install transformers" % e)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = LlamaConfig(
        vocab_size=args.vocab, hidden_size=args.dim, num_hidden_layers=args.layers,
        num_attention_heads=args.heads, num_key_value_heads=args.kv_heads, intermediate_size=args.ffn,
        max_position_embeddings=args.context, rope_theta=args.rope_theta, rms_norm_eps=args.eps,
        tie_word_embeddings=True, attention_bias=False, mlp_bias=False, bos_token_id=None, eos_token_id=None,
        pad_token_id=None)
    model = LlamaForCausalLM(cfg).to(device=args.device, dtype=torch.float32).eval()
    prompt = torch.randint(0, args.vocab, (1, args.prompt), device=args.device)

    def run(n):
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False, use_cache=True,
                                 pad_token_id=0)
        if args.device != "cpu":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        assert out.shape[1] == args.prompt + n, out.shape
        return elapsed

    run(args.new)  # warm-up
    prefill, decode = [], []
    for _ in range(args.repeats):
        one = run(1)
        full = run(args.new)
        prefill.append(args.prompt / one)
        decode.append((args.new - 1) / max(full - one, 1e-9))
    print(json.dumps({
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "prompt": args.prompt,
        "new": args.new,
        "prefill_tokens_per_second": statistics.median(prefill),
        "decode_tokens_per_second": statistics.median(decode),
        "decode_runs": decode,
    }))


if __name__ == "__main__":
    main()
