"""Speech to text with a Whisper-family model: timestamped segments, each with a confidence (its average token
log-probability), split into those kept and those a person should review.

The transformers `automatic-speech-recognition` pipeline returns text and timestamps but drops the scores, so this
loads the same model and processor the pipeline would and calls `model.generate` itself, one window (at most 30 s,
Whisper's input) at a time: a long recording is read from disk window by window, never held whole. A word cut by a
window edge may be misheard; segment long recordings at pauses first where that matters.

torch and transformers are imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from langfoundry.core.errors import UserError
from langfoundry.media.pages import first_line

SAMPLE_RATE = 16_000
TIME_PRECISION = 0.02  # seconds per timestamp token step
_COMMIT = re.compile(r"[0-9a-f]{40}")
# Whisper's task and control tokens; the language tokens go between <|startoftranscript|> and these.
_CONTROL_TOKENS = ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]
_TINY_SENTENCES = [
    "selamat pagi apa kabar", "saya tinggal di desa dekat sungai", "anak anak bermain di halaman sekolah",
    "ibu memasak nasi dan sayur", "hari ini hujan turun sejak pagi", "kami pergi ke pasar bersama",
    "നമസ്കാരം സുഖമാണോ", "ഞാൻ ഗ്രാമത്തിൽ താമസിക്കുന്നു", "കുട്ടികൾ സ്കൂളിൽ കളിക്കുന്നു",
]


@dataclass(frozen=True)
class Segment:
    start: float  # seconds from the start of the recording
    end: float
    text: str
    avg_logprob: float  # mean log-probability of the segment's tokens: <= 0, nearer 0 is surer
    tokens: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SpeechRecognizer:
    model: Any  # WhisperForConditionalGeneration
    processor: Any  # WhisperProcessor: feature extractor and tokenizer
    source: str  # where it was loaded from, with its revision


def load_recognizer(model: str | Path, revision: str | None = None, device: str = "cpu") -> SpeechRecognizer:
    """A Whisper-family model and its processor from a local folder, or a hub id pinned to a 40-hex commit."""
    from transformers import AutoConfig, AutoProcessor, WhisperForConditionalGeneration

    local = Path(model).is_dir()
    if not local and (revision is None or not _COMMIT.fullmatch(revision)):
        raise UserError(f"ASR model {model}: give a local folder, or pin the hub id to a commit hash (40 hex "
                        f"characters) as its revision, not {revision!r}: a branch or tag can move")
    options = {} if local else {"revision": revision}
    try:
        config = AutoConfig.from_pretrained(str(model), **options)
        if config.model_type != "whisper":
            raise UserError(f"ASR model {model}: a {config.model_type} model; only Whisper-family models are supported")
        processor = AutoProcessor.from_pretrained(str(model), **options)
        loaded = WhisperForConditionalGeneration.from_pretrained(str(model), **options).to(device).eval()
    except (OSError, ValueError) as err:
        raise UserError(f"ASR model {model}: cannot be loaded ({first_line(err)})") from err
    return SpeechRecognizer(loaded, processor, f"{model}@{revision}" if revision else str(model))


def transcribe(recognizer: SpeechRecognizer, wav_path: str | Path, language: str | None = None,
               task: str = "transcribe", max_new_tokens: int = 128) -> list[Segment]:
    """Timestamped segments of a 16 kHz mono WAV (media.audio.convert_audio writes them), greedy decoding.

    language: a Whisper language code ("id", "ml"); None lets the model detect it per window."""
    import soundfile

    try:
        info = soundfile.info(str(wav_path))
    except (RuntimeError, OSError) as err:  # soundfile's errors are RuntimeErrors
        raise UserError(f"{wav_path}: cannot be read as a WAV ({first_line(err)})") from err
    if info.samplerate != SAMPLE_RATE or info.channels != 1:
        raise UserError(f"{wav_path}: {info.samplerate} Hz, {info.channels} channel(s); convert it to 16 kHz mono "
                        "first (langfoundry.media.audio.convert_audio)")
    window = recognizer.processor.feature_extractor.n_samples  # 30 s for every Whisper so far
    segments: list[Segment] = []
    for index, samples in enumerate(soundfile.blocks(str(wav_path), blocksize=window, dtype="float32")):
        offset = index * window / SAMPLE_RATE
        segments += _transcribe_window(recognizer, samples, offset, language, task, max_new_tokens)
    return segments


def split_by_confidence(segments: list[Segment], min_avg_logprob: float) -> tuple[list[Segment], list[Segment]]:
    """(kept, review): segments at or above the confidence bound, and those under it for a person to check."""
    kept = [segment for segment in segments if segment.avg_logprob >= min_avg_logprob]
    review = [segment for segment in segments if segment.avg_logprob < min_avg_logprob]
    return kept, review


def _transcribe_window(recognizer: SpeechRecognizer, samples: Any, offset: float, language: str | None, task: str,
                       max_new_tokens: int) -> list[Segment]:
    import torch

    model, processor = recognizer.model, recognizer.processor
    features = processor.feature_extractor(samples, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
    with torch.no_grad():
        # force_unique_generate_call: one pass per window; Whisper's own seeking could loop on a weak model's timestamps
        out = model.generate(features.to(model.device, model.dtype), language=language, task=task,
                             return_timestamps=True, force_unique_generate_call=True, return_dict_in_generate=True,
                             output_scores=True, do_sample=False, num_beams=1, max_new_tokens=max_new_tokens)
    steps = len(out.scores)
    generated = out.sequences[0, -steps:].tolist() if steps else []
    logprobs = [float(torch.log_softmax(score[0].float(), dim=-1)[token]) for score, token in zip(out.scores, generated)]
    config = model.generation_config
    eos = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
    return _segments_from_tokens(generated, logprobs, processor.tokenizer, config.no_timestamps_token_id + 1,
                                 set(eos), offset, len(samples) / SAMPLE_RATE)


def _segments_from_tokens(tokens: list[int], logprobs: list[float], tokenizer: Any, timestamp_begin: int,
                          eos: set[int], offset: float, window_seconds: float) -> list[Segment]:
    """Whisper's output `<|t0|> text <|t1|><|t1|> text <|t2|> ...` as segments; text after the last timestamp runs to
    the window's end. Times are clamped into the window: a weak model may predict beyond the audio."""
    segments: list[Segment] = []
    start: float | None = None  # within the window; None: text with no opening timestamp starts where the last ended
    previous_end = 0.0
    text_tokens: list[int] = []
    scores: list[float] = []

    def close(end: float) -> float:
        low = min(max(previous_end if start is None else start, 0.0), window_seconds)
        high = min(max(end, low), window_seconds)
        text = tokenizer.decode(text_tokens, skip_special_tokens=True).strip()
        segments.append(Segment(_floor_ms(offset + low), _floor_ms(offset + high), text, sum(scores) / len(scores),
                                len(scores)))
        return high

    for token, logprob in zip(tokens, logprobs):
        if token in eos:
            break
        if token < timestamp_begin:
            text_tokens.append(token)
            scores.append(logprob)
        elif text_tokens:  # a timestamp after text ends the segment
            scores.append(logprob)
            previous_end = close((token - timestamp_begin) * TIME_PRECISION)
            start, text_tokens, scores = None, [], []
        else:  # a timestamp opening a segment
            start, scores = (token - timestamp_begin) * TIME_PRECISION, [logprob]
    if text_tokens:
        close(window_seconds)
    return segments


def build_tiny_whisper(folder: str | Path, seed: int = 13, languages: tuple[str, ...] = ("id", "ml")) -> Path:
    """A randomly initialised tiny Whisper (d_model 64, 2 layers, 2 heads) with a feature extractor and a byte-level
    BPE tokenizer trained on a few sentences, saved to folder; built offline in seconds for tests and benchmarks.
    Its transcripts are noise: it has the structure of a real model, not its knowledge."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    folder = Path(folder)
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(_TINY_SENTENCES, trainer=trainer)
    trained = json.loads(backend.to_str())["model"]
    merges = [tuple(pair.split(" ")) if isinstance(pair, str) else tuple(pair) for pair in trained["merges"]]
    tokenizer = WhisperTokenizer(vocab=trained["vocab"], merges=merges)
    language_tokens = [f"<|{code}|>" for code in languages]
    # Order matters: Whisper takes every id after <|notimestamps|> to be a timestamp, 0.00 to 30.00 s by 0.02 s.
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|startoftranscript|>", *language_tokens,
                                                                *_CONTROL_TOKENS]})
    tokenizer.add_tokens([f"<|{step * TIME_PRECISION:.2f}|>" for step in range(1501)])
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in ["<|endoftext|>", "<|startoftranscript|>",
                                                                       *language_tokens, *_CONTROL_TOKENS]}
    eos, start = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    config = WhisperConfig(vocab_size=len(tokenizer), d_model=64, encoder_layers=2, decoder_layers=2,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128,
                           num_mel_bins=80, max_source_positions=1500, max_target_positions=448, pad_token_id=eos,
                           bos_token_id=eos, eos_token_id=eos, decoder_start_token_id=start, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():
        # At the default scale every logit is near 0 and the 1,501 timestamp tokens together outweigh the text, so a
        # random model would emit timestamps only; larger (untied) output rows for text tokens give it text to segment.
        output_rows = model.proj_out.weight
        output_rows[: ids["<|notimestamps|>"] + 1].normal_(0.0, 0.3, generator=torch.Generator().manual_seed(seed))
    model.generation_config = GenerationConfig(
        decoder_start_token_id=start, eos_token_id=eos, pad_token_id=eos, bos_token_id=eos,
        no_timestamps_token_id=ids["<|notimestamps|>"], prev_sot_token_id=ids["<|startofprev|>"],
        lang_to_id={token: ids[token] for token in language_tokens},
        task_to_id={"translate": ids["<|translate|>"], "transcribe": ids["<|transcribe|>"]},
        is_multilingual=True, max_initial_timestamp_index=50, begin_suppress_tokens=[eos], suppress_tokens=[],
        max_length=config.max_target_positions,
    )
    processor = WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _floor_ms(seconds: float) -> float:
    """Whole milliseconds, rounded down: an end rounded up could fall past the clip's last sample."""
    return math.floor(seconds * 1000 + 1e-6) / 1000
