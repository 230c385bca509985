"""Loads MoDE folders written by `mode export-hf` with transformers (trust_remote_code) and writes their logits.

usage: run_exported.py IDS_FILE BATCH SEQ DIR...
IDS_FILE holds BATCH*SEQ little-endian int32 token ids. For each DIR it writes DIR.logits, the float32 logits
[BATCH*SEQ, vocab] little-endian, and prints the loaded class name.
"""

import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM


def main():
    ids_file, batch, seq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ids = torch.from_numpy(np.fromfile(ids_file, dtype="<i4").astype(np.int64).reshape(batch, seq))
    for folder in sys.argv[4:]:
        model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True, dtype=torch.float32)
        model.eval()
        with torch.no_grad():
            logits = model(input_ids=ids).logits
        logits.reshape(batch * seq, -1).numpy().astype("<f4").tofile(folder + ".logits")
        print(folder, type(model).__name__)


if __name__ == "__main__":
    main()
