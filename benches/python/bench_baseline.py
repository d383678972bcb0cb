"""scikit-learn's TF-IDF + logistic regression on the split the Rust baseline
uses, with the same settings. Called by `slm-vs-llm bench baseline --python ...`;
prints one JSON line.

    python bench_baseline.py DATA_JSON C MIN_DF
DATA_JSON: {"train": [[text, label], ...], "test": [[text, label], ...]}
"""
import json
import sys
import time

import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

data = json.load(open(sys.argv[1]))
c, min_df = float(sys.argv[2]), int(sys.argv[3])
train_x, train_y = zip(*data["train"])
test_x, test_y = zip(*data["test"])
start = time.perf_counter()
vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df)
x = vectorizer.fit_transform(train_x)
model = LogisticRegression(C=c, max_iter=1000).fit(x, train_y)
fit_seconds = time.perf_counter() - start
start = time.perf_counter()
predictions = model.predict(vectorizer.transform(test_x))
predict_seconds = time.perf_counter() - start
accuracy = sum(int(p == y) for p, y in zip(predictions, test_y)) / len(test_y)
print(json.dumps({"features": len(vectorizer.vocabulary_), "accuracy": accuracy, "fit_seconds": fit_seconds,
                  "predict_seconds": predict_seconds, "iterations": int(max(model.n_iter_)),
                  "sklearn": sklearn.__version__}))
