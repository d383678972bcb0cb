"""Reference token ids and next-token logits of SmolLM2-135M-Instruct (GGUF),
from transformers' own GGUF loader (dequantised weights, its tokenizer
conversion), frozen as a test fixture for `support-crate/tests/real_slm.rs`.

Re-run (once; the output is committed):
    ~/.cache/slm-vs-llm/venv-bench/bin/python benches/python/slm_reference.py \
        data/models/SmolLM2-135M-Instruct support-crate/tests/fixtures/smollm2_reference.json
The venv comes from `bash scripts/bench.sh --setup-only`.
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

SENTENCES = [
    "Wall St. Bears Claw Back Into the Black (Reuters). Reuters - Short-sellers, Wall Street's dwindling band of ultra-cynics, are seeing green again.",
    "Oil prices soar to all-time record, posing new menace to US economy (AFP). AFP - Tearaway world oil prices, toppling records and straining wallets, present a new economic menace barely three months before the US presidential elections.",
    "Sharapova wins in Athens 2004: 6-3, 7-5 in 95 minutes; $1,234.56 prize.",
    "<|im_start|>user\nClassify: Intel's new chip<|im_end|>\n",
    "  leading spaces, émigré café, 東京, emoji 🙂 and tabs\tend",
]
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

model_dir, out = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(model_dir, gguf_file=GGUF)
model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=GGUF, torch_dtype=torch.float32).eval()
cases = []
with torch.no_grad():
    for s in SENTENCES:
        ids = tok(s, add_special_tokens=False)["input_ids"]
        logits = model(torch.tensor([ids])).logits[0, -1]
        top = torch.topk(logits, 10)
        cases.append({"text": s, "ids": ids,
                      "top_ids": top.indices.tolist(),
                      "top_logits": [round(float(x), 5) for x in top.values],
                      "logits_first_16": [round(float(x), 5) for x in logits[:16]]})
with open(out, "w") as f:
    json.dump({"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "gguf": GGUF,
               "reference": "transformers GGUF loader (dequantised f32)", "cases": cases}, f, ensure_ascii=False, indent=1)
    f.write("\n")
print(f"wrote {len(cases)} reference cases to {out}")
