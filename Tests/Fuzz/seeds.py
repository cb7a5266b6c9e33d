#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target from files in the repository (run by run.sh).

usage: seeds.py ROOT OUT   (OUT/<Target>/ receives the seeds)
"""
import json, os, struct, sys, glob

root, out = sys.argv[1], sys.argv[2]

def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

def small_safetensors(path, budget=2048):
    """The file's header with only the tensors inside the first `budget` data bytes, and those bytes."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    keep = {k: v for k, v in header.items() if k == "__metadata__" or v["data_offsets"][1] <= budget}
    end = max([v["data_offsets"][1] for k, v in keep.items() if k != "__metadata__"] + [0])
    text = json.dumps(keep).encode()
    return struct.pack("<Q", len(text)) + text + raw[8 + n:8 + n + end]

files = sorted(glob.glob(os.path.join(root, "Tests/Fixtures/checkpoints/*/*.safetensors")) +
               glob.glob(os.path.join(root, "Checkpoints/*/model.safetensors")))
for i, path in enumerate(files):
    put("SafetensorsHeader", f"seed-{i}", small_safetensors(path))
for i, path in enumerate(sorted(glob.glob(os.path.join(root, "Tests/Fixtures/checkpoints/*/model.safetensors.index.json")))):
    put("SafetensorsIndex", f"seed-{i}", open(path, "rb").read())
put("SafetensorsIndex", "seed-valid", json.dumps({"metadata": {"total_size": 1}, "weight_map": {
    name: "model-00001-of-00001.safetensors" for name in [
        "model.embed_tokens.weight", "model.norm.weight", "model.layers.0.input_layernorm.weight",
        "model.layers.0.post_attention_layernorm.weight"] + [
        f"model.layers.0.{m}.{p}_proj.weight" for m, ps in [("self_attn", "qkvo"), ("mlp", ["gate", "up", "down"])] for p in ps]}}))
configs = sorted(glob.glob(os.path.join(root, "Tests/Fixtures/checkpoints/*/*config.json")) +
                 glob.glob(os.path.join(root, "Checkpoints/*/*.json")) +
                 glob.glob(os.path.join(root, "Tests/Fixtures/tokenizers/*/*config.json")))
for i, path in enumerate(configs):
    if os.path.getsize(path) < 65536:
        put("ConfigJSON", f"seed-{i}", open(path, "rb").read())
for i, path in enumerate(sorted(glob.glob(os.path.join(root, "Checkpoints/*/tokenizer.json")))):
    put("TokenizerJSON", f"seed-{i}", open(path, "rb").read())
# The SmolLM2 tokenizer.json cut down to its first 300 vocabulary entries and merges.
smol = json.load(open(os.path.join(root, "Tests/Fixtures/tokenizers/smollm2/tokenizer.json")))
vocab = dict(list(smol["model"]["vocab"].items())[:300])
smol["model"]["vocab"] = vocab
smol["model"]["merges"] = [m for m in smol["model"]["merges"][:2000]
                           if all(p in vocab for p in (m.split(" ") if isinstance(m, str) else m))][:200]
smol["added_tokens"] = [t for t in smol.get("added_tokens", []) if t["id"] < 300]
put("TokenizerJSON", "seed-smollm2-small", json.dumps(smol))
texts = []
for path in [os.path.join(root, "Recipes/data/kjv-valid.jsonl")]:
    for line in open(path, encoding="utf-8").read().splitlines()[:8]:
        texts.append(json.loads(line)["text"][:600])
texts += [open(os.path.join(root, "README.md"), encoding="utf-8").read()[:800], "Hi café ✓ 日本語 🙂\n\t  x", "<|im_start|>user\nHi<|im_end|>"]
for i, t in enumerate(texts):
    put("BPEEncode", f"seed-{i}", t)
    put("SentencePieceEncode", f"seed-{i}", t)
data = open(os.path.join(root, "Recipes/data/kjv-valid.jsonl"), encoding="utf-8").read().splitlines()
put("DatasetRecords", "seed-kjv", "\n".join(l[:300] + '"}' if len(l) > 300 else l for l in data[:3]))
put("DatasetRecords", "seed-ids", '{"input_ids": [1, 2, 3]}\n{"input_ids": [4, 5]}\n')
put("DatasetRecords", "seed-prompt", '{"prompt": "Q: 2+2?", "completion": " 4"}\n{"prompt": "Hi", "completion": " there"}\n')
put("DatasetRecords", "seed-messages", '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}\n')
templates = [json.load(open(p)).get("chat_template") for p in glob.glob(os.path.join(root, "Tests/Fixtures/tokenizers/*/tokenizer_config.json"))]
for i, t in enumerate(t for t in templates if isinstance(t, str)):
    put("ChatTemplate", f"seed-{i}", t)
put("ChatTemplate", "seed-llama3", "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
put("ChatTemplate", "seed-features", "{% set ns = namespace(n=0) %}{% for k, v in {'a': 1, 'b': [1,2]}.items() if k != 'c' %}{{ k ~ v|string|upper }}{% set ns.n = ns.n + 1 %}{% else %}none{% endfor %}{{ range(3)|list|join(',') }}{{ 'x' * 3 }}{{ messages[-1].content[::-1] if messages|length is even else raise_exception('odd') }}{# c #}")
