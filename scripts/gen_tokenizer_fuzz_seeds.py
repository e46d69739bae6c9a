#!/usr/bin/env python3
"""Writes the seed corpora of the tokenizer fuzz targets (fuzz/seeds/tokenizer_*/): tiny tokenizers of every
format made up here (no third-party vocabulary), and sample texts for the encode fuzzer.

Usage: /usr/bin/python3 scripts/gen_tokenizer_fuzz_seeds.py
"""
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "seeds")


def write(folder, name, data):
    path = os.path.join(ROOT, folder)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def byte_level(byte):
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    if byte in printable:
        return chr(byte)
    return chr(256 + [b for b in range(256) if b not in printable].index(byte))


def bpe_json(split_regex=None, nfc=False):
    vocab = {byte_level(b): b for b in range(256)}
    merges = [["h", "e"], ["l", "l"], ["he", "ll"], ["hell", "o"], [byte_level(32), "hello"]]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    pre = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": split_regex is None}
    if split_regex is not None:
        pre = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": split_regex}, "behavior": "Isolated", "invert": False}, pre]}
    return json.dumps({
        "added_tokens": [{"id": len(vocab), "content": "<|end|>", "special": True}],
        "normalizer": {"type": "NFC"} if nfc else None,
        "pre_tokenizer": pre,
        "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|end|>"}},
                                                                    {"Sequence": {"id": "A"}}]},
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": vocab, "merges": [" ".join(m) for m in merges]},
    }, ensure_ascii=False)


def wordpiece_json():
    vocab = {p: i for i, p in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "ab", "##b", "."])}
    return json.dumps({
        "added_tokens": [{"id": 0, "content": "[PAD]", "special": True}, {"id": 1, "content": "[UNK]", "special": True}],
        "normalizer": {"type": "BertNormalizer", "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": vocab},
    })


def llama2c_bin():
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [b"<0x%02X>" % b for b in range(256)]
    pieces += [p.encode() for p in [" ", "a", "b", " a", "ab", " ab", "ä"]]
    out = struct.pack("<i", 16)
    for i, piece in enumerate(pieces):
        out += struct.pack("<fi", -float(i), len(piece)) + piece
    return out


def gguf(metadata):
    """A vocabulary-only GGUF v3: metadata, no tensors."""
    def string(text):
        data = text.encode("utf-8")
        return struct.pack("<Q", len(data)) + data

    def value(v):
        if isinstance(v, bool):
            return struct.pack("<I", 7) + struct.pack("<?", v)
        if isinstance(v, int):
            return struct.pack("<I", 4) + struct.pack("<I", v)
        if isinstance(v, str):
            return struct.pack("<I", 8) + string(v)
        kind, items = v  # ("s" | "f" | "i", [...])
        body = b"".join(string(x) if kind == "s" else struct.pack("<f" if kind == "f" else "<i", x) for x in items)
        element = {"s": 8, "f": 6, "i": 5}[kind]
        return struct.pack("<I", 9) + struct.pack("<IQ", element, len(items)) + body

    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(metadata))
    for key, v in metadata.items():
        out += string(key) + value(v)
    return out


def main():
    write("tokenizer_json", "bpe_gpt2.json", bpe_json())
    write("tokenizer_json", "bpe_llama3.json", bpe_json(
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"))
    write("tokenizer_json", "bpe_qwen2_nfc.json", bpe_json(
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        nfc=True))
    write("tokenizer_json", "wordpiece.json", wordpiece_json())
    write("tokenizer_vocab_txt", "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nab\n##b\n##ab\n.\n中\nHello\n")
    write("tokenizer_llama2c", "tok.bin", llama2c_bin())

    pieces = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + ["▁", "a", "b", "▁a", "ab", "▁ab"]
    write("tokenizer_gguf", "spm.gguf", gguf({
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": ("s", pieces),
        "tokenizer.ggml.scores": ("f", [-float(i) for i in range(len(pieces))]),
        "tokenizer.ggml.token_type": ("i", [2, 3, 3] + [6] * 256 + [1] * 6),
        "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.unknown_token_id": 0,
        "tokenizer.ggml.add_bos_token": True}))
    tokens = [byte_level(b) for b in range(256)] + ["he", "ll", "hell", "hello", "<|end|>"]
    write("tokenizer_gguf", "gpt2.gguf", gguf({
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "llama-bpe",
        "tokenizer.ggml.tokens": ("s", tokens),
        "tokenizer.ggml.token_type": ("i", [1] * 260 + [3]),
        "tokenizer.ggml.merges": ("s", ["h e", "l l", "he ll", "hell o"]),
        "tokenizer.ggml.bos_token_id": 260, "tokenizer.ggml.eos_token_id": 260}))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "▁a", "▁ab", "b", "▁."]
    write("tokenizer_gguf", "bert.gguf", gguf({
        "tokenizer.ggml.model": "bert", "tokenizer.ggml.pre": "bert-bge",
        "tokenizer.ggml.tokens": ("s", tokens),
        "tokenizer.ggml.token_type": ("i", [3, 3, 3, 3, 1, 1, 1, 1]),
        "tokenizer.ggml.unknown_token_id": 1, "tokenizer.ggml.cls_token_id": 2, "tokenizer.ggml.seperator_token_id": 3}))

    for i, text in enumerate(["Hello, world! I've 12345 cats.", "  leading\n\n\tspaces   \r\n", "нещо на Български",
                              "我想在apple工作1314151天～ 🦙 😶‍🌫️", "cafe\u0301 \uAC00 \u1100\u1161\u11A8",
                              "<|end|><tool>[CLS] <s>x</s>"]):
        write("tokenizer_encode", f"text{i}.txt", text)
    write("tokenizer_encode", "invalid.txt", b"bad \xff\xfe \xc3 \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80 \x00end")


if __name__ == "__main__":
    main()
