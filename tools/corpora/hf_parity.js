// Checks that Hugging Face's tokenizers (npm package "tokenizers", the Rust library's Node binding) loads our
// tokenizer.json and encodes every document to the same ids as MoDE-J. Inputs come from HfParityDump.java.
//   (cd /tmp/hf && npm install tokenizers@0.23.2) && NODE_PATH=/tmp/hf/node_modules node tools/corpora/hf_parity.js /tmp/hf
const { Tokenizer } = require('tokenizers');
const fs = require('fs');
const path = require('path');

(async () => {
  const dir = process.argv[2] || '/tmp/hf';
  const tok = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
  const lines = fs.readFileSync(path.join(dir, 'docs.jsonl'), 'utf8').split('\n').filter((l) => l.length > 0);
  let same = 0, different = 0, tokens = 0;
  for (const line of lines) {
    const doc = JSON.parse(line);
    const ids = (await tok.encode(doc.text, null, { addSpecialTokens: false })).getIds();
    tokens += ids.length;
    if (ids.length === doc.ids.length && ids.every((v, i) => v === doc.ids[i])) {
      same++;
    } else {
      different++;
      let i = 0;
      while (i < ids.length && ids[i] === doc.ids[i]) i++;
      if (different <= 5) console.log(`different: ${doc.id} from token ${i}: hf ${ids.slice(i, i + 6)} ours ${doc.ids.slice(i, i + 6)}`);
    }
  }
  console.log(`${same} documents identical, ${different} different, ${tokens} tokens, vocab ${tok.getVocabSize(true)}`);
  process.exit(different === 0 ? 0 : 1);
})();
