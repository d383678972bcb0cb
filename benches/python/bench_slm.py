"""PyTorch + transformers training and inference throughput of a Llama
sequence classifier, on the token ids the Rust benchmark uses. Called by
`slm-vs-llm bench slm --python ...`; prints one JSON line.

    python bench_slm.py MODEL_DIR IDS_JSON MODE FROZEN_LAYERS STEPS BATCH
MODE is `train` (AdamW steps on BATCH rows, embedding and the bottom
FROZEN_LAYERS layers frozen) or `infer` (no-grad forward, BATCH rows at a time).
"""
import json
import sys
import time

import torch
from transformers import LlamaForSequenceClassification

model_dir, ids_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
frozen, steps, batch = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
rows = json.load(open(ids_path))  # train: rows; infer: padded batches of rows
model = LlamaForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
model.config.pad_token_id = model.config.pad_token_id or 0


def batches():
    for start in range(0, len(rows) - batch + 1, batch):
        yield torch.tensor(rows[start:start + batch])


if mode == "train":
    model.train()
    for p in model.model.embed_tokens.parameters():
        p.requires_grad_(False)
    for layer in model.model.layers[:frozen]:
        for p in layer.parameters():
            p.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.01)
    data = list(batches())
    labels = torch.zeros(batch, dtype=torch.long)

    def step(x):
        loss = torch.nn.functional.cross_entropy(model(input_ids=x).logits, labels[: len(x)])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    step(data[0])  # warm-up
    start = time.perf_counter()
    for i in range(steps):
        step(data[i % len(data)])
    seconds = time.perf_counter() - start
    tokens = sum(data[i % len(data)].numel() for i in range(steps))
    result = {"steps": steps, "seconds": seconds, "tokens_per_second": tokens / seconds,
              "trainable_params": sum(p.numel() for p in trainable)}
else:
    # The Rust side's batches: length-sorted, right-padded, with the attention mask.
    model.eval()
    pad = model.config.pad_token_id
    data = [torch.tensor(b) for b in rows]
    with torch.inference_mode():
        model(input_ids=data[0], attention_mask=(data[0] != pad).long())  # warm-up
        start = time.perf_counter()
        for x in data:
            model(input_ids=x, attention_mask=(x != pad).long())
        seconds = time.perf_counter() - start
    n = sum(len(b) for b in rows)
    result = {"rows": n, "seconds": seconds, "rows_per_second": n / seconds}
# VmHWM, not ru_maxrss: after fork + exec the latter can report the parent's peak.
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
result.update({"peak_memory_mib": peak_kib / 1024,
               "torch": torch.__version__, "threads": torch.get_num_threads()})
print(json.dumps(result))
