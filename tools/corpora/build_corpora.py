#!/usr/bin/env python3
"""Regenerate the compressed corpus samples shipped in corpora/src/main/resources/corpora/.

Not run by the build: the samples are committed. Run this only to rebuild or re-cut them.
Each output is a gzip'd JSON-lines file, one document per line: {"id": ..., "group": ..., "text": ...}.
"group" ties near-duplicate documents together so the Java side keeps them in one split.
Cuts are deterministic: documents are sampled in an order fixed by SEED, and gzip headers carry no timestamp.

Prerequisites (Debian/Ubuntu), see tools/corpora/README.md:
  apt-get install -y bible-kjv r-cran-janeaustenr r-cran-tokenizers jargon-text dict-devil \
      metamath-databases libpython3.11-stdlib
  (cd /tmp && npm pack spdx-license-list && tar xzf spdx-license-list-*.tgz)
Usage:
  python3 tools/corpora/build_corpora.py [--out DIR] [--spdx /tmp/package] [--python-lib /usr/lib/python3.11]
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys

SEED = "mode-corpora-v1"

# Text budgets in bytes of UTF-8 (approximate: whole documents are taken until the budget is reached).
BUDGET_KJV = 2_600_000
BUDGET_PYTHON = 3_000_000
BUDGET_SETMM = 3_000_000
BUDGET_SPDX = 3_000_000
# Two licence texts sharing more than this Jaccard fraction of word 5-grams are one family.
JACCARD = 0.3

KJV_BOOKS = [
    "Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Joshua", "Judges", "Ruth", "1 Samuel",
    "2 Samuel", "1 Kings", "2 Kings", "1 Chronicles", "2 Chronicles", "Ezra", "Nehemiah", "Esther", "Job",
    "Psalms", "Proverbs", "Ecclesiastes", "Song of Solomon", "Isaiah", "Jeremiah", "Lamentations", "Ezekiel",
    "Daniel", "Hosea", "Joel", "Amos", "Obadiah", "Jonah", "Micah", "Nahum", "Habakkuk", "Zephaniah", "Haggai",
    "Zechariah", "Malachi", "Matthew", "Mark", "Luke", "John", "Acts", "Romans", "1 Corinthians",
    "2 Corinthians", "Galatians", "Ephesians", "Philippians", "Colossians", "1 Thessalonians",
    "2 Thessalonians", "1 Timothy", "2 Timothy", "Titus", "Philemon", "Hebrews", "James", "1 Peter", "2 Peter",
    "1 John", "2 John", "3 John", "Jude", "Revelation",
]
# Books whose text largely repeats another book's (Samuel/Kings vs Chronicles): one group so they never straddle splits.
KJV_GROUP = {"1 Samuel": "kjv/history", "2 Samuel": "kjv/history", "1 Kings": "kjv/history",
             "2 Kings": "kjv/history", "1 Chronicles": "kjv/history", "2 Chronicles": "kjv/history"}


def seeded_key(name):
    """Stable pseudo-random sort key for sampling in a fixed order."""
    return hashlib.sha256((SEED + "/" + name).encode("utf-8")).hexdigest()


def write_jsonl_gz(path, docs):
    buf = io.BytesIO()
    for d in docs:
        buf.write(json.dumps({"id": d["id"], "group": d["group"], "text": d["text"]},
                             ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        buf.write(b"\n")
    raw = buf.getvalue()
    with open(path, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0) as g:
            g.write(raw)
    size = os.path.getsize(path)
    print(f"{os.path.basename(path)}: {len(docs)} documents, {len(raw)} bytes raw, {size} bytes gzip", file=sys.stderr)
    return {"file": os.path.basename(path), "documents": len(docs), "raw": len(raw), "gzip": size,
            "text": sum(len(d["text"].encode("utf-8")) for d in docs)}


def sample_to_budget(docs, budget, key=lambda d: d["id"]):
    """Whole documents in seeded order until the UTF-8 budget is reached; output in the original order."""
    chosen, total = set(), 0
    for d in sorted(docs, key=lambda d: seeded_key(key(d))):
        if total >= budget:
            break
        chosen.add(d["id"])
        total += len(d["text"].encode("utf-8"))
    return [d for d in docs if d["id"] in chosen]


def normalise(text):
    """Unix newlines, no trailing spaces, one trailing newline."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return text.strip("\n") + "\n"


# ---------------------------------------------------------------- English

def kjv():
    out = subprocess.run(["bible", "-f", "gen1:1-rev22:21"], stdin=subprocess.DEVNULL, capture_output=True,
                         check=True).stdout.decode("utf-8")
    verse = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")
    abbrevs, chapters = [], {}
    for line in out.splitlines():
        m = verse.match(line)
        if not m:
            raise SystemExit(f"kjv: unexpected line {line[:60]!r}")
        ab, ch, v, text = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
        if ab not in abbrevs:
            abbrevs.append(ab)
        chapters.setdefault((ab, ch), []).append(f"{v} {text}")
    if len(abbrevs) != len(KJV_BOOKS):
        raise SystemExit(f"kjv: expected 66 books, found {len(abbrevs)}")
    name = dict(zip(abbrevs, KJV_BOOKS))
    books = {}
    for (ab, ch), verses in chapters.items():
        book = name[ab]
        books.setdefault(book, []).append({
            "id": f"kjv/{book}/{ch}", "group": KJV_GROUP.get(book, "kjv/" + book),
            "text": normalise(f"{book} {ch}\n\n" + "\n".join(verses))})
    # Sample whole groups (books) so the budget never cuts a book in half.
    chosen, total = [], 0
    groups = sorted({d["group"] for b in books.values() for d in b}, key=seeded_key)
    for g in groups:
        if total >= BUDGET_KJV:
            break
        chosen.append(g)
        total += sum(len(d["text"].encode()) for b in books.values() for d in b if d["group"] == g)
    return [d for book in KJV_BOOKS for d in books[book] if d["group"] in chosen]


def jargon():
    text = gzip.open("/usr/share/doc/jargon-text/jargon.txt.gz", "rt", encoding="utf-8").read()
    raw_lines = text.split("\n")
    # Headings are the only unindented lines (the table of contents repeats them indented).
    chapter = re.compile(r"^(Chapter\s\d+\.|Appendix\s[A-Z]\.|Glossary$|Bibliography$)")
    starts = [i for i, l in enumerate(raw_lines) if chapter.match(l)]
    # Dedent the uniform three-space indent of the plain-text rendering.
    lines = [l[3:] if l.startswith("   ") else l for l in raw_lines]
    starts.append(len(lines))
    docs = []
    for s, e in zip(starts, starts[1:]):
        title = lines[s].strip()
        if re.match(r"Chapter\s3\.", title):
            continue  # revision history: a box-drawing table of version numbers
        body = lines[s:e]
        if title == "Glossary":
            # Skip the headword index; keep the entries (":headword: ..."), cut into chunks of ~16 KB at entries.
            first = next(i for i, l in enumerate(body) if re.match(r"^:[^:]+:", l))
            chunk, size, n = [], 0, 0
            for l in body[first:]:
                if re.match(r"^:[^:]+:", l) and size > 16_000:
                    docs.append({"id": f"jargon/glossary/{n:03d}", "group": f"jargon/glossary/{n:03d}",
                                 "text": normalise("\n".join(chunk))})
                    chunk, size, n = [], 0, n + 1
                if re.match(r"^[A-Z0-9]$", l):
                    continue  # letter divider
                chunk.append(l)
                size += len(l) + 1
            docs.append({"id": f"jargon/glossary/{n:03d}", "group": f"jargon/glossary/{n:03d}",
                         "text": normalise("\n".join(chunk))})
        else:
            slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
            docs.append({"id": f"jargon/{slug}", "group": f"jargon/{slug}", "text": normalise("\n".join(body))})
    return docs


def devil():
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def b64(s):
        v = 0
        for c in s:
            v = v * 64 + alphabet.index(c)
        return v

    data = gzip.open("/usr/share/dictd/devil.dict.dz", "rb").read()
    entries = []
    for line in open("/usr/share/dictd/devil.index", encoding="utf-8"):
        word, off, n = line.rstrip("\n").split("\t")
        if word.startswith("00database"):
            continue
        entries.append((b64(off), b64(n), word))
    entries.sort()
    by_letter, seen = {}, set()
    for off, n, word in entries:
        if off in seen:
            continue
        seen.add(off)
        body = data[off:off + n].decode("utf-8")
        letter = word[0].upper() if word[0].isalpha() else "other"
        by_letter.setdefault(letter, []).append(body)
    return [{"id": f"devil/{k}", "group": f"devil/{k}", "text": normalise("".join(v))}
            for k, v in sorted(by_letter.items())]


def rscript_lines(expr):
    out = subprocess.run(["Rscript", "-e", expr], capture_output=True, check=True).stdout
    return out.decode("utf-8")


def austen(book_var, slug):
    text = rscript_lines(f"library(janeaustenr); writeLines({book_var})")
    parts = re.split(r"(?m)^(?=(?:Chapter|CHAPTER) [0-9IVXLC]+\b)", text)
    parts = [p for p in parts if p.strip()]
    if len(parts) > 1 and len(parts[0]) < 500:
        parts[1] = parts[0] + parts[1]  # the title page joins chapter 1
        parts = parts[1:]
    return [{"id": f"austen/{slug}/{i + 1:03d}", "group": f"austen/{slug}/{i + 1:03d}", "text": normalise(p)}
            for i, p in enumerate(parts)]


def moby_dick():
    text = rscript_lines('data(mobydick, package="tokenizers"); writeLines(mobydick)')
    start = text.index("ETYMOLOGY.")
    end = text.index("End of Project Gutenberg's Moby Dick")
    body = text[start:end]
    parts = re.split(r"(?m)^(?=CHAPTER \d+\. |Epilogue$)", body)
    return [{"id": f"moby-dick/{i:03d}", "group": f"moby-dick/{i:03d}", "text": normalise(p)}
            for i, p in enumerate(parts) if p.strip()]


# ---------------------------------------------------------------- code

PY_EXCLUDE_DIRS = {"test", "tests", "idle_test", "pydoc_data", "encodings", "site-packages", "dist-packages",
                   "__pycache__", "lib-dynload", "ensurepip"}
PY_EXCLUDE_FILES = re.compile(r"^(_sysconfigdata.*|sitecustomize|_distutils_system_mod)\.py$")


def python_stdlib(lib):
    docs = []
    for root, dirs, files in os.walk(lib):
        dirs[:] = sorted(d for d in dirs if d not in PY_EXCLUDE_DIRS and not d.startswith("config-"))
        for f in sorted(files):
            if not f.endswith(".py") or PY_EXCLUDE_FILES.match(f):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, lib)
            raw = open(path, "rb").read()
            if len(raw) > 150_000 or len(raw) < 200:
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            top = rel.split(os.sep)[0]
            group = "python/" + (top[:-3] if top.endswith(".py") else top)
            docs.append({"id": "python/" + rel.replace(os.sep, "/"), "group": group, "text": normalise(text)})
    docs.sort(key=lambda d: d["id"])
    return sample_to_budget(docs, BUDGET_PYTHON)


# ---------------------------------------------------------------- math

def setmm():
    src = open("/usr/share/metamath/databases/set.mm", encoding="utf-8").read()
    # Strip proofs: replace every "$= ... $." outside comments by "$= ? $." (Metamath's notation for "no proof").
    out, pos, in_comment = [], 0, False
    tokens = re.finditer(r"\S+", src)
    for m in tokens:
        tok = m.group(0)
        if in_comment:
            if tok == "$)":
                in_comment = False
            continue
        if tok == "$(":
            in_comment = True
        elif tok == "$=":
            out.append(src[pos:m.start()])
            for m2 in tokens:
                if m2.group(0) == "$.":
                    pos = m2.end()
                    break
            out.append("$= ? $.")
    out.append(src[pos:])
    stripped = "".join(out)
    # Sections start at a comment opening followed by a "=-=-=" rule (lower levels stay inside their section).
    starts = [m.start() for m in re.finditer(r"(?m)^\s*\$\(\n(?:[#*=\-][#*=.\-]+\n)", stripped)]
    starts = [0] + [s for s in starts if s > 0] + [len(stripped)]
    docs = []
    for i, (s, e) in enumerate(zip(starts, starts[1:])):
        t = stripped[s:e]
        if t.strip():
            docs.append({"id": f"setmm/{i:04d}", "group": f"setmm/{i:04d}", "text": normalise(t)})
    return sample_to_budget(docs, BUDGET_SETMM)


# ---------------------------------------------------------------- legal

def shingles(text, n=5):
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}


def spdx(package_dir):
    lic_dir = os.path.join(package_dir, "licenses")
    docs = []
    for f in sorted(os.listdir(lic_dir)):
        if not f.endswith(".json"):
            continue
        d = json.load(open(os.path.join(lic_dir, f), encoding="utf-8"))
        text = d.get("licenseText") or ""
        if len(text.strip()) < 100:
            continue
        docs.append({"id": "spdx/" + f[:-5], "name": d.get("name", ""), "text": normalise(text)})
    # Family: the identifier up to its first version number or variant suffix, folding A/L-GPL into GPL;
    # then join families whose texts share over 30% of their word 5-grams (union-find), so near-duplicates
    # (e.g. MIT variants, BSD variants, GPL and AGPL) always land in one group.
    def family(ident):
        base = re.split(r"[-.]?\d|-(?=only|or-later|with|Clear|Patent|Attribution)", ident, maxsplit=1)[0]
        base = re.sub(r"^(A|L)GPL", "GPL", base)
        return base.split("-")[0] or ident
    parent = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    sh = [shingles(d["text"]) for d in docs]
    fam = [family(d["id"][5:]) for d in docs]
    for i in range(len(docs)):
        union(fam[i], fam[i])
    for i in range(len(docs)):
        for j in range(i + 1, len(docs)):
            if fam[i] == fam[j] or find(fam[i]) == find(fam[j]):
                continue
            a, b = sh[i], sh[j]
            small = min(len(a), len(b))
            if small and len(a & b) / len(a | b) > JACCARD:
                union(fam[i], fam[j])
    for d, f in zip(docs, fam):
        d["group"] = "spdx/" + find(f)
        d["text"] = normalise(d["name"] + "\n\n" + d["text"])
    # Sample whole groups in seeded order to the budget.
    groups = sorted({d["group"] for d in docs}, key=seeded_key)
    chosen, total = set(), 0
    for g in groups:
        if total >= BUDGET_SPDX:
            break
        chosen.add(g)
        total += sum(len(d["text"].encode()) for d in docs if d["group"] == g)
    return [d for d in docs if d["group"] in chosen]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.normpath(os.path.join(here, "../../corpora/src/main/resources/corpora"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=default_out)
    ap.add_argument("--spdx", default="/tmp/spdx/package", help="unpacked npm package spdx-license-list")
    ap.add_argument("--python-lib", default="/usr/lib/python3.11")
    ap.add_argument("--only", default="", help="comma-separated subset of outputs to rebuild")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    jobs = {
        "kjv": kjv,
        "jargon": jargon,
        "devil": devil,
        "austen-train": lambda: austen("sensesensibility", "sense-and-sensibility")
        + austen("prideprejudice", "pride-and-prejudice"),
        "retention": lambda: moby_dick() + austen("persuasion", "persuasion"),
        "python": lambda: python_stdlib(args.python_lib),
        "setmm": setmm,
        "spdx": lambda: spdx(args.spdx),
    }
    only = [s for s in args.only.split(",") if s]
    if not only or "python" in only:
        # The PSF License asks that its text travel with any copy of Python's sources.
        shutil.copyfile(os.path.join(args.python_lib, "LICENSE.txt"), os.path.join(args.out, "LICENSE-python.txt"))
    stats = []
    for name, job in jobs.items():
        if only and name not in only:
            continue
        stats.append(write_jsonl_gz(os.path.join(args.out, name + ".jsonl.gz"), job()))
    print(json.dumps(stats, indent=1))


if __name__ == "__main__":
    main()
