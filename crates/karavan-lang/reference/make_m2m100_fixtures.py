#!/usr/bin/env python3
"""Reference fixtures for Karavan's NLLB-200 / M2M100 translation model (karavan-lang's `m2m100`).

Run by hand, never by CI (it needs PyTorch and Hugging Face transformers):

    python3 -m venv /tmp/nllb
    /tmp/nllb/bin/pip install torch transformers tokenizers sentencepiece safetensors protobuf
    /tmp/nllb/bin/python crates/karavan-lang/reference/make_m2m100_fixtures.py

It trains a small SentencePiece BPE model on the development set's sentences
(`crates/karavan-lang/devset/parallel.tsv`), builds small random-weight checkpoints with the exact
NLLB / M2M100 architecture (transformers' `M2M100ForConditionalGeneration`) and records what
transformers computes for a set of inputs: the token ids, the encoder's output, the decoder's logits
and the token ids of greedy and beam-search generation. Everything is written to
`crates/karavan-lang/tests/fixtures/m2m100/<model>/`:

- `config.json`, `model.safetensors` (or shards and `model.safetensors.index.json`): the checkpoint;
- the tokenizer files the real checkpoints ship (`tokenizer.json` and `sentencepiece.bpe.model` for
  NLLB, `vocab.json` and `sentencepiece.bpe.model` for M2M100);
- `reference.json`: the inputs, their token ids and the generated token ids;
- `reference.safetensors`: `encoder.N` (`[tokens, d_model]`) and `logits.N` (`[steps, vocab]`, the
  decoder teacher-forced on the greedy output) for case N.

A checkpoint is kept only if float32 and float64 runs generate the same tokens, so the reference
does not hang on a near tie that rounding could flip.

With `--full-size DIR` it instead writes one random checkpoint with the full NLLB-200-distilled-600M
shape (and a tokenizer.json padded to its vocabulary) for the translation benchmark.
"""

import argparse
import csv
import json
import math
import os
import random
import shutil
import sys
import tempfile

import sentencepiece as spm
import torch
from safetensors.torch import save_file
from transformers import GenerationConfig, M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer, NllbTokenizer
from transformers.convert_slow_tokenizer import SentencePieceExtractor
from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES as M2M_CODES
from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES as NLLB_CODES
from transformers.tokenization_utils_base import generate_merges

HERE = os.path.dirname(os.path.abspath(__file__))
CRATE = os.path.dirname(HERE)
DEVSET = os.path.join(CRATE, "devset", "parallel.tsv")
OUT = os.path.join(CRATE, "tests", "fixtures", "m2m100")

NLLB = {"en": "eng_Latn", "zh": "zho_Hans", "ru": "rus_Cyrl", "kk": "kaz_Cyrl", "ky": "kir_Cyrl",
        "tg": "tgk_Cyrl", "tk": "tuk_Latn", "uz": "uzn_Latn"}
M2M = {"en": "en", "zh": "zh", "ru": "ru", "kk": "kk", "uz": "uz"}

# Beyond the development set's sentences: runs of spaces, characters the vocabulary lacks, and nothing.
EXTRA = ["  Astana   and  Tashkent  ", "Snow ☃ and ☃☃ again 𝔘", ""]


def devset():
    with open(DEVSET, encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    header, rows = rows[0], rows[1:]
    return [dict(zip(header, row)) for row in rows]


def train_spm(rows, directory):
    texts = [cell for row in rows for key, cell in row.items() if key != "id"]
    prefix = os.path.join(directory, "sentencepiece.bpe")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_prefix=prefix, vocab_size=1000, model_type="bpe",
        character_coverage=0.995, num_threads=1, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        minloglevel=2)
    os.remove(prefix + ".vocab")
    return prefix + ".model"


def cases(rows, codes):
    """(source language, text) pairs: the first words of a few sentences in each language, and EXTRA."""
    out = []
    for i, (lang, code) in enumerate(codes.items()):
        words = rows[i % len(rows)][lang].split()
        out.append((code, " ".join(words[: 6 + (i * 3) % 9]) if lang != "zh" else rows[i][lang][:18]))
    first = next(iter(codes.values()))
    out.extend((first, text) for text in EXTRA)
    return out


def nllb_tokenizer(model_file, directory):
    """An NLLB tokenizer laid out as the published checkpoints' is: <s> <pad> </s> <unk>, the pieces
    (SentencePiece id + 1), the 202 language codes, <mask>."""
    sp = spm.SentencePieceProcessor(model_file=model_file)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for i in range(3, sp.get_piece_size()):
        vocab[sp.id_to_piece(i)] = i + 1
    merges = generate_merges(vocab)
    size = sp.get_piece_size() + 1
    for i, code in enumerate(NLLB_CODES):
        vocab[code] = size + i
    vocab["<mask>"] = size + len(NLLB_CODES)
    charsmap = SentencePieceExtractor(model_file).extract(None)["_spm_precompiled_charsmap"]
    tok = NllbTokenizer(vocab=vocab, merges=merges, _spm_precompiled_charsmap=charsmap,
                        additional_special_tokens=list(NLLB_CODES))
    assert tok.convert_tokens_to_ids("eng_Latn") == size + NLLB_CODES.index("eng_Latn")
    assert tok.convert_tokens_to_ids("<mask>") == size + len(NLLB_CODES)
    tok.save_pretrained(directory)
    shutil.copy(model_file, os.path.join(directory, "sentencepiece.bpe.model"))
    return tok, len(vocab)


def m2m_tokenizer(model_file, directory, rng):
    """An M2M100 tokenizer: SentencePiece segments, vocab.json (here in shuffled order, so that ids
    must come from it) numbers the pieces, the 100 language tokens follow."""
    sp = spm.SentencePieceProcessor(model_file=model_file)
    pieces = [sp.id_to_piece(i) for i in range(3, sp.get_piece_size())]
    rng.shuffle(pieces)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for piece in pieces:
        vocab[piece] = len(vocab)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=1)
    shutil.copy(model_file, os.path.join(directory, "sentencepiece.bpe.model"))
    tok = M2M100Tokenizer(vocab_file=os.path.join(directory, "vocab.json"),
                          spm_file=os.path.join(directory, "sentencepiece.bpe.model"))
    tok.save_pretrained(directory)
    return tok, len(vocab) + len(M2M_CODES["m2m100"])


def randomize(model, generator, embedding_std, eos_boost):
    """Weights spread widely enough that greedy and beam search have no near ties; every layer norm
    and bias non-trivial, so that loading any of them wrongly shows."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=generator, dtype=torch.float64))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=generator, dtype=torch.float64))
            elif "shared" in name or "embed_tokens" in name or "lm_head" in name:
                p.copy_(embedding_std * torch.randn(p.shape, generator=generator, dtype=torch.float64))
            else:
                p.copy_(1.5 / math.sqrt(p.shape[1]) * torch.randn(p.shape, generator=generator, dtype=torch.float64))
        # Lean the decoder's output towards </s> so that some sequences end before their limit.
        eos = model.model.shared.weight[2]
        model.model.decoder.layer_norm.bias.add_(eos_boost * eos / eos.norm())


GREEDY = {"num_beams": 1, "max_length": 20}
BEAMS = [
    {"num_beams": 4, "max_length": 16, "length_penalty": 1.0, "no_repeat_ngram_size": 3},
    {"num_beams": 3, "max_length": 14, "length_penalty": 0.6, "early_stopping": True, "forced_eos_token_id": 2},
]


def generate(model, tok, groups, options, dtype):
    """Generated ids for each case, one generate call per target language (a batch, padded)."""
    results = {}
    model = model.to(dtype)
    for tgt, members in groups.items():
        batch = [tok_inputs(tok, src, text) for _, src, text in members]
        width = max(len(ids) for ids in batch)
        ids = torch.tensor([b + [tok.pad_token_id] * (width - len(b)) for b in batch])
        mask = torch.tensor([[1] * len(b) + [0] * (width - len(b)) for b in batch])
        config = GenerationConfig(decoder_start_token_id=2, eos_token_id=2, pad_token_id=1, bos_token_id=0,
                                  forced_bos_token_id=lang_id(tok, tgt), do_sample=False, **options)
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        for (index, _, _), row in zip(members, out.tolist()):
            results[index] = row
    return [results[i] for i in sorted(results)]


def tok_inputs(tok, src, text):
    tok.src_lang = src
    return tok(text)["input_ids"]


def lang_id(tok, code):
    if isinstance(tok, M2M100Tokenizer):
        return tok.get_lang_id(code)
    return tok.convert_tokens_to_ids(code)


def strip_padding(ids):
    """A generated sequence up to its end (HF pads finished sequences with <pad>)."""
    while ids and ids[-1] == 1:
        ids = ids[:-1]
    return ids


def build(name, tok, vocab_size, shape, directory, inputs, targets, seed, shard=False, eos_boost=0.0, files=()):
    items = [(i, src, text, targets[i % len(targets)]) for i, (src, text) in enumerate(inputs)]
    groups = {}
    for i, src, text, tgt in items:
        groups.setdefault(tgt, []).append((i, src, text))
    for attempt in range(40):
        generator = torch.Generator().manual_seed(seed + attempt)
        config = M2M100Config(vocab_size=vocab_size, max_position_embeddings=64, dropout=0.0, attention_dropout=0.0,
                              activation_dropout=0.0, encoder_layerdrop=0.0, decoder_layerdrop=0.0, **shape)
        model = M2M100ForConditionalGeneration(config).eval()
        randomize(model, generator, float(os.environ.get("ESTD", "0.1")), eos_boost)
        runs = {}
        for dtype in (torch.float64, torch.float32):
            runs[dtype] = [generate(model, tok, groups, GREEDY, dtype)]
            runs[dtype] += [generate(model, tok, groups, options, dtype) for options in BEAMS]
        if runs[torch.float64] == runs[torch.float32]:
            break
        print(f"{name}: seed {seed + attempt} flips with rounding, trying another", file=sys.stderr)
    else:
        raise SystemExit(f"{name}: no stable seed")
    greedy, *beams = runs[torch.float32]
    # Each case alone gives what it gives in its batch.
    for (i, src, text, tgt) in items:
        alone = generate(model, tok, {tgt: [(0, src, text)]}, GREEDY, torch.float32)[0]
        assert strip_padding(alone) == strip_padding(greedy[i]), (name, i)

    if os.path.exists(directory):
        shutil.rmtree(directory)
    os.makedirs(directory)
    tok.save_pretrained(directory)
    for path in files:
        shutil.copy(path, directory)
    if shard:
        model.save_pretrained(directory, max_shard_size="200KB")
    else:
        model.save_pretrained(directory)
    for extra in ("generation_config.json",):
        path = os.path.join(directory, extra)
        if os.path.exists(path):
            os.remove(path)

    tensors = {}
    with torch.no_grad():
        for i, src, text, tgt in items:
            ids = torch.tensor([tok_inputs(tok, src, text)])
            encoded = model.model.encoder(input_ids=ids).last_hidden_state[0]
            tensors[f"encoder.{i}"] = encoded.contiguous()
            if i < 3:
                target = strip_padding(greedy[i])
                decoder_input = torch.tensor([target[:-1]])
                logits = model(input_ids=ids, decoder_input_ids=decoder_input).logits[0]
                tensors[f"logits.{i}"] = logits.contiguous()
    save_file(tensors, os.path.join(directory, "reference.safetensors"))
    reference = {
        "model": name,
        "cases": [
            {"source": src, "target": tgt, "text": text, "input_ids": tok_inputs(tok, src, text),
             "target_id": lang_id(tok, tgt), "greedy": strip_padding(greedy[i]),
             "beams": [strip_padding(b[i]) for b in beams]}
            for i, src, text, tgt in items
        ],
        "greedy": GREEDY,
        "beams": BEAMS,
    }
    with open(os.path.join(directory, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(reference, f, ensure_ascii=False, indent=1)
    ended = sum(c["greedy"][-1] == 2 for c in reference["cases"])
    beam_ended = sum(b[-1] == 2 for c in reference["cases"] for b in c["beams"][:1])
    print(f"{name}: {len(items)} cases, {ended} greedy and {beam_ended} beam outputs end in </s> before "
          f"their limit, seed {seed + attempt}", file=sys.stderr)


def fixtures():
    rows = devset()
    rng = random.Random(8)
    with tempfile.TemporaryDirectory() as scratch:
        model_file = train_spm(rows, scratch)
        nllb_dir = os.path.join(scratch, "nllb-tok")
        tok, vocab_size = nllb_tokenizer(model_file, nllb_dir)
        nllb_cases = cases(rows, NLLB)
        targets = ["kaz_Cyrl", "zho_Hans", "eng_Latn"]
        build("nllb-2x2", tok, vocab_size + 2,
              dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                   decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64),
              os.path.join(OUT, "nllb-2x2"), nllb_cases, targets, seed=100, eos_boost=float(os.environ.get("B1", "3.5")), files=[model_file])
        build("nllb-3x1-sharded", tok, vocab_size,
              dict(d_model=48, encoder_layers=3, decoder_layers=1, encoder_attention_heads=4,
                   decoder_attention_heads=6, encoder_ffn_dim=96, decoder_ffn_dim=80),
              os.path.join(OUT, "nllb-3x1-sharded"), nllb_cases, ["rus_Cyrl", "uzn_Latn"], seed=200, shard=True,
              eos_boost=float(os.environ.get("B2", "2.6")), files=[model_file])
        # The sharded checkpoint keeps only the SentencePiece model, as some published copies do.
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            path = os.path.join(OUT, "nllb-3x1-sharded", name)
            if os.path.exists(path):
                os.remove(path)
        m2m_dir = os.path.join(scratch, "m2m-tok")
        tok, vocab_size = m2m_tokenizer(model_file, m2m_dir, rng)
        build("m2m100-2x2", tok, vocab_size,
              dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                   decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=64, scale_embedding=False),
              os.path.join(OUT, "m2m100-2x2"), cases(rows, M2M), ["kk", "zh", "en"], seed=300,
              eos_boost=float(os.environ.get("B3", "3.0")))


def full_size(directory):
    """A random checkpoint with NLLB-200-distilled-600M's shape, and a tokenizer whose vocabulary is
    padded to the model's, for benchmarks (its output is meaningless)."""
    rows = devset()
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        model_file = train_spm(rows, scratch)
        sp = spm.SentencePieceProcessor(model_file=model_file)
        vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
        for i in range(3, sp.get_piece_size()):
            vocab[sp.id_to_piece(i)] = i + 1
        merges = generate_merges(vocab)
        # Filler pieces up to the published vocabulary's 256,000 SentencePiece pieces.
        while len(vocab) < 256001:
            vocab[f"<filler{len(vocab)}>"] = len(vocab)
        for i, code in enumerate(NLLB_CODES):
            vocab[code] = 256001 + i
        vocab["<mask>"] = 256001 + len(NLLB_CODES)
        charsmap = SentencePieceExtractor(model_file).extract(None)["_spm_precompiled_charsmap"]
        tok = NllbTokenizer(vocab=vocab, merges=merges, _spm_precompiled_charsmap=charsmap,
                            additional_special_tokens=list(NLLB_CODES))
        tok.save_pretrained(directory)
    config = M2M100Config(vocab_size=256206, d_model=1024, encoder_layers=12, decoder_layers=12,
                          encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096,
                          decoder_ffn_dim=4096, max_position_embeddings=1024, dropout=0.0,
                          attention_dropout=0.0, activation_dropout=0.0)
    torch.manual_seed(600)
    model = M2M100ForConditionalGeneration(config).eval()
    model.save_pretrained(directory)
    print(f"wrote {directory}", file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full-size", metavar="DIR", help="write the 600M-shape benchmark checkpoint to DIR")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.full_size:
        full_size(args.full_size)
    else:
        fixtures()
