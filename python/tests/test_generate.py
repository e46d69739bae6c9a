"""Model.generate: stories260K's golden text (llama2.c's greedy output), streaming, and the CLI's tokens."""

import numpy as np
import pytest

import jagged
from conftest import FIXTURES, STORIES, require_path, run_cli


@pytest.fixture(scope="module")
def stories():
    return jagged.load(str(require_path(STORIES / "stories260K.bin")))


def test_greedy_from_bos_reproduces_llama2c(stories):
    expected = (STORIES / "expected_greedy_200.txt").read_text()
    [completion] = stories.generate([""], max_tokens=200)
    assert completion.finish_reason == "length" and len(completion.tokens) == 200
    assert completion.prompt_tokens == 1  # BOS alone
    assert completion.text == expected
    assert str(completion) == expected


def test_a_batch_equals_each_prompt_alone(stories):
    prompts = ["Once upon a time", "The cat", "", "Lily and Tom went to the park to play"]
    together = stories.generate(prompts, max_tokens=24)
    for prompt, completion in zip(prompts, together):
        assert stories.generate([prompt], max_tokens=24)[0].tokens == completion.tokens


def test_tokens_equal_the_cli(stories):
    prompts = ["Once upon a time", "The dog"]
    lines = run_cli("run", "--model", STORIES / "stories260K.bin", "-n", 30, "--ids",
                    *[arg for p in prompts for arg in ("-p", p)]).splitlines()
    expected = [list(map(int, line.split())) for line in lines]
    got = [c.tokens for c in stories.generate(prompts, max_tokens=30)]
    # The CLI prints ids up to and including EOS; generate stops at EOS too.
    assert got == expected


def test_token_id_prompts_and_sampling_are_reproducible(stories):
    ids = stories.tokenizer.encode("Once upon a time")
    by_text = stories.generate(["Once upon a time"], max_tokens=16)[0]
    by_ids = stories.generate([np.array(ids)], max_tokens=16)[0]
    assert by_text.tokens == by_ids.tokens
    first = stories.generate(["Once"], max_tokens=16, temperature=0.9, seed=42)[0]
    again = stories.generate(["Once"], max_tokens=16, temperature=0.9, seed=42)[0]
    assert first.tokens == again.tokens


def test_stream_gives_the_same_tokens_and_text(stories):
    prompts = ["Once upon a time", "The cat"]
    complete = stories.generate(prompts, max_tokens=20)
    events = list(stories.generate(prompts, max_tokens=20, stream=True))
    for index, completion in enumerate(complete):
        mine = [e for e in events if e["index"] == index]
        assert [t for e in mine for t in e["tokens"]] == completion.tokens
        assert "".join(e["text"] for e in mine) == completion.text
        assert [e["finish_reason"] for e in mine][-1] == completion.finish_reason
        assert all(e["finish_reason"] is None for e in mine[:-1])


def test_generate_on_a_fixture_without_shared_files():
    model = jagged.load(FIXTURES / "llama-tiny" / "model.bin")
    [completion] = model.generate([[1, 5, 9]], max_tokens=8)
    assert len(completion.tokens) <= 8 and completion.finish_reason in ("length", "stop")
    assert all(0 <= t < 300 for t in completion.tokens)
    assert model.generate([[1, 5, 9]], max_tokens=0)[0].tokens == []

def test_bf16_kv_cache_equals_the_cli_and_is_batch_invariant(stories):
    prompts = ["Once upon a time", "The dog"]
    lines = run_cli("generate", "--model", STORIES / "stories260K.bin", "-n", 30, "--ids", "--kv-dtype", "bf16",
                    *[arg for p in prompts for arg in ("-p", p)]).splitlines()
    by_index = {int(line.split()[0].strip("[]")): list(map(int, line.split()[1:])) for line in lines if line}
    expected = [by_index[i] for i in range(len(prompts))]
    together = [c.tokens for c in stories.generate(prompts, max_tokens=30, kv_dtype="bf16")]
    assert together == expected
    assert [stories.generate([p], max_tokens=30, kv_dtype="bf16")[0].tokens for p in prompts] == together
    with pytest.raises(ValueError, match="kv_dtype"):
        stories.generate(prompts, max_tokens=4, kv_dtype="q8_0")
