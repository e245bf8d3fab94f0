"""The Binoculars scorer: exact against a naive per-text computation, batch-invariant, loud on misuse, and one bad
or huge text never sinks a batch."""

import math
import shutil
import warnings

import pytest
import torch

import binoculars
from binoculars import Binoculars, ModelLoadError
from binoculars import detector as detector_module
from binoculars.detector import same_model
from binoculars.testing.faults import RecordingTokenizer
from binoculars.testing.tiny import build_tokenizer, story_corpus
from binoculars.utils import max_token_chars, parse_device

ODD_TEXTS = [
    "",
    "   \n\t ",
    "a",
    "Hi",
    "🙂🚀✨ 你好世界 こんにちは",
    "He said <|endoftext|> and then <|im_start|>assistant\n<think> </think> left.",
    "Once upon a time " * 300,  # ~5,000 characters, truncated to max_token_observed
]
TEXTS = story_corpus(6, seed=11) + ["the cat", "zq xv 9 !! kk jfj wpq", "A dog ran. " * 20]


def make_scorer(tiny_pair, **kwargs) -> Binoculars:
    kwargs.setdefault("thresholds", {"accuracy": 0.3, "low-fpr": 0.25})
    return Binoculars(tiny_pair.observer, tiny_pair.performer, **kwargs)


@pytest.fixture(scope="module")
def scorer(tiny_pair) -> Binoculars:
    return make_scorer(tiny_pair, batch_size=3, max_token_observed=64)


def naive_details(scorer: Binoculars, text: str) -> tuple[float, float, float]:
    """Independent reference: full logits of each model for one text, position by position, in float64."""
    ids = scorer.tokenizer(text, truncation=True, max_length=scorer.max_token_observed)["input_ids"]
    with torch.no_grad():
        observer_logits = scorer.observer_model(torch.tensor([ids])).logits[0].double()
        performer_logits = scorer.performer_model(torch.tensor([ids])).logits[0].double()
    nll_total, xent_total = 0.0, 0.0
    for t in range(len(ids) - 1):
        performer_log_probs = torch.log_softmax(performer_logits[t], dim=-1)
        observer_probs = torch.softmax(observer_logits[t], dim=-1)
        nll_total += -performer_log_probs[ids[t + 1]].item()
        xent_total += -(observer_probs * performer_log_probs).sum().item()
    log_ppl, x_ppl = nll_total / (len(ids) - 1), xent_total / (len(ids) - 1)
    return log_ppl / x_ppl, log_ppl, x_ppl


def test_scores_match_naive_per_text_computation(scorer):
    details = scorer.score_details(TEXTS)
    for text, got in zip(TEXTS, details, strict=True):
        score, log_ppl, x_ppl = naive_details(scorer, text)
        assert got.log_ppl == pytest.approx(log_ppl, rel=1e-5)
        assert got.x_ppl == pytest.approx(x_ppl, rel=1e-5)
        assert got.score == pytest.approx(score, rel=1e-5)
    assert len({round(d.score, 6) for d in details}) > len(TEXTS) // 2, "scores should vary between texts"


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_score_is_batch_invariant(tiny_pair, padding_side):
    scorer = make_scorer(tiny_pair, batch_size=4, max_token_observed=64)
    scorer.tokenizer.padding_side = padding_side
    alone = [scorer.compute_score(text) for text in TEXTS]
    batched = scorer.compute_score(TEXTS)
    reversed_batch = scorer.compute_score(TEXTS[::-1])[::-1]
    assert batched == pytest.approx(alone, rel=1e-5)
    assert reversed_batch == pytest.approx(alone, rel=1e-5)


def test_logits_chunking_does_not_change_scores(tiny_pair, scorer):
    one_row_at_a_time = make_scorer(tiny_pair, batch_size=8, max_token_observed=64, logits_chunk_mb=1e-6)
    assert one_row_at_a_time.compute_score(TEXTS) == pytest.approx(scorer.compute_score(TEXTS), rel=1e-5)


def test_long_text_is_truncated_to_max_token_observed(scorer):
    long_text = ODD_TEXTS[-1]
    (details,) = scorer.score_details([long_text])
    assert details.num_tokens == scorer.max_token_observed
    ids = scorer.tokenizer(long_text)["input_ids"][: scorer.max_token_observed]
    assert details.score == pytest.approx(naive_details(scorer, scorer.tokenizer.decode(ids))[0], rel=1e-5)


LONG_TEXTS = [
    " ".join(story_corpus(60, seed=5)),
    "a" * 20_000,  # one word far longer than the character budget
    "🙂🚀✨ 你好世界 こんにちは " * 400,
    "The dog ran.\n\n\t" + "x" * 3000 + " then " * 2000,
]


@pytest.mark.parametrize("text", LONG_TEXTS, ids=["prose", "one-long-word", "emoji-cjk", "mixed"])
def test_a_long_text_scores_like_its_token_truncated_form(scorer, text):
    """Only a head of char_budget characters is tokenized; the result is the whole text's, cut by tokens."""
    assert len(text) > scorer.char_budget
    whole_ids = scorer.tokenizer(text)["input_ids"][: scorer.max_token_observed]
    (details,) = scorer.score_details([text])
    assert details.num_tokens == scorer.max_token_observed
    assert details.score == pytest.approx(naive_details(scorer, text)[0], rel=1e-5)
    # the reported span is the scored text: its tokens are exactly the scored tokens
    assert scorer.tokenizer(text[: details.scored_chars])["input_ids"] == whole_ids


def test_a_huge_text_reaches_the_tokenizer_only_as_a_bounded_head(scorer, monkeypatch):
    recording = RecordingTokenizer(scorer.tokenizer)
    monkeypatch.setattr(scorer, "tokenizer", recording)
    huge = "Once upon a time a fox ran home. " * 300_000  # 10 MB
    (details,) = scorer.score_details([huge])
    assert max(len(text) for text in recording.seen) <= scorer.char_budget
    assert scorer.char_budget == (scorer.max_token_observed + 16) * max_token_chars(scorer.tokenizer)
    assert details.num_tokens == scorer.max_token_observed and 0 < details.scored_chars < scorer.char_budget


def test_an_untruncated_text_is_scored_whole(scorer):
    for text, details in zip(TEXTS, scorer.score_details(TEXTS), strict=True):
        if details.num_tokens < scorer.max_token_observed:
            assert details.scored_chars == len(text) and details.error is None


def test_lone_surrogates_are_scored_as_replacement_characters(scorer):
    """A lone surrogate (valid in a Python str, not in UTF-8) made the tokenizer fail the whole batch."""
    texts = ["\ud800", TEXTS[0] + " \udfff end", TEXTS[1]]
    details = scorer.score_details(texts)
    cleaned = [t.replace("\ud800", "\ufffd").replace("\udfff", "\ufffd") for t in texts]
    assert details == scorer.score_details(cleaned)
    assert [d.error for d in details] == [None] * 3 and details[0].num_tokens >= 1


def test_a_text_the_tokenizer_rejects_alone_goes_unscored(scorer, monkeypatch):
    alone = scorer.score_details(TEXTS)
    monkeypatch.setattr(scorer, "tokenizer", RecordingTokenizer(scorer.tokenizer, reject="POISON"))
    batch = [*TEXTS[:3], "a POISON text", *TEXTS[3:]]
    with pytest.warns(UserWarning, match="could not score text #3.*injected tokenizer failure"):
        details = scorer.score_details(batch)
    bad = details.pop(3)
    assert details == alone  # every other text keeps exactly the score it gets alone
    assert math.isnan(bad.score) and bad.num_tokens == 0 and "injected tokenizer failure" in bad.error


@pytest.mark.parametrize("device", ["banana", "cuda:x", "cuda:-1"])
def test_unparseable_devices_are_a_clear_error(tiny_pair, device):
    with pytest.raises(ValueError, match=f"{device!r} is not a device.*'cuda:1'"):
        make_scorer(tiny_pair, device=device)
    assert parse_device("cuda:1") == torch.device("cuda", 1)  # format only; existence is checked at load


def test_odd_inputs_give_one_float_each_nan_exactly_below_two_tokens(scorer):
    details = scorer.score_details(ODD_TEXTS)
    assert len(details) == len(ODD_TEXTS)
    for text, got in zip(ODD_TEXTS, details, strict=True):
        assert isinstance(got.score, float)
        assert got.num_tokens == len(scorer.tokenizer(text, truncation=True, max_length=64)["input_ids"])
        assert math.isnan(got.score) == (got.num_tokens < 2), (text, got)
    assert [d.score for d in details] == pytest.approx(scorer.compute_score(ODD_TEXTS), nan_ok=True)
    assert scorer.compute_score([]) == []


def test_single_text_returns_a_float_and_lists_return_lists(scorer):
    assert isinstance(scorer.compute_score(TEXTS[0]), float)
    assert scorer.compute_score((TEXTS[0],)) == [scorer.compute_score(TEXTS[0])]


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["ok", 5], [None]])
def test_non_string_input_raises_type_error(scorer, bad):
    with pytest.raises(TypeError):
        scorer.compute_score(bad)


def test_predict_uses_the_mode_threshold(scorer):
    scores = scorer.compute_score(TEXTS[:3] + [""])
    scorer.change_mode("accuracy")
    assert scorer.threshold == 0.3
    expected = [binoculars.AI_LABEL if s < 0.3 else binoculars.HUMAN_LABEL for s in scores[:3]]
    assert scorer.predict(TEXTS[:3] + [""]) == expected + [binoculars.UNDETERMINED_LABEL]
    assert scorer.predict(TEXTS[0]) == expected[0]
    scorer.change_mode("low-fpr")
    assert scorer.threshold == 0.25
    with pytest.raises(ValueError, match="mode"):
        scorer.change_mode("high-recall")


def test_default_thresholds_are_the_falcon_constants_with_a_warning(tiny_pair):
    with pytest.warns(UserWarning, match="Falcon-7B"):
        scorer = Binoculars(tiny_pair.observer, tiny_pair.performer)
    assert scorer.threshold == binoculars.FALCON_7B_LOW_FPR_THRESHOLD == 0.8536432310785527
    scorer.change_mode("accuracy")
    assert scorer.threshold == binoculars.FALCON_7B_ACCURACY_THRESHOLD == 0.9015310749276843


def test_thresholds_round_trip_through_json(tmp_path, tiny_pair):
    path = tmp_path / "calibration.json"
    binoculars.save_thresholds(path, {"accuracy": 0.7, "low-fpr": 0.6}, observer="o", performer="p")
    assert binoculars.load_thresholds(path) == {"accuracy": 0.7, "low-fpr": 0.6}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scorer = make_scorer(tiny_pair, thresholds=path, mode="accuracy")
    assert scorer.threshold == 0.7


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json", "not valid JSON"), ('{"x": 1}', "thresholds"), ('{"thresholds": {"a": NaN}}', "finite")],
)
def test_bad_threshold_files_raise_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        binoculars.load_thresholds(path)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        binoculars.load_thresholds(tmp_path / "missing.json")


def test_mismatched_tokenizers_are_refused(tiny_pair, tmp_path):
    other = tmp_path / "other_performer"
    torch_model = __import__("transformers").AutoModelForCausalLM.from_pretrained(tiny_pair.performer)
    torch_model.save_pretrained(other)
    build_tokenizer(vocab_size=400).save_pretrained(other)
    with pytest.raises(ValueError, match="tokenizers"):
        make_scorer(type(tiny_pair)(tiny_pair.observer, other, tiny_pair.policy))


def test_unreachable_hub_model_raises_one_clear_error(tiny_pair):
    with pytest.raises(ModelLoadError, match="(?s)Qwen/not-a-real-model.*local directory"):
        Binoculars("Qwen/not-a-real-model", tiny_pair.performer)


def test_placement_defaults_to_cpu_fp32_and_honours_explicit_dtype(tiny_pair):
    scorer = make_scorer(tiny_pair)
    for model in (scorer.observer_model, scorer.performer_model):
        assert model.device.type == "cpu" and model.dtype == torch.float32
        assert not any(p.requires_grad for p in model.parameters())
    bf16 = make_scorer(tiny_pair, dtype="bfloat16", performer_device="cpu")
    assert bf16.observer_model.dtype == bf16.performer_model.dtype == torch.bfloat16
    assert bf16.compute_score(TEXTS[0]) == pytest.approx(scorer.compute_score(TEXTS[0]), rel=0.05)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        make_scorer(tiny_pair, observer_device="cuda:0")


def test_scoring_leaves_autograd_usable_for_training_in_the_same_thread(scorer):
    assert torch.is_grad_enabled()
    scorer.compute_score(TEXTS[:2])
    assert torch.is_grad_enabled()
    weight = torch.ones(3, requires_grad=True)
    (weight * 2).sum().backward()
    assert weight.grad is not None


# --- observer = performer: one model, one forward pass per text ---------------------------------------------
def count_model_loads(monkeypatch) -> list[str]:
    """Record the role of every model load_frozen_model performs while the test runs."""
    loads: list[str] = []
    original = detector_module.load_frozen_model

    def recording(name_or_path, device, dtype, role):
        loads.append(role)
        return original(name_or_path, device, dtype, role)

    monkeypatch.setattr(detector_module, "load_frozen_model", recording)
    return loads


def test_the_same_model_as_both_roles_is_loaded_once_and_scores_like_two_passes(
    tiny_pair, tmp_path, monkeypatch
):
    # The same weights under another directory name: not recognised as the same model, so scored in two passes.
    twin = shutil.copytree(tiny_pair.performer, tmp_path / "performer-twin")
    two_pass = Binoculars(
        tiny_pair.performer, twin, thresholds={"low-fpr": 0.9}, batch_size=3, max_token_observed=64
    )
    assert not two_pass.shared_model and two_pass.observer_model is not two_pass.performer_model

    loads = count_model_loads(monkeypatch)
    one_pass = Binoculars(
        tiny_pair.performer,
        tiny_pair.performer,
        thresholds={"low-fpr": 0.9},
        batch_size=3,
        max_token_observed=64,
    )
    assert len(loads) == 1
    assert one_pass.shared_model and one_pass.observer_model is one_pass.performer_model

    forward_calls: list[int] = []
    one_pass.performer_model.base_model.register_forward_hook(lambda *_: forward_calls.append(1))
    shared, separate = one_pass.score_details(TEXTS), two_pass.score_details(TEXTS)
    assert len(forward_calls) == math.ceil(len(TEXTS) / one_pass.batch_size), "one forward pass per batch"
    for got, want in zip(shared, separate, strict=True):
        assert got.log_ppl == pytest.approx(want.log_ppl, abs=1e-6)
        assert got.x_ppl == pytest.approx(want.x_ppl, abs=1e-6)
        assert got.score == pytest.approx(want.score, abs=1e-6)


def test_one_pass_score_is_log_ppl_over_the_performers_own_entropy(tiny_pair):
    scorer = Binoculars(
        tiny_pair.performer, tiny_pair.performer, thresholds={"low-fpr": 0.9}, max_token_observed=64
    )
    text = TEXTS[0]
    ids = scorer.tokenizer(text, truncation=True, max_length=64)["input_ids"]
    with torch.no_grad():
        log_probs = torch.log_softmax(scorer.performer_model(torch.tensor([ids])).logits[0, :-1].double(), -1)
    log_ppl = -log_probs.gather(-1, torch.tensor(ids[1:]).unsqueeze(-1)).mean().item()
    entropy = -(log_probs.exp() * log_probs).sum(-1).mean().item()
    assert scorer.score_details([text])[0].score == pytest.approx(log_ppl / entropy, rel=1e-5)


def test_same_model_compares_resolved_directories_and_hub_ids(tiny_pair, tmp_path):
    link = tmp_path / "link-to-performer"
    link.symlink_to(tiny_pair.performer, target_is_directory=True)
    assert same_model(tiny_pair.performer, link)
    assert not same_model(tiny_pair.performer, tiny_pair.observer)
    assert same_model("org/model", "org/model") and not same_model("org/model", "org/model-Instruct")
    assert not same_model(tiny_pair.performer, "org/model")


def test_the_same_model_in_two_dtypes_is_loaded_twice(tiny_pair, monkeypatch):
    dtypes = iter([torch.float32, torch.bfloat16])  # observer's, then performer's
    monkeypatch.setattr(detector_module, "resolve_dtype", lambda *_: next(dtypes))
    loads = count_model_loads(monkeypatch)
    scorer = Binoculars(tiny_pair.performer, tiny_pair.performer, thresholds={"low-fpr": 0.9})
    assert len(loads) == 2 and not scorer.shared_model
    assert scorer.performer_model.dtype == torch.bfloat16 and scorer.observer_model.dtype == torch.float32
