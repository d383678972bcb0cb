"""One contrastive training step of all-MiniLM-L6-v2 in sentence-transformers,
frozen as a test fixture: the CosineSimilarityLoss of a fixed batch of pairs
and the gradients it gives (SetFit's body training, before the optimiser).

Re-run (once; the output is committed):
    ~/.cache/slm-vs-llm/venv-bench/bin/python benches/python/setfit_step_reference.py \
        data/models/all-MiniLM-L6-v2 support-crate/tests/fixtures/setfit_step_reference.json
The venv comes from `bash scripts/bench.sh --setup-only`.
"""
import json
import sys

import torch
from sentence_transformers import SentenceTransformer, losses

PAIRS = [
    ("Wall St. Bears Claw Back Into the Black (Reuters).",
     "Oil and Economy Cloud Stocks' Outlook (Reuters).", 1.0),
    ("Olympic champion wins the 100 metres final in Athens.",
     "Stocks end lower as oil prices climb to a new record.", 0.0),
    ("The Race is On: Second Private Team Sets Launch Date for Human Spaceflight (SPACE.com).",
     "New chip promises faster laptops with longer battery life.", 1.0),
    ("Fears for T N pension after talks with stricken parent firm Federal Mogul.",
     "Rebels attack a convoy near the capital, officials say.", 0.0),
]
# Weights whose gradients the Rust test compares, by their safetensors names.
CHECKED = [
    "embeddings.word_embeddings.weight",
    "embeddings.LayerNorm.weight",
    "encoder.layer.0.attention.self.query.weight",
    "encoder.layer.2.attention.output.dense.bias",
    "encoder.layer.5.intermediate.dense.weight",
    "encoder.layer.5.output.LayerNorm.bias",
]

model_dir, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
model = SentenceTransformer(model_dir, device="cpu")
model.max_seq_length = 128
# Dropout off (eval mode; gradients flow all the same): the step must be
# deterministic. Setting the Dropout modules' p is not enough: BERT's SDPA
# attention reads its dropout rate from the config when training.
model.eval()
loss_fn = losses.CosineSimilarityLoss(model)
features = [model.tokenize([a for a, _, _ in PAIRS]), model.tokenize([b for _, b, _ in PAIRS])]
labels = torch.tensor([y for _, _, y in PAIRS])
loss = loss_fn(features, labels)
loss.backward()
bert = model[0].auto_model
params = dict(bert.named_parameters())
gradients = {}
for name in CHECKED:
    g = params[name].grad.detach().flatten()
    top = torch.topk(g.abs(), 8).indices
    gradients[name] = {
        "norm": float(g.norm()),
        "indices": [int(i) for i in top],
        "values": [float(g[i]) for i in top],
    }
total = float(torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in bert.parameters() if p.grad is not None)))
with open(out, "w") as f:
    json.dump({"model": "sentence-transformers/all-MiniLM-L6-v2", "max_seq_length": 128,
               "pairs": [{"a": a, "b": b, "target": y} for a, b, y in PAIRS],
               "loss": float(loss.detach()), "gradient_norm": total, "gradients": gradients}, f, indent=1)
    f.write("\n")
print(f"wrote the loss {float(loss.detach()):.6f} and the gradients of {len(CHECKED)} weights to {out}")
