#!/usr/bin/env python3
"""Make the KJV sentence-ending task (a zero-shot multiple-choice task for `prune eval --task`).

Each record is one sentence of the shipped KJV validation chapters (Joshua, Ruth): the context is its first half
(by words), the choices are its true second half and the second halves of three other sentences, in random order.
The chapters do not mark verses, so sentences (ending in . ? !) stand for them. Deterministic: the same input and
seed give the same file.

usage: make_kjv_task.py [SRC] [DST]   (defaults: Recipes/data/kjv-valid.jsonl → Recipes/data/kjv-endings.jsonl)
"""
import json
import random
import re
import sys

SEED = 26          # issue 26
RECORDS = 300
CHOICES = 4
MIN_WORDS, MAX_WORDS = 8, 40

src = sys.argv[1] if len(sys.argv) > 1 else "Recipes/data/kjv-valid.jsonl"
dst = sys.argv[2] if len(sys.argv) > 2 else "Recipes/data/kjv-endings.jsonl"

sentences = []
with open(src, encoding="utf-8") as f:
    for line in f:
        if line.strip():
            sentences += re.split(r"(?<=[.?!])\s+", json.loads(line)["text"].strip())
splits = []
for s in sentences:
    words = s.split()
    if MIN_WORDS <= len(words) <= MAX_WORDS:
        half = (len(words) + 1) // 2
        splits.append((" ".join(words[:half]), " ".join(words[half:])))

rng = random.Random(SEED)
chosen = sorted(rng.sample(range(len(splits)), RECORDS))
endings = [ending for _, ending in splits]
with open(dst, "w", encoding="utf-8") as out:
    for i in chosen:
        context, ending = splits[i]
        distractors = set()
        while len(distractors) < CHOICES - 1:
            other = rng.choice(endings)
            if other != ending:
                distractors.add(other)
        choices = sorted(distractors) + [ending]
        rng.shuffle(choices)
        out.write(json.dumps({"context": context, "choices": choices, "gold": choices.index(ending)}) + "\n")
print(f"{dst}: {RECORDS} records from {len(splits)} sentences of {MIN_WORDS}-{MAX_WORDS} words")
