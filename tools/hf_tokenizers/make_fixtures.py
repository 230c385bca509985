"""Writes the Hugging Face tokenizer fixtures (model/src/test/resources/hf-tokenizers/): small BPE tokenizers
trained with the `tokenizers` library in the configuration of the real Llama-2 and Llama-3 `tokenizer.json` files,
and the ids and decoded strings that `tokenizers` itself produces for a varied set of texts."""

import argparse
import gzip
import json
import pathlib

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "model/src/test/resources/hf-tokenizers"
CORPORA = ROOT / "model/src/main/resources/corpora"

# Llama-3's split pattern, as in its tokenizer.json.
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|reserved_special_token_2|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
]

# A little non-English text so that merges over accented letters, CJK and emoji exist beside the English and code.
EXTRA_TRAINING = [
    "Le café est très bon, mais la crème brûlée est meilleure. Où est la bibliothèque ? À bientôt, garçon !",
    "Über den Wolken muss die Freiheit wohl grenzenlos sein. Größe, Straße, schön, Müller, Ärger.",
    "日本語のテキストです。東京は大きい都市です。今日は天気がいいです。日本語、日本、東京。",
    "中文文本。我们喜欢学习中文。你好，世界！中文很有意思。",
    "Привет, мир! Как дела? Хорошо, спасибо. Москва, Россия.",
    "🙂 😀 👍 🎉 🙂🙂 😀👍 emoji 🎉🎉",
    "x = 12345; y = 678.90; z = x * y  # 2024-01-31 10:15:00",
]

TEXTS = [
    "Hello world",
    "Hello, world! How's it going? I'M FINE, THEY'LL SEE, WE'D GO.",
    "",
    " ",
    "   leading spaces and trailing   ",
    "two  spaces,   three,    four,\ttab\t\ttabs",
    "line one\nline two\r\nline three\n\n\nafter three newlines\n",
    "  \n  \n",
    "Le café est très bon; crème brûlée, naïve, Ångström, Øresund, São Paulo.",
    "Straße Größe ÄÖÜ äöü ß ﬁ ﬀ ǅ",
    "日本語のテキスト、東京タワー。中文文本，你好世界！한국어 텍스트",
    "Привет, мир! Ελληνικά γράμματα. עברית ועוד. العربية",
    "emoji: 🙂😀👍 family 👨‍👩‍👧‍👦 flag 🇫🇷 skin 👋🏽 keycap 1️⃣",
    "digits 0 12 123 1234 12345 1234567890 3.14159 -42 1e-9 ١٢٣ ½",
    "def f(x):\n    return x ** 2  # square\n\nprint([f(i) for i in range(10)])",
    "if (a != b && c <= d) { x += y; } // ok\n\tindented();",
    "combining: e\u0301 a\u0300 n\u0303; zero width: a\u200bb; nbsp:a\u00a0b; ideographic space:\u3000end",
    "rare: ꙮ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𓀀 ☃ ⅷ ∮ ≠ ≤",
    "mixed ▁ metaspace char and Ġ byte-level symbol",
    "<s>Hello</s> <unk> inside text",
    "<|begin_of_text|>Hi<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat?<|eot_id|>",
    "half <|begin_of_text and <s and |>",
    "magic xyzzy words: xyzzy, Xyzzy, xyzzyx",
    "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX.",
    "It's a dog's life; don't, won't, can't, shouldn't've, y'all 'tis",
    "unpaired surrogate \ud800 here",
]

# Id sequences decoded besides the encodings of TEXTS: incomplete and invalid UTF-8 from byte tokens, specials alone.
EXTRA_DECODES = {
    "llama2": [["<0xE6>"], ["<0xE6>", "<0x97>"], ["<0xE6>", "<0x97>", "<0xA5>"], ["<0xFF>", "▁a"], ["<s>"], ["</s>", "▁b"]],
    "llama3": [[0xE6], [0xE6, 0x97], [0xE6, 0x97, 0xA5], [0x20, 0xFF], ["<|begin_of_text|>"], ["<|eot_id|>", 0x68]],
}


def byte_symbol(b: int) -> str:
    """GPT-2's byte-to-character map, which ByteLevel vocabularies are written in."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    if b in printable:
        return chr(b)
    return chr(256 + [x for x in range(256) if x not in printable].index(b))


def training_texts():
    texts = list(EXTRA_TRAINING) * 20
    for name in ("austen-train", "python"):
        with gzip.open(CORPORA / f"{name}.jsonl.gz", "rt", encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= 40:
                    break
                texts.append(json.loads(line)["text"][:20000])
    return texts


def llama2_style(metaspace: bool):
    """Llama-2's tokenizer.json layout: <unk> <s> </s>, then <0x00>..<0xFF>, then the BPE pieces."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=640, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=120, show_progress=False
    )
    tok.train_from_iterator(training_texts(), trainer)
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    shifted = {}
    for token, i in sorted(vocab.items(), key=lambda kv: kv[1]):
        shifted[token] = i if i < 3 else i + 256
    for b in range(256):
        shifted[f"<0x{b:02X}>"] = 3 + b
    spec["model"]["vocab"] = dict(sorted(shifted.items(), key=lambda kv: kv[1]))
    for t in spec["added_tokens"]:
        t["normalized"] = False
    if metaspace:
        # transformers' LlamaConverter with legacy=False
        spec["normalizer"] = None
        spec["pre_tokenizer"] = json.loads(
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False).__getstate__()
        )
    else:
        # the layout of meta-llama/Llama-2-7b-hf's tokenizer.json
        spec["normalizer"] = json.loads(
            normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]).__getstate__()
        )
        spec["pre_tokenizer"] = None
    spec["decoder"] = json.loads(
        decoders.Sequence(
            [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
        ).__getstate__()
    )
    spec["post_processor"] = json.loads(
        processors.TemplateProcessing(
            single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1", special_tokens=[("<s>", 1)]
        ).__getstate__()
    )
    return Tokenizer.from_str(json.dumps(spec))


def llama3_style():
    """Llama-3's tokenizer.json layout: byte-level BPE with its split regex, specials after the BPE vocabulary."""
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=700, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(training_texts(), trainer)
    # Llama-3's vocabulary holds words that its merges cannot build (ignore_merges finds them whole); so does this one.
    spec = json.loads(tok.to_str())
    spec["model"]["vocab"]["Ġxyzzy"] = len(spec["model"]["vocab"])
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in LLAMA3_SPECIALS])
    tok.add_tokens([AddedToken("<tool>", special=False, normalized=False)])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
            processors.TemplateProcessing(
                single="<|begin_of_text|> $A",
                pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                special_tokens=[("<|begin_of_text|>", bos)],
            ),
        ]
    )
    return Tokenizer.from_str(tok.to_str())


def expectations(tok: Tokenizer, extra_decodes):
    cases = []
    for text in TEXTS:
        case = {"text": text}
        try:
            plain = tok.encode(text, add_special_tokens=False).ids
            special = tok.encode(text, add_special_tokens=True).ids
        except Exception as e:  # noqa: BLE001 - the fixture records that tokenizers refuses the text
            case["error"] = type(e).__name__
            cases.append(case)
            continue
        case["ids"] = plain
        case["ids_with_special_tokens"] = special
        case["decoded"] = tok.decode(special, skip_special_tokens=False)
        case["decoded_skipping_special_tokens"] = tok.decode(special, skip_special_tokens=True)
        cases.append(case)
    decodes = []
    for tokens in extra_decodes:
        ids = [tok.token_to_id(t if isinstance(t, str) else byte_symbol(t)) for t in tokens]
        assert None not in ids, tokens
        decodes.append(
            {
                "ids": ids,
                "decoded": tok.decode(ids, skip_special_tokens=False),
                "decoded_skipping_special_tokens": tok.decode(ids, skip_special_tokens=True),
            }
        )
    return {"encodings": cases, "decodings": decodes}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    built = {
        "llama2-style": (llama2_style(metaspace=False), EXTRA_DECODES["llama2"]),
        "llama2-metaspace": (llama2_style(metaspace=True), EXTRA_DECODES["llama2"]),
        "llama3-style": (llama3_style(), EXTRA_DECODES["llama3"]),
    }
    expected = {"tokenizers_version": tokenizers.__version__, "tokenizers": {}}
    for name, (tok, extra) in built.items():
        (args.out / f"{name}.json").write_text(json.dumps(json.loads(tok.to_str()), ensure_ascii=False, indent=1) + "\n")
        expected["tokenizers"][name] = expectations(tok, extra)
    (args.out / "expected.json").write_text(json.dumps(expected, ensure_ascii=True, indent=1) + "\n")


if __name__ == "__main__":
    main()
