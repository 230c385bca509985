"""A MoDE (Modular Domain Experts) causal LM over a frozen Llama backbone, as exported by MoDE-J's `mode export-hf`.

The backbone's L layers are cut into B contiguous blocks. Block i runs the backbone slice (layers
i*L/B .. (i+1)*L/B - 1), N experts of k Llama decoder layers each, and a gate softmax(W x + b) over N+1 branches
(branch 0 = backbone, branch j+1 = expert j), all on the block input x:

    y = a_bb * backbone_slice(x) + sum_j a_j * expert_j(x)          (mode_merge "mixture", the paper's)
    y = backbone_slice(x) + sum_j a_j * (expert_j(x) - x)          (mode_merge "residual", dense routing only)

With mode_gate_input "rmsnorm" the gate reads x / sqrt(mean(x^2) + eps) instead of x.

Routing "dense" mixes every branch on every token. "topK" runs a branch only on the tokens whose K most probable
branches include it, with those K weights renormalised to sum to 1; a branch sees the tokens routed to it packed in
order per sequence at positions 0, 1, ... (so a token attends only to earlier tokens routed to the same branch).
"sequence-..." routing gates on the mean over the sequence of the block input. Weights: the backbone under plain
Llama names (model.*, lm_head.weight), experts under mode.blocks.{i}.experts.{j}.layers.{l}.* and gates under
mode.blocks.{i}.gate.{weight,bias}.

This forward has no key/value cache: every call recomputes the whole sequence.
"""

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaModel

from .configuration_mode import ModeLlamaConfig


class ModeExpert(nn.Module):
    """k Llama decoder layers of the backbone's width."""

    def __init__(self, config, layers):
        super().__init__()
        self.layers = nn.ModuleList([LlamaDecoderLayer(config, layer_idx=i) for i in range(layers)])


class ModeBlockWeights(nn.Module):
    """The experts and gate of one block."""

    def __init__(self, config):
        super().__init__()
        self.experts = nn.ModuleList(
            [ModeExpert(config, config.mode_layers_per_expert) for _ in range(config.mode_num_experts)]
        )
        self.gate = nn.Linear(config.hidden_size, config.mode_num_experts + 1, bias=True)


class ModeBlocks(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.blocks = nn.ModuleList([ModeBlockWeights(config) for _ in range(config.mode_num_blocks)])


def _parse_routing(text):
    """(per_sequence, top_k) from 'dense', 'top2', 'sequence-dense', 'sequence-top1'; top_k 0 means dense."""
    t = text.lower()
    per_sequence = t.startswith("sequence-")
    if per_sequence:
        t = t[len("sequence-"):]
    if t == "dense":
        return per_sequence, 0
    if t.startswith("top") and t[3:].isdigit():
        return per_sequence, int(t[3:])
    raise ValueError(f"unknown mode_routing '{text}'; use dense, topK, sequence-dense or sequence-topK")


class ModeForCausalLM(PreTrainedModel, GenerationMixin):
    config_class = ModeLlamaConfig
    base_model_prefix = "model"
    _no_split_modules = ["LlamaDecoderLayer"]

    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.lm_head = None if config.tie_word_embeddings else nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.mode = ModeBlocks(config)
        if config.num_hidden_layers % config.mode_num_blocks != 0:
            raise ValueError(
                f"mode_num_blocks {config.mode_num_blocks} does not divide num_hidden_layers {config.num_hidden_layers}"
            )
        self.per_sequence, self.top_k = _parse_routing(config.mode_routing)
        self.residual = getattr(config, "mode_merge", "mixture") == "residual"
        self.gate_norm = getattr(config, "mode_gate_input", "raw") == "rmsnorm"
        if self.residual and self.top_k != 0:
            raise ValueError("mode_merge 'residual' needs dense routing; this config has " + config.mode_routing)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def get_output_embeddings(self):
        return self.lm_head

    def _layers(self, layers, x):
        """Runs decoder layers on x [B, T, D] with causal attention at positions 0..T-1."""
        t = x.shape[1]
        positions = torch.arange(t, device=x.device).unsqueeze(0).expand(x.shape[0], -1)
        cos_sin = self.model.rotary_emb(x, positions)
        mask = torch.full((t, t), torch.finfo(x.dtype).min, dtype=x.dtype, device=x.device).triu(1)
        mask = mask[None, None].expand(x.shape[0], 1, t, t)
        for layer in layers:
            out = layer(x, attention_mask=mask, position_ids=positions, position_embeddings=cos_sin)
            x = out[0] if isinstance(out, tuple) else out
        return x

    def _branches(self, block):
        """Branch 0: the backbone slice; branch j+1: expert j (lists of decoder layers)."""
        per = self.config.num_hidden_layers // self.config.mode_num_blocks
        weights = self.mode.blocks[block]
        backbone = list(self.model.layers[block * per:(block + 1) * per])
        return [backbone] + [list(e.layers) for e in weights.experts]

    def _block(self, block, x):
        weights = self.mode.blocks[block]
        gate_in = x.mean(dim=1, keepdim=True) if self.per_sequence else x
        if self.gate_norm:
            gate_in = gate_in * torch.rsqrt(gate_in.pow(2).mean(-1, keepdim=True) + self.config.rms_norm_eps)
        probs = torch.softmax(weights.gate(gate_in), dim=-1).expand(x.shape[0], x.shape[1], -1)  # [B, T, N+1]
        branches = self._branches(block)
        if self.residual:
            y = self._layers(branches[0], x)
            for e, layers in enumerate(branches[1:], start=1):
                y = y + probs[..., e:e + 1] * (self._layers(layers, x) - x)
            return y
        if self.top_k == 0:
            y = torch.zeros_like(x)
            for e, layers in enumerate(branches):
                y = y + probs[..., e:e + 1] * self._layers(layers, x)
            return y
        # top-k: stable order, so ties go to the lower branch index
        order = torch.sort(probs, dim=-1, descending=True, stable=True).indices[..., :self.top_k]
        chosen = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, True)
        kept = torch.where(chosen, probs, torch.zeros_like(probs))
        weight = kept / kept.sum(dim=-1, keepdim=True)
        y = torch.zeros_like(x)
        for b in range(x.shape[0]):
            for e, layers in enumerate(branches):
                rows = chosen[b, :, e].nonzero().squeeze(-1)
                if rows.numel() == 0:
                    continue
                out = self._layers(layers, x[b:b + 1, rows])
                y[b, rows] += weight[b, rows, e:e + 1] * out[0]
        return y

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        if attention_mask is not None and not bool(attention_mask.all()):
            raise ValueError("padding is not supported: this MoDE model needs attention_mask of ones (or none)")
        x = self.model.embed_tokens(input_ids)
        for i in range(self.config.mode_num_blocks):
            x = self._block(i, x)
        x = self.model.norm(x)
        head = self.lm_head.weight if self.lm_head is not None else self.model.embed_tokens.weight
        logits = x @ head.T
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1), ignore_index=-100
            )
        return CausalLMOutputWithPast(loss=loss, logits=logits)

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, **kwargs):
        return {"input_ids": input_ids, "attention_mask": attention_mask}
