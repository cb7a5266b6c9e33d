#!/usr/bin/env python3
"""Makes the small Llama checkpoints in Tests/Fixtures/checkpoints and what transformers computes on them.

usage: make_fixtures.py OUT_DIR [SMOLLM2_DIR]   (needs torch, transformers, safetensors)
       make_fixtures.py --distillation OUT_DIR     (the distillation reference alone; see distillation() below)

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



def distillation(out):
    """The distillation loss and gradients on the shipped stories260K, in float64, as OUT/distillation.{json,safetensors}.

    Student: Checkpoints/stories260K with layers 2-3 cut (0-based, inclusive; it keeps 0, 1, 4 as 0, 1, 2), training its
    last layer in full, the final norm and the tied embedding. Teacher: the whole checkpoint. Tokens: reference.json's
    input_ids (B=2, T=24), next-token targets over positions 0…T−2. Per counted row, with h the final-normed rows
    (transformers' last_hidden_state):
      loss_r = (1 − α)·CE(z_s, y) + α·τ²·KL(softmax(z_t/τ) ‖ softmax(z_s/τ)) + β·‖h_s − h_t‖² / (‖h_t‖² + ε)
    loss = Σ_r loss_r / count. Gradients of a few of the student's parameters (float32), by HF name."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    checkpoint = os.path.join(root, "Checkpoints", "stories260K")
    ids = torch.tensor(json.load(open(os.path.join(root, "Tests", "Fixtures", "reference", "stories260K", "reference.json")))["input_ids"])
    alpha, tau, beta, eps, cut = 0.5, 2.0, 0.5, 1e-6, [2, 3]
    teacher = LlamaForCausalLM.from_pretrained(checkpoint, dtype=torch.float64).eval()
    student = LlamaForCausalLM.from_pretrained(checkpoint, dtype=torch.float64).eval()
    kept = [l for i, l in enumerate(student.model.layers) if i not in cut]
    student.model.layers = torch.nn.ModuleList(kept)
    student.config.num_hidden_layers = len(kept)
    trained = {"model.embed_tokens.weight", "model.norm.weight"} | {n for n, _ in student.named_parameters() if n.startswith("model.layers.2.")}
    for n, p in student.named_parameters():
        p.requires_grad_(n in trained)
    with torch.no_grad():
        t_hidden = teacher.model(ids, use_cache=False).last_hidden_state          # (B, T, C), final-normed
        t_logits = teacher.lm_head(t_hidden)
        assert torch.allclose(t_logits, teacher(ids, use_cache=False).logits)
    s_hidden = student.model(ids, use_cache=False).last_hidden_state
    s_logits = student.lm_head(s_hidden)
    z, zt = s_logits[:, :-1].reshape(-1, s_logits.shape[-1]), t_logits[:, :-1].reshape(-1, t_logits.shape[-1])
    y = ids[:, 1:].reshape(-1)
    hs, ht = s_hidden[:, :-1].reshape(-1, s_hidden.shape[-1]), t_hidden[:, :-1].reshape(-1, t_hidden.shape[-1])
    ce = torch.nn.functional.cross_entropy(z, y, reduction="none")
    log_q, log_p = torch.log_softmax(z / tau, -1), torch.log_softmax(zt / tau, -1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    hidden = ((hs - ht) ** 2).sum(-1) / ((ht ** 2).sum(-1) + eps)
    loss = ((1 - alpha) * ce + alpha * tau * tau * kl + beta * hidden).mean()
    loss.backward()
    named = dict(student.named_parameters())
    stored = ["model.embed_tokens.weight", "model.layers.2.self_attn.q_proj.weight", "model.layers.2.self_attn.o_proj.weight",
              "model.layers.2.post_attention_layernorm.weight", "model.norm.weight"]
    save_file({"grad." + n: named[n].grad.to(torch.float32).contiguous() for n in stored}, os.path.join(out, "distillation.safetensors"))
    json.dump({"definitions": distillation.__doc__, "input_ids": ids.tolist(), "cut": cut, "alpha": alpha, "temperature": tau,
               "hidden_weight": beta, "hidden_epsilon": eps, "trainable": sorted(trained), "count": len(y), "loss": loss.item(),
               "cross_entropy": ce.mean().item(), "divergence": kl.mean().item(), "hidden": hidden.mean().item()},
              open(os.path.join(out, "distillation.json"), "w"), indent=1)
    print("distillation", loss.item(), ce.mean().item(), kl.mean().item(), hidden.mean().item())


if sys.argv[1] == "--distillation":
    distillation(sys.argv[2])
    sys.exit(0)

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
