"""sentence-transformers (PyTorch, CPU) embedding throughput on the texts the
Rust benchmark uses. Called by `slm-vs-llm bench embed --python ...`; prints one
JSON line.

    python bench_embed.py MODEL_DIR TEXTS_JSON BATCH_SIZE MAX_SEQ_LENGTH

One timed run after a one-batch warm-up, as on the Rust side; the Rust side
calls this once per round, interleaved with its own runs.
"""
import json
import sys
import time

import torch
from sentence_transformers import SentenceTransformer

model_dir, texts_path, batch_size, max_len = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
texts = json.load(open(texts_path))
model = SentenceTransformer(model_dir, device="cpu")
model.max_seq_length = max_len
model.encode(texts[:batch_size], batch_size=batch_size, normalize_embeddings=True)  # warm-up
start = time.perf_counter()
model.encode(texts, batch_size=batch_size, normalize_embeddings=True)
seconds = time.perf_counter() - start
print(json.dumps({"texts": len(texts), "seconds": seconds, "sentences_per_second": len(texts) / seconds,
                  "torch": torch.__version__, "threads": torch.get_num_threads()}))
