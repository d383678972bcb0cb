"""Reference sentence embeddings from sentence-transformers, frozen as a test fixture.

Re-run (once; the output is committed):
    ~/.cache/slm-vs-llm/venv-bench/bin/python benches/python/embed_reference.py \
        data/models/all-MiniLM-L6-v2 support-crate/tests/fixtures/minilm_reference.json
The venv comes from `bash scripts/bench.sh --setup-only`.
"""
import json
import sys

from sentence_transformers import SentenceTransformer

SENTENCES = [
    "Fears for T N pension after talks. Unions representing workers at Turner Newall say they are 'disappointed' after talks with stricken parent firm Federal Mogul.",
    "The Race is On: Second Private Team Sets Launch Date for Human Spaceflight (SPACE.com).",
    "Wall St. Bears Claw Back Into the Black (Reuters).",
    "A short one.",
    "Olympic champion wins the 100 metres final in Athens as the crowd roars " * 8,
]

model_dir, out = sys.argv[1], sys.argv[2]
model = SentenceTransformer(model_dir, device="cpu")
model.max_seq_length = 256
vectors = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
with open(out, "w") as f:
    json.dump({"model": "sentence-transformers/all-MiniLM-L6-v2", "max_seq_length": 256,
               "sentences": SENTENCES, "embeddings": [[round(float(x), 7) for x in v] for v in vectors]}, f)
    f.write("\n")
print(f"wrote {len(SENTENCES)} reference embeddings to {out}")
