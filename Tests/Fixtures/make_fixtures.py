#!/usr/bin/env python3
"""Makes the small Llama checkpoints in Tests/Fixtures/checkpoints and what transformers computes on them.

usage: make_fixtures.py OUT_DIR   (needs torch, transformers, safetensors)

Each case is a tiny random Llama checkpoint written by transformers' save_pretrained in a layout the
project must read (untied lm_head, sharded, bf16, f16, llama3 and yarn rope scaling, head_dim != C/H, biases).
Beside it, expected.safetensors holds `input_ids` (2, 12) and `logits` (2, 12, V) computed in float64 from
the stored weights, and expected.json the mean next-token loss. Also records the loss of the real
SmolLM2-135M (built by scripts/get-smollm2.sh) on fixed ids when that checkpoint is given.
"""
import json, os, sys
import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

out = sys.argv[1]
base = dict(vocab_size=96, hidden_size=48, intermediate_size=80, num_hidden_layers=3, num_attention_heads=6,
            num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2)
cases = {
    "untied-f32": dict(tie_word_embeddings=False),
    "tied-bf16": dict(tie_word_embeddings=True, dtype="bfloat16"),
    "untied-f16-sharded": dict(tie_word_embeddings=False, dtype="float16", shard="40KB"),
    "llama3-rope": dict(tie_word_embeddings=True, rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                         high_freq_factor=4.0, original_max_position_embeddings=16), rope_theta=500000.0),
    "headdim-bias-linear-rope": dict(tie_word_embeddings=False, head_dim=12, attention_bias=True, mlp_bias=True,
                                     rope_scaling=dict(rope_type="linear", factor=2.0)),
    "yarn-rope": dict(tie_word_embeddings=True, rope_scaling=dict(rope_type="yarn", factor=4.0,
                      original_max_position_embeddings=8)),
}
torch.manual_seed(0)
ids = torch.randint(3, base["vocab_size"], (2, 12))
for name, extra in cases.items():
    extra = dict(extra)
    dtype = extra.pop("dtype", "float32")
    shard = extra.pop("shard", None)
    cfg = LlamaConfig(**{**base, **extra})
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # norms away from 1 so that their weights matter
        for n, p in model.named_parameters():
            if "norm" in n: p.copy_(1 + 0.1 * torch.randn_like(p))
            if "bias" in n: p.copy_(0.05 * torch.randn_like(p))
    model = model.to(getattr(torch, dtype))
    d = os.path.join(out, name)
    model.save_pretrained(d, max_shard_size=shard or "1GB")
    ref = LlamaForCausalLM.from_pretrained(d, dtype=torch.float64).eval()
    with torch.no_grad():
        r = ref(ids, labels=ids)
    save_file({"input_ids": ids.to(torch.int64), "logits": r.logits.to(torch.float32).contiguous()},
              os.path.join(d, "expected.safetensors"))
    json.dump({"loss": r.loss.item(), "dtype": dtype, "sharded": shard is not None}, open(os.path.join(d, "expected.json"), "w"))
    print(name, r.loss.item())

if len(sys.argv) > 2:  # the real SmolLM2-135M
    smol = sys.argv[2]
    ids = torch.tensor([[1 + (i * 7919) % 49000 for i in range(64)]])
    m = LlamaForCausalLM.from_pretrained(smol, dtype=torch.float64).eval()
    with torch.no_grad():
        loss = m(ids, labels=ids).loss.item()
    json.dump({"input_ids": ids[0].tolist(), "loss": loss}, open(os.path.join(out, "smollm2-135m-loss.json"), "w"))
    print("smollm2", loss)
