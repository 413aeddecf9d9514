"""Tokenizer fixtures for TokenizerTests: small tokenizers trained with Hugging Face
`tokenizers` in the styles the MoE families use, and what `tokenizers` answers for texts in
many scripts (ids with the post-processor applied, and the decoding with special tokens kept).

    /work/venv/bin/python scripts/make_tokenizer_fixtures.py   # pip install tokenizers
writes Tests/Fixtures/tokenizers/<name>.json and <name>.expected.json."""
import glob, json, os
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "tokenizers")
os.makedirs(out, exist_ok=True)

def corpus():
    texts = []
    for path in sorted(glob.glob("/usr/share/games/fortunes/*"))[:40]:
        if path.endswith(".dat") or os.path.isdir(path):
            continue
        with open(path, "rb") as f:
            texts.append(f.read().decode("utf-8", "replace"))
    texts += ["Ünïcödé café naïve — «кириллица» 中文字符 日本語 🙂👍🏽 def f(x):\n\treturn x**2\r\n"] * 50
    return texts

TEXTS = [
    "Hello, world! It's a test.",
    "  leading spaces and   runs of    whitespace\t\ttabs\n\nnewlines  ",
    "Ünïcödé café naïve résumé Ångström",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "中文字符测试，日本語のテキスト、한국어 텍스트",
    "emoji 🙂👍🏽🇪🇸 and ZWJ 👩‍👩‍👧",
    "def f(x):\n\treturn x**2  # comment\r\nprint(f(3))",
    "numbers 12345 3.14159 1,000,000 and 2026-11-30",
    "text with <|endoftext|> inside<|endoftext|>twice",
    "CRLF line\r\nanother\r\n",
    "",
    " ",
    "it's we're they've I'm you'll he'd",
]

# Random strings over the pieces the expressions treat differently, seeded.
import random
rng = random.Random(7)
ALPHABET = ["a", "Z", "é", "e\u0301", "ß", "Ж", "中", "한", "ٱ", "1", "٣", "½", " ", "  ", "\t", "\n", "\r\n", "\u00a0",
            "\u3000", "'", "'s", "'LL", "!", "...", "-", "_", "🙂", "👍🏽", "\u200d", "<|endoftext|>", "<|im_start|>", "#", "\\"]
RANDOM = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 24))) for _ in range(200)]

def write(name, tok):
    tok.save(os.path.join(out, name + ".json"))
    cases = []
    for t in TEXTS + RANDOM:
        ids = tok.encode(t).ids
        cases.append({"text": t, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
    with open(os.path.join(out, name + ".expected.json"), "w") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
    print(name, len(tok.get_vocab()), "tokens")

# GPT-2 / Qwen style: byte-level BPE, the ByteLevel pre-tokenizer's own regex.
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
tok.decoder = decoders.ByteLevel()
tok.post_processor = processors.ByteLevel(trim_offsets=False)
trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
tok.train_from_iterator(corpus(), trainer)
write("bytelevel-bpe", tok)

# Qwen2 / Qwen3 style: NFC, a Split on Qwen2's expression (Isolated), byte-level without its
# own expression, ByteLevel decoding; special tokens as Qwen's tokenizer.json spells them.
QWEN2 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
from tokenizers import normalizers, Regex
tok = Tokenizer(models.BPE(ignore_merges=False))
tok.normalizer = normalizers.NFC()
tok.pre_tokenizer = pre_tokenizers.Sequence([
    pre_tokenizers.Split(Regex(QWEN2), behavior="isolated", invert=False),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
])
tok.decoder = decoders.ByteLevel()
tok.post_processor = processors.ByteLevel(trim_offsets=False)
trainer = trainers.BpeTrainer(vocab_size=900, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
tok.train_from_iterator(corpus(), trainer)
TEXTS += ["IT'S SHOUTED 'LL", "mixed\r\n\r\nlines\n\n\nand  \n  spaces", "x1234y", "Cafe\u0301 decomposed e\u0301", "<|im_start|>user\nhi<|im_end|>"]
write("qwen2-bpe", tok)

# A template post-processor (BOS/EOS around the text, as OLMoE's and DeepSeek's files have).
tok.post_processor = processors.TemplateProcessing(
    single="<|im_start|> $A <|im_end|>", pair="<|im_start|> $A <|im_end|> $B:1 <|im_end|>:1",
    special_tokens=[("<|im_start|>", tok.token_to_id("<|im_start|>")), ("<|im_end|>", tok.token_to_id("<|im_end|>"))])
write("qwen2-bpe-template", tok)

# SentencePiece style, as Llama/Mixtral's tokenizer.json: "▁" for spaces by the normalizer
# (Prepend + Replace), no pre-tokenizer (a text is one word), character-level BPE with
# byte_fallback and fuse_unk, the matching decoder chain, "<s>" in front. A small alphabet
# leaves CJK, Cyrillic and emoji to the byte fallback.
def with_byte_tokens(tok):
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    nxt = max(vocab.values()) + 1
    for b in range(256):
        name = "<0x%02X>" % b
        if name not in vocab:
            vocab[name] = nxt
            nxt += 1
    return Tokenizer.from_str(json.dumps(spec))

def lines():
    return [l for t in corpus() for l in t.splitlines() if l.strip()]

tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=90)
tok.train_from_iterator(lines(), trainer)
tok = with_byte_tokens(tok)
tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B:1",
                                                   special_tokens=[("<s>", tok.token_to_id("<s>"))])
TEXTS += ["<s>a special token first", "ends with </s>", "double  space", "▁already▁metaspace", "\u00e9\u00e9\u00e9 unknownish 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"]
write("sentencepiece-bpe", tok)

# The newer spelling: Metaspace pre-tokenizer (prepend_scheme first, split) with NFKC before
# it, no byte fallback (unknown characters fused into one <unk>), the Metaspace decoder.
tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
tok.normalizer = normalizers.NFKC()
tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True)
trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=90)
tok.train_from_iterator(lines(), trainer)
write("metaspace-bpe", tok)

# DeepSeek style: Splits on runs of up to three digits, on CJK runs, then on its main
# expression (each Isolated), then ByteLevel without its own expression.
DS_DIGITS = r"\p{N}{1,3}"
DS_CJK = "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+"
DS_MAIN = r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
# gpt-oss style (o200k): one Split with cased words, contractions inside, digits by three.
O200K = r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

def byte_level_with(pre, name, extra_texts=()):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=900, special_tokens=["<|endoftext|>", "<|im_start|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    write(name, tok)

TEXTS += ["ALLCAPS and CamelCase words, McDonald's DON'T", "path/to/file\r\n/x", "１２３ full-width ٣٤٥ Arabic ½ fraction 1234567",
          "漢字かなカナ混じり文123", "«quotes» „low“ — dash…"]
byte_level_with(pre_tokenizers.Sequence([
    pre_tokenizers.Split(Regex(DS_DIGITS), behavior="isolated", invert=False),
    pre_tokenizers.Split(Regex(DS_CJK), behavior="isolated", invert=False),
    pre_tokenizers.Split(Regex(DS_MAIN), behavior="isolated", invert=False),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), "deepseek-bpe")
byte_level_with(pre_tokenizers.Sequence([
    pre_tokenizers.Split(Regex(O200K), behavior="isolated", invert=False),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), "o200k-bpe")
# Digits one by one, then GPT-2's expression on each piece (with a prefix space per piece).
byte_level_with(pre_tokenizers.Sequence([
    pre_tokenizers.Digits(individual_digits=True),
    pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)]), "digits-bpe")
byte_level_with(pre_tokenizers.Sequence([
    pre_tokenizers.Digits(individual_digits=False),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]), "digit-runs-bpe")

# Added tokens with single_word: a match inside a word (letters, digits, "_" beside it) is
# not the token; the text is then tokenized as text.
from tokenizers import AddedToken
tok = Tokenizer.from_file(os.path.join(out, "bytelevel-bpe.json"))
tok.add_tokens([AddedToken("cat", single_word=True), AddedToken("<tag>", single_word=True, special=True),
                AddedToken("dog", single_word=True, lstrip=True, rstrip=True), AddedToken("catalog", single_word=False)])
TEXTS += ["cat catalog bobcat cat_x _cat écat caté 1cat cat1 (cat) cat.", "<tag>x x<tag> <tag> <tag><tag> a<tag>b",
          "hot dog  dogs  dog\tdog", "catcat cat-cat ćat 中cat cat中 ٣cat"]
RANDOM += ["".join(rng.choice(["cat", "dog", "<tag>", "catalog", " ", "x", "_", "é", "1", "中", "-", "\n"]) for _ in range(rng.randint(1, 10)))
           for _ in range(100)]
write("single-word-bpe", tok)
