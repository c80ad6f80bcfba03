#!/usr/bin/env python3
"""The peers of Karavan's translation benchmark (`cargo bench -p karavan-lang --bench translate`):
the same token ids through Hugging Face transformers and CTranslate2 on the CPU, the output length
forced, float32 (and CTranslate2 int8 for comparison). Prints one JSON object.

Usage: translate_peers.py CHECKPOINT INPUT.json   (INPUT: {"sources": [[ids]], "target": id,
"new_tokens": N, "batch": B, "threads": T})
"""

import json
import os
import sys
import tempfile
import time


def main():
    checkpoint, request = sys.argv[1], json.load(open(sys.argv[2]))
    sources, target = request["sources"], request["target"]
    new_tokens, batch, threads = request["new_tokens"], request["batch"], request["threads"]
    results = {}

    import torch
    from transformers import AutoModelForSeq2SeqLM

    torch.set_num_threads(threads)
    model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    for beams in (1, 4):
        tokens, start = 0, time.perf_counter()
        for at in range(0, len(sources), batch):
            chunk = sources[at:at + batch]
            width = max(len(s) for s in chunk)
            ids = torch.tensor([s + [1] * (width - len(s)) for s in chunk])
            mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in chunk])
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=mask, num_beams=beams, do_sample=False,
                                     forced_bos_token_id=target, min_new_tokens=new_tokens,
                                     max_new_tokens=new_tokens, decoder_start_token_id=2)
            tokens += (out.shape[1] - 1) * len(chunk)
        results[f"transformers_beam{beams}"] = tokens / (time.perf_counter() - start)
    del model

    import ctranslate2

    cache = os.environ.get("KARAVAN_BENCH_CT2_DIR") or os.path.join(tempfile.gettempdir(), "karavan-bench-ct2")
    for quantization in ("float32", "int8"):
        out_dir = f"{cache}-{quantization}"
        if not os.path.exists(os.path.join(out_dir, "model.bin")):
            ctranslate2.converters.TransformersConverter(checkpoint).convert(out_dir, quantization=quantization,
                                                                            force=True)
        translator = ctranslate2.Translator(out_dir, device="cpu", intra_threads=threads, inter_threads=1)
        vocab = json.load(open(os.path.join(checkpoint, "tokenizer.json"), encoding="utf-8"))["model"]["vocab"]
        by_id = {i: t for t, i in vocab.items()}
        for added in json.load(open(os.path.join(checkpoint, "tokenizer.json"), encoding="utf-8"))["added_tokens"]:
            by_id[added["id"]] = added["content"]
        pieces = [[by_id.get(i, "<unk>") for i in s] for s in sources]
        prefix = [[by_id[target]]] * len(pieces)
        for beams in (1, 4):
            tokens, start = 0, time.perf_counter()
            for at in range(0, len(pieces), batch):
                out = translator.translate_batch(pieces[at:at + batch], target_prefix=prefix[at:at + batch],
                                                 beam_size=beams, min_decoding_length=new_tokens,
                                                 max_decoding_length=new_tokens, max_batch_size=batch)
                tokens += sum(len(r.hypotheses[0]) for r in out)
            results[f"ct2_{quantization}_beam{beams}"] = tokens / (time.perf_counter() - start)
    import transformers
    results["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                           "ctranslate2": ctranslate2.__version__}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
