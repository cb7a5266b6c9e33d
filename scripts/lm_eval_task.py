#!/usr/bin/env python3
"""Score a `prune eval --task` file with lm-eval-harness (Hugging Face backend, float32, CPU), for comparison.

Writes a throwaway lm-eval task (dataset_path: json, the file as its test split, output_type: multiple_choice,
doc_to_text/doc_to_choice/doc_to_target = context/choices/gold, metrics acc and acc_norm), runs it zero-shot
offline with --log_samples, and prints one JSON object: acc, acc_stderr, acc_norm, acc_norm_stderr, n and
"loglikelihoods", each question's per-choice summed log-likelihoods in file order.

usage: lm_eval_task.py MODEL_DIR TASK.jsonl [BATCH_SIZE]
"""
import json
import os
import sys
import tempfile

os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

model, task_file = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
batch_size = int(sys.argv[3]) if len(sys.argv) > 3 else 8

with tempfile.TemporaryDirectory() as work:
    os.environ["HF_DATASETS_CACHE"] = os.path.join(work, "datasets")
    import lm_eval
    from lm_eval.tasks import TaskManager

    with open(os.path.join(work, "prune_task.yaml"), "w") as f:
        f.write(f"""task: prune_task
dataset_path: json
dataset_kwargs:
  data_files:
    test: {json.dumps(task_file)}
test_split: test
output_type: multiple_choice
doc_to_text: context
doc_to_choice: choices
doc_to_target: gold
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
""")
    results = lm_eval.simple_evaluate(
        model="hf", model_args={"pretrained": model, "dtype": "float32"}, tasks=["prune_task"],
        num_fewshot=0, batch_size=batch_size, device="cpu", log_samples=True,
        task_manager=TaskManager(include_path=work))

metrics = results["results"]["prune_task"]
samples = sorted(results["samples"]["prune_task"], key=lambda s: s["doc_id"])
print(json.dumps({
    "acc": metrics["acc,none"], "acc_stderr": metrics["acc_stderr,none"],
    "acc_norm": metrics["acc_norm,none"], "acc_norm_stderr": metrics["acc_norm_stderr,none"],
    "n": len(samples),
    "loglikelihoods": [[float(r[0][0]) for r in s["resps"]] for s in samples],
}))
