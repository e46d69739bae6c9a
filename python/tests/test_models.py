"""jagged.load / Model / Tokenizer: outputs equal the C++ CLI's bit for bit and the PyTorch references (the
fixtures of scripts/fixtures/) within their float32 tolerance; bad inputs and closed models raise."""

import json
import threading
import time

import numpy as np
import pytest

import jagged
from conftest import FIXTURES, STORIES, require_path, run_cli

LLAMA_FORMATS = ["llama-tiny", "llama-tiny/model.gguf", "llama-tiny/model.bin"]


def bits(array):
    return np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)


def cli_floats(text):
    """The CLI prints the shortest decimal that reads back as the same float32."""
    return np.array(json.loads(text), dtype=np.float32)


@pytest.mark.parametrize("path", LLAMA_FORMATS)
def test_llama_logits_match_the_pytorch_reference(path):
    reference = json.loads((FIXTURES / "llama-tiny" / "reference.json").read_text())
    model = jagged.load(FIXTURES / path)
    assert model.family == "llama" and model.config["vocab_size"] == 300
    logits = model.forward(reference["sequences"], logits="all")
    assert isinstance(logits, jagged.NestedTensor)
    assert logits.seqlens.tolist() == [len(s) for s in reference["sequences"]]
    # The reference is float64 rounded to 7 digits; float32 lands within a few 1e-6 of it (reference.json).
    tolerance = 20 * reference["float32_reference_max_abs_diff"] + 1e-6 * reference["max_abs_logit"]
    for i, expected in enumerate(reference["logits"]):
        np.testing.assert_allclose(logits[i], np.array(expected), rtol=0, atol=tolerance)
    last = model.forward(reference["sequences"], logits="last")
    assert last.shape == (len(reference["sequences"]), 300)
    for i in range(len(reference["sequences"])):
        assert bits(last[i]).tolist() == bits(logits[i][-1]).tolist()  # batch invariant: the same bits


def test_dtype_stores_the_weights_in_that_type():
    spec = FIXTURES / "llama-tiny" / "model.bin"
    batch = [[1, 5, 9, 200], [7]]
    full = jagged.load(spec).forward(batch).values
    assert bits(jagged.load(spec, dtype=np.float32).forward(batch).values).tolist() == bits(full).tolist()
    for dtype, tolerance in [("bf16", 2e-2), ("bfloat16", 2e-2), ("q8_0", 2e-2)]:
        typed = jagged.load(spec, dtype=dtype).forward(batch).values
        difference = np.abs(typed - full).max() / np.abs(full).max()
        assert 0 < difference <= tolerance, (dtype, difference)  # rounded weights: close, and not ignored


def test_nested_and_padded_layouts_agree():
    model = jagged.load(FIXTURES / "llama-tiny" / "model.bin")
    rng = np.random.default_rng(3)
    batch = [rng.integers(0, 300, n) for n in [1, 9, 33, 4]]
    nested = model.forward(batch, layout="nested")
    padded = model.forward(batch, layout="padded")
    assert np.abs(nested.values - padded.values).max() <= 1e-4 * np.abs(nested.values).max()
    alone = [model.forward([ids]).values for ids in batch]
    assert bits(np.concatenate(alone)).tolist() == bits(nested.values).tolist()
    ids = jagged.NestedTensor.from_list(batch, dtype=np.int32)
    assert bits(model.forward(ids).values).tolist() == bits(nested.values).tolist()


def test_bert_matches_the_pytorch_reference():
    reference = json.loads((FIXTURES / "bert-tiny" / "reference.json").read_text())
    model = jagged.load(FIXTURES / "bert-tiny")
    assert model.family == "bert" and model.config["labels"] == ["negative", "neutral", "positive"]
    sequences = reference["sequences"]
    single_segment = [i for i, types in enumerate(reference["token_type_ids"]) if not any(types)]
    tolerance = 20 * reference["float32_reference_max_abs_diff"] + 1e-6
    hidden = model.forward([sequences[i] for i in single_segment])
    embeddings = model.embed([sequences[i] for i in single_segment])
    logits = model.classify([sequences[i] for i in single_segment])
    for row, i in enumerate(single_segment):
        np.testing.assert_allclose(hidden[row], np.array(reference["last_hidden_state"][i]), atol=tolerance)
        np.testing.assert_allclose(embeddings[row], np.array(reference["mean_normalized"][i]), atol=tolerance)
        np.testing.assert_allclose(logits[row], np.array(reference["logits"][i]), atol=tolerance)
    cls = model.embed([sequences[i] for i in single_segment], pool="cls", normalize=False)
    for row, i in enumerate(single_segment):
        np.testing.assert_allclose(cls[row], np.array(reference["cls"][i]), atol=tolerance)


def test_embeddings_and_classes_equal_the_cli_bit_for_bit(tmp_path):
    rng = np.random.default_rng(7)
    inputs = [[101, *rng.integers(103, 200, n).tolist(), 102] for n in [0, 5, 30, 1]]
    inputs_file = tmp_path / "inputs.txt"
    inputs_file.write_text("".join(" ".join(map(str, ids)) + "\n" for ids in inputs))
    model_dir = FIXTURES / "bert-tiny"
    model = jagged.load(model_dir)
    for pool, normalize in [("mean", True), ("max", False), ("cls", True)]:
        flags = ["--pool", pool] + ([] if normalize else ["--no-normalize"])
        expected = cli_floats(run_cli("embed", "--model", model_dir, "--ids", "--json", "--inputs", inputs_file,
                                      *flags))
        got = model.embed(inputs, pool=pool, normalize=normalize)
        assert got.shape == expected.shape == (4, 32)
        assert bits(got).tolist() == bits(expected).tolist()
        # Batch invariance: any split gives the same bits.
        assert bits(model.embed(inputs, pool=pool, normalize=normalize, batch_size=1)).tolist() == bits(got).tolist()
    classified = json.loads(run_cli("classify", "--model", model_dir, "--ids", "--json", "--inputs", inputs_file))
    logits = model.classify(inputs)
    assert bits(logits).tolist() == bits(np.array([c["logits"] for c in classified], np.float32)).tolist()


def test_synthetic_encoder_embeds_as_the_cli_does(tmp_path):
    inputs = [[1, 2, 3], [5, 6, 7, 8, 9], [4]]
    inputs_file = tmp_path / "inputs.txt"
    inputs_file.write_text("".join(" ".join(map(str, ids)) + "\n" for ids in inputs))
    expected = cli_floats(run_cli("embed", "--model", "synthetic:bert-tiny", "--ids", "--json",
                                  "--inputs", inputs_file))
    model = jagged.load("synthetic:bert-tiny")
    assert model.tokenizer is None
    assert bits(model.embed(inputs)).tolist() == bits(expected).tolist()


def test_tokenizer_equals_the_cli():
    model_file = FIXTURES / "llama-tiny" / "model.bin"
    tokenizer = jagged.load(model_file).tokenizer
    assert tokenizer.kind == "sentencepiece" and tokenizer.vocab_size == 300
    texts = ["Hello world", "", "the theme of the thing", "ünïcödé ✓"]
    expected = [list(map(int, line.split())) for line in
                run_cli("tokenize", "--model", model_file, stdin="\n".join(texts) + "\n").splitlines()]
    assert [tokenizer.encode(t, add_special=False) for t in texts] == expected
    assert tokenizer.encode_batch(texts, add_special=False) == expected
    with_bos = tokenizer.encode("Hello world")
    assert with_bos[0] == tokenizer.bos_id and with_bos[1:] == expected[0]
    id_lines = "".join(" ".join(map(str, ids)) + "\n" for ids in expected)
    decoded = run_cli("detokenize", "--model", model_file, stdin=id_lines)
    assert [tokenizer.decode(ids) for ids in expected] == decoded.splitlines()
    assert tokenizer.decode_batch(expected) == decoded.splitlines()
    assert tokenizer.decode(np.array(expected[0], dtype=np.int64)) == "Hello world"
    assert jagged.load_tokenizer(FIXTURES / "llama-tiny" / "tokenizer.bin").encode("the") == tokenizer.encode("the")


def test_text_batches_use_the_tokenizer():
    model = jagged.load(FIXTURES / "llama-tiny" / "model.bin")
    texts = ["Hello world", "the"]
    ids = model.tokenizer.encode_batch(texts)
    assert bits(model.forward(texts).values).tolist() == bits(model.forward(ids).values).tolist()


def test_stories260k_loads_with_its_tokenizer():
    path = require_path(STORIES / "stories260K.bin")
    model = jagged.load(str(path))
    assert model.config["vocab_size"] == 512 and model.tokenizer.vocab_size == 512
    logits = model.forward(["Once upon a time", ""], logits="last")  # "" is BOS alone
    assert logits.shape == (2, 512) and np.isfinite(logits).all()


def test_bad_inputs_raise_and_never_crash():
    model = jagged.load(FIXTURES / "llama-tiny" / "model.bin")
    encoder = jagged.load("synthetic:bert-tiny")
    cases = [
        (ValueError, lambda: model.forward([[1, 2, 300]])),                  # id out of range
        (ValueError, lambda: model.forward([[1, -1]])),                      # negative id
        (ValueError, lambda: model.forward([[1, 2**40]])),                   # beyond int32
        (ValueError, lambda: model.forward([[1.5, 2.0]])),                   # not integers
        (ValueError, lambda: model.forward([[[1, 2]]])),                     # nested too deep
        (ValueError, lambda: model.forward("Hello")),                        # a string, not a list
        (ValueError, lambda: model.forward(42)),                             # not a batch
        (ValueError, lambda: model.forward([[1] * 129])),                    # past the context
        (ValueError, lambda: model.forward([[1, 2]], layout="diagonal")),
        (ValueError, lambda: model.forward([[1, 2]], logits="some")),
        (ValueError, lambda: model.forward([[]], logits="last")),            # no last token
        (ValueError, lambda: model.forward(jagged.NestedTensor.from_list([[0.5]]))),     # float ids
        (ValueError, lambda: model.forward(jagged.NestedTensor.from_list([np.zeros((2, 2), np.int32)]))),
        (ValueError, lambda: model.embed(["text"])),                         # a decoder cannot embed
        (ValueError, lambda: model.generate([[1]], max_tokens=-1)),
        (ValueError, lambda: model.generate([[1]], temperature=-1.0)),
        (ValueError, lambda: encoder.embed(["text"])),                       # no tokenizer
        (ValueError, lambda: encoder.embed([[1, 2]], pool="median")),
        (ValueError, lambda: encoder.embed([[1, 2]], batch_size=0)),
        (ValueError, lambda: encoder.classify([[]])),                        # nothing to classify
        (ValueError, lambda: encoder.forward([[1, 2]], logits="last")),
        (ValueError, lambda: encoder.generate(["x"])),                       # an encoder cannot generate
        (ValueError, lambda: model.tokenizer.decode([1, 300])),
        (ValueError, lambda: model.tokenizer.decode(["a"])),
        (ValueError, lambda: model.tokenizer.encode_batch("abc")),
        (ValueError, lambda: model.tokenizer.encode_batch([1, 2])),
        (ValueError, lambda: model.tokenizer.piece(-1)),
        (ValueError, lambda: jagged.load("synthetic:no-such-model")),
        (ValueError, lambda: jagged.load("synthetic:tiny", dtype="float64")),
        (OSError, lambda: jagged.load("/nonexistent/model.bin")),
        (OSError, lambda: jagged.load(FIXTURES / "llama-tiny" / "config.json")),
        (OSError, lambda: jagged.load(FIXTURES / "llama-tiny" / "model.bin", tokenizer="/nonexistent/tok.bin")),
        (OSError, lambda: jagged.load_tokenizer("/nonexistent/tokenizer.json")),
    ]
    for i, (error, case) in enumerate(cases):
        with pytest.raises(error):
            case()
            pytest.fail(f"bad case {i} did not raise")
    assert issubclass(jagged.InvalidArgument, ValueError) and issubclass(jagged.FileError, OSError)
    with pytest.raises(jagged.FileError, match="nonexistent"):
        jagged.load("/nonexistent/model.bin")


def test_a_closed_model_raises():
    model = jagged.load(FIXTURES / "llama-tiny" / "model.bin")
    tokenizer = model.tokenizer
    with model:
        model.forward([[1, 2]])
    assert model.closed and "closed" in repr(model)
    for call in [lambda: model.forward([[1, 2]]), lambda: model.config, lambda: model.tokenizer,
                 lambda: model.generate([[1]]), lambda: model.embed([[1]])]:
        with pytest.raises(ValueError, match="closed"):
            call()
    model.close()  # twice is fine
    assert tokenizer.encode("the")  # the tokenizer lives on its own


def test_compute_releases_the_gil():
    """While one thread runs a forward pass, another runs Python code (it could not, were the GIL held)."""
    model = jagged.load("synthetic:stories15m")
    batch = [list(range(1, 256))] * 4
    times = {}

    def work():
        times["start"] = time.perf_counter()
        model.forward(batch, logits="last")
        times["end"] = time.perf_counter()

    worker = threading.Thread(target=work)
    worker.start()
    ran_during = []
    while worker.is_alive():
        time.sleep(0.005)
        ran_during.append(time.perf_counter())
    worker.join()
    assert any(times["start"] < t < times["end"] for t in ran_during), "no Python ran during the forward pass"


def test_model_close_during_compute_is_safe():
    model = jagged.load("synthetic:tiny")
    model_vocab = model.config["vocab_size"]
    results = []

    def work():
        try:
            results.append(model.forward([list(range(1, 60))] * 8, logits="last").shape)
        except ValueError as error:  # closed before the call started
            results.append(str(error))

    worker = threading.Thread(target=work)
    worker.start()
    model.close()
    worker.join()
    assert results == [(8, model_vocab)] or "closed" in results[0]
