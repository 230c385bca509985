"""Configuration of a MoDE (Modular Domain Experts) model exported by MoDE-J's `mode export-hf`.

A plain Llama configuration (the frozen backbone) plus the MoDE settings, which are kept as extra attributes:
mode_num_blocks (B), mode_layers_per_expert (k), mode_num_experts (N), mode_domains, mode_routing
("dense", "topK", "sequence-dense" or "sequence-topK"), mode_merge ("mixture" or "residual"; absent means
"mixture") and mode_gate_input ("raw" or "rmsnorm"; absent means "raw").
"""

from transformers import LlamaConfig


class ModeLlamaConfig(LlamaConfig):
    model_type = "mode_llama"
