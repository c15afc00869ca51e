"""params.yaml and sources.yaml, validated on load.

An unknown key, a wrong type or an impossible value is one line naming the file,
the key, the value and what is allowed, so a typo such as `trian.lora.r` never
passes silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from langfoundry.core.format_config import MixParams
from langfoundry.core.records import KINDS
from langfoundry.core.screening_config import ScreeningParams
from langfoundry.core.source_config import (  # noqa: F401  (re-exported: callers import sources.yaml's models from here)
    ACQUIRED_DIR,
    MEDIA_DIR,
    MEDIA_STAGE,
    AcquireSpec,
    FeedbackSpec,
    HuggingFaceSpec,
    PackageSpec,
    RenderSpec,
    Source,
    Sources,
    UrlSpec,
    VideosSpec,
    acquired_dir,
    media_records,
    source_inputs,
)
from langfoundry.core.strict_yaml import Strict, load_yaml, validate_model
from langfoundry.core.synth_config import SynthesizeParams
from langfoundry.core.vision_config import VisionParams

# --- params.yaml -------------------------------------------------------------


class IngestParams(Strict):
    allow_outside_repo: bool = False  # sources must live inside the repository unless this is on


class CleanParams(Strict):
    zero_width: Literal["keep_joiners", "remove", "keep"] = "keep_joiners"
    min_chars: int = Field(1, ge=1)
    max_chars: int = Field(2000, ge=1)
    max_length_ratio: float = Field(3.0, gt=1.0)
    length_ratio_unit: Literal["words", "chars"] = "words"
    length_ratio_kinds: list[Literal[KINDS]] = ["parallel", "transcription"]  # type: ignore[valid-type]
    min_script_ratio: float = Field(0.7, ge=0.0, le=1.0)
    script_ratio_without_letters: Literal["fail", "pass"] = "fail"  # a side with no letters at all
    min_letter_ratio: float = Field(0.5, ge=0.0, le=1.0)  # letters and marks among non-space characters
    max_word_repeats: int = Field(3, ge=1)  # longest allowed run of one word (or substring) repeated back to back
    repetition_unit: Literal["words", "substrings"] = "words"  # substrings: any 3-101 characters, spaces between
    scrub_pii: bool = True
    char_whitelist: dict[str, str] = {}  # lang tag -> every character allowed besides spaces
    screening: ScreeningParams = ScreeningParams()  # blocklists (paths.screening) and an optional toxicity classifier


class NearDedupParams(Strict):
    enabled: bool = True
    threshold: float = Field(0.85, gt=0.0, le=1.0)
    num_perm: int = Field(128, ge=16, le=1024)
    shingle_chars: int = Field(4, ge=1, le=16)
    min_shingles: int = Field(20, ge=1)  # shorter keys (in character windows) are only exact-deduplicated


class DedupParams(Strict):
    near: NearDedupParams = NearDedupParams()


class SplitParams(Strict):
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    salt: str = "langfoundry"  # changing it reshuffles every split

    @model_validator(mode="after")
    def _fractions_leave_training(self) -> SplitParams:
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("val_fraction + test_fraction must be below 1 so some data is left for training")
        return self


TaskName = Literal["translate_to_pivot", "translate_from_pivot", "vocabulary", "conversation", "instruction", "continuation"]


class FormatParams(Strict):
    template_lang: str = "id"  # language of the prompts; built-in templates exist for id and en
    system_prompt: str | None = None
    language_names: dict[str, str] = {}  # tag -> name shown in prompts (default: the tag)
    templates: dict[str, str] = {}  # template name -> text with {placeholders}; overrides the built-ins
    task_weights: dict[TaskName, float] = {}  # 0 drops a task; in train, <1 subsamples and >1 repeats
    mix: MixParams = MixParams()  # share of train examples per source or category

    @model_validator(mode="after")
    def _weights_non_negative(self) -> FormatParams:
        for task, weight in self.task_weights.items():
            if weight < 0:
                raise ValueError(f"task_weights.{task} is {weight}; weights must be 0 or more")
        return self


class ScratchParams(Strict):
    vocab_size: int = Field(1024, ge=300, le=65536)
    hidden_size: int = Field(128, ge=16)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(4, ge=1)
    intermediate_size: int = Field(384, ge=16)
    max_length: int = Field(64, ge=8)
    steps: int = Field(400, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    corpus: Literal["chat", "text"] = "chat"  # chat: whole chats; text: source/reference pairs only

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> ScratchParams:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} must be a multiple of num_heads {self.num_heads}")
        return self


class BaseParams(Strict):
    model: str = "scratch"  # "scratch", a Hugging Face id (with revision) or a local path
    revision: str | None = None
    trust_remote_code: bool = False
    scratch: ScratchParams = ScratchParams()


class LoraParams(Strict):
    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class TrainParams(Strict):
    quantization: Literal["none", "4bit"] = "none"
    lora: LoraParams = LoraParams()
    # auto picks by training-set size (presets.py); the four values below, when set, override the preset
    preset: Literal["auto", "conservative", "balanced", "aggressive"] = "auto"
    learning_rate: float | None = Field(None, gt=0)
    epochs: float | None = Field(None, gt=0)
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int | None = Field(None, ge=1)
    gradient_accumulation: int | None = Field(None, ge=1)
    max_length: int = Field(128, ge=8)
    packing: bool = False
    completion_only_loss: bool = True
    early_stopping_patience: int = Field(2, ge=0)  # 0 turns early stopping off
    eval_steps: int = Field(50, ge=1)
    save_total_limit: int = Field(1, ge=1)
    warmup_ratio: float = Field(0.05, ge=0.0, lt=1.0)  # share of the steps spent warming the learning rate up
    activation_checkpointing: bool = False  # recompute activations: less memory, slower; for large models


class EvaluateParams(Strict):
    batch_size: int = Field(32, ge=1)
    max_new_tokens: int = Field(24, ge=1)
    max_examples: int = Field(0, ge=0)  # 0: the whole test set
    # sacrebleu 2.6's tokenizers (a test keeps the list in step); intl handles Unicode punctuation, unlike 13a
    bleu_tokenize: Literal["13a", "char", "flores101", "flores200", "intl", "ja-mecab", "ko-mecab", "none",
                           "spBLEU-1K", "spm", "zh"] = "intl"
    report_samples: int = Field(10, ge=0)
    dictionary_context: bool = False  # translation prompts carry the training dictionary's entries for their words
    dictionary_entries: int = Field(5, ge=1)  # at most this many entries per prompt
    dictionary_template: str = "Kamus:\n{entries}\n\n{prompt}"  # in format.template_lang; checked by model.dictionary_context


class ExtendParams(Strict):
    enabled: bool = False  # add tokens learnt on the target-language training text to the base model
    num_new_tokens: int = Field(256, ge=1)
    min_frequency: int = Field(2, ge=2)  # times a merge must occur in the training text; once saves one token


class TokenizerParams(Strict):
    extend: ExtendParams = ExtendParams()


class QualityParams(Strict):
    """Thresholds of the data-quality gates (expectations/*.json); the suites name them as $PARAMETERs."""
    max_reject_rate: float = Field(0.5, ge=0.0, le=1.0)  # share of a source's rows one stage (ingest, clean) may reject
    max_reject_rate_by_source: dict[str, float] = {}  # source id -> its own limit, for a source known to be noisy
    max_text_equals_pivot_share: float = Field(0.5, ge=0.0, le=1.0)  # per source: pairs whose two sides are the same
    min_mean_script_ratio: float = Field(0.8, ge=0.0, le=1.0)  # per source: mean share of letters in the language's script
    min_examples_per_label: int = Field(20, ge=1)  # classification sets: training rows each label needs

    @model_validator(mode="after")
    def _rates_are_shares(self) -> QualityParams:
        for source, rate in self.max_reject_rate_by_source.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"max_reject_rate_by_source.{source} is {rate}; a rate is between 0 and 1")
        return self


class CoverageParams(Strict):
    goal: int = Field(20000, ge=1)  # records the whole corpus aims at
    count_level: Literal["raw", "clean", "dedup", "train"] = "dedup"  # the level that counts toward targets and goal
    identifiers: list[Literal["ngram", "py3langid"]] = ["ngram", "py3langid"]  # language identifiers to run
    sample_per_lang: int = Field(5000, ge=10)  # distinct clean texts per language the identifiers learn from and check
    folds: int = Field(5, ge=2, le=20)  # cross-validation folds of the ngram identifier
    max_n: int = Field(4, ge=1, le=8)  # longest character n-gram of the ngram identifier
    min_confidence: float = Field(0.99, ge=0.0, le=1.0)  # a disagreement at least this confident is flagged
    report_rows: int = Field(20, ge=0)  # flagged rows shown in reports/coverage.md (all are in coverage_flags.jsonl)


class RetrainParams(Strict):
    mini_every: int = Field(1000, ge=1)  # new clean records since the adapter's data that make a mini fine-tune due
    full_growth: float = Field(0.10, gt=0.0)  # growth of the clean data since then that makes a full refresh due
    min_corrections: int = Field(20, ge=1)  # new corrections from users (feedback sources) that make a mini fine-tune due


class ReleaseParams(Strict):
    """The release gate (metrics/release.json): a candidate adapter is promoted only when every criterion passes."""
    metric: Literal["chrf", "chrf_pp", "bleu", "exact_match"] = "chrf"  # compared between base and adapter
    tasks: list[TaskName] = ["translate_to_pivot", "translate_from_pivot"]  # the tasks whose scores are compared
    min_relative_gain: float = 0.20  # adapter must beat base by this share on the metric (0.2: 20% better)
    general_metric: Literal["perplexity"] = "perplexity"  # on held-out general text in the pivot language
    max_general_regression: float = Field(0.05, ge=0.0)  # general perplexity may rise by at most this share
    blocklist: list[str] = []  # terms no output on the test set may contain (case-insensitive)
    max_empty_share: float = Field(0.0, ge=0.0, le=1.0)  # share of empty outputs allowed
    min_preference: float = Field(0.70, ge=0.0, le=1.0)  # candidate's win rate in blind human comparisons
    min_judgments: int = Field(30, ge=1)  # fewer judgments than this: the preference criterion is pending
    confidence: float = Field(0.95, gt=0.0, lt=1.0)  # of the Wilson interval around the win rate


class ExportParams(Strict):
    gguf_types: list[Literal["f16", "q8_0"]] = ["f16", "q8_0"]
    model_name: str = "langfoundry"  # general.name in the GGUF files and the model card's title
    license: str | None = None  # the model card's licence (default: derived from the sources' licences)


class ServeParams(Strict):
    """langfoundry serve: champion (prod) and challenger (staging) from the registry, A/B or shadow routing."""
    database: str = "sqlite:///data/serve/langfoundry.db"  # or postgresql://user@host/db; env LANGFOUNDRY_DATABASE_URL wins
    champion: str = "prod"  # registry stage, or a local model folder
    challenger: str | None = "staging"  # null: champion only
    mode: Literal["ab", "shadow", "champion_only"] = "ab"
    challenger_share: float = Field(0.2, ge=0.0, le=1.0)  # ab: share of users (sticky per user id) sent to the challenger
    max_new_tokens: int = Field(128, ge=1, le=4096)  # the cap on a request's max_tokens
    scrub_pii: bool = True  # scrub prompts and answers before they are logged (clean.scrub_pii's scrubber)


class OcrParams(Strict):
    """Scans and PDFs (sources with media: scans) through an OCR engine, line by line."""
    engine: Literal["tesseract", "vision"] = "tesseract"  # vision: an OpenAI-compatible endpoint (scripts Tesseract lacks)
    vision_url: str | None = None  # e.g. http://127.0.0.1:8000/v1; the key from LANGFOUNDRY_VISION_API_KEY
    vision_model: str | None = None
    min_confidence: float = Field(0.6, ge=0.0, le=1.0)  # lines under it go to reports/ocr_review.jsonl, not the data
    dpi: int = Field(300, ge=50, le=1200)  # PDF pages are rendered at this resolution
    check_languages: list[str] = ["jv-x-banyumas", "id", "en", "ml"]  # the rendered check set behind metrics/ocr.json


class AlignParams(Strict):
    """Documents that are not sentence-aligned (sources with media: documents): sentence links with scores."""
    min_score: float = Field(0.3, ge=0.0, le=1.0)  # links scoring lower are rejected, with the reason low_score
    anchor_weight: float = Field(3.0, ge=0.0)  # cost taken off per dictionary headword whose gloss is across a link
    check_documents: int = Field(6, ge=1, le=100)  # perturbed Banyumasan-Indonesian documents behind metrics/align.json


class VideoParams(Strict):
    """Videos (sources with media: video): frames sampled, near-duplicates dropped, the rest through OCR."""
    fps: float = Field(0.2, gt=0.0, le=30.0)  # frames sampled per second of video (0.2: one every 5 s)
    dedup_similarity: float = Field(0.85, ge=0.0, le=1.0)  # a frame this similar (pHash) to the last kept one is dropped
    subtitles: bool = True  # read lesson.srt / lesson.<lang>.vtt beside lesson.mp4 as timed text
    keep_frames: bool = False  # save each kept frame as PNG (media/ocr/frames/): the images of vision examples


class AudioParams(Strict):
    """Recordings (sources with media: audio) as 16 kHz mono 16-bit WAV, loudness-normalised, then checked."""
    target_lufs: float = Field(-23.0, ge=-50.0, le=-5.0)  # EBU R128 programme loudness
    min_seconds: float = Field(0.5, ge=0.0)  # a clip outside these bounds fails too_short or too_long
    max_seconds: float = Field(30.0, gt=0.0)  # Whisper's window; longer clips are transcribed but kept out of manifests
    max_file_seconds: float = Field(14400.0, gt=0.0)  # longer files are refused before they are decoded: split them
    max_silence_share: float = Field(0.5, ge=0.0, le=1.0)
    max_clipping_share: float = Field(0.001, ge=0.0, le=1.0)
    min_snr_db: float = 15.0
    low_sample_rate: Literal["note", "reject"] = "note"  # under 16 kHz (telephone audio): upsample and flag, or refuse


class AsrParams(Strict):
    """The asr stage: Whisper through transformers, pinned; segments under min_avg_logprob go to review."""
    model: str = "openai/whisper-tiny"  # a hub id (pinned by revision) or a local folder
    revision: str | None = "169d4a4341b33bc18d8881c4b69c2e104e1cc0af"  # the hub commit; null for a local folder
    min_avg_logprob: float = Field(-1.0, le=0.0)  # mean token log-probability; Whisper's own fallback uses -1.0
    max_new_tokens: int = Field(128, ge=1, le=440)
    split_fractions: dict[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}  # speech manifests, by recording
    tts_min_seconds: float = Field(1.0, ge=0.0)  # clips for a voice: one declared speaker, every check passed
    tts_max_seconds: float = Field(15.0, gt=0.0)
    tts_min_snr_db: float = 25.0


class MediaParams(Strict):
    ocr: OcrParams = OcrParams()
    video: VideoParams = VideoParams()
    align: AlignParams = AlignParams()
    audio: AudioParams = AudioParams()
    asr: AsrParams = AsrParams()


class PathsParams(Strict):
    """Every file and folder the stages read or write: dvc.yaml uses these through ${paths.*}, and the
    stages read them here, so renaming an output is one line of params.yaml."""
    sources: Path = Field(Path("sources.yaml"), strict=False)
    inventory: Path = Field(Path("data/inventory/languages.csv"), strict=False)
    screening: Path = Field(Path("data/screening"), strict=False)  # blocklists: <tag>.txt or <tag>/<list>.txt
    raw: Path = Field(Path("data/raw"), strict=False)
    acquired: Path = Field(Path("data/raw/acquired"), strict=False)
    media: Path = Field(Path("data/interim/media"), strict=False)  # text the ocr and align stages extracted
    speech: Path = Field(Path("data/speech"), strict=False)  # the asr stage's WAVs and its asr/ and tts/ manifests
    ingested: Path = Field(Path("data/interim/ingested.parquet"), strict=False)
    ingest_rejects: Path = Field(Path("data/interim/ingest_rejects.parquet"), strict=False)
    clean: Path = Field(Path("data/interim/clean.parquet"), strict=False)
    clean_rejects: Path = Field(Path("data/interim/clean_rejects.parquet"), strict=False)
    dedup: Path = Field(Path("data/interim/dedup.parquet"), strict=False)
    dedup_rejects: Path = Field(Path("data/interim/dedup_rejects.parquet"), strict=False)
    split: Path = Field(Path("data/interim/split.parquet"), strict=False)
    dictionary: Path = Field(Path("data/interim/dictionary.sqlite"), strict=False)  # vocabulary index of the train split
    processed: Path = Field(Path("data/processed"), strict=False)
    base: Path = Field(Path("models/base"), strict=False)
    adapter: Path = Field(Path("models/adapter"), strict=False)
    merged: Path = Field(Path("models/merged"), strict=False)  # adapter merged into the base, Hugging Face format
    gguf: Path = Field(Path("models/gguf"), strict=False)  # model-f16.gguf, model-q8_0.gguf
    general: Path = Field(Path("data/general"), strict=False)  # held-out general text per pivot language: <tag>.txt
    live: Path = Field(Path("dvclive/train"), strict=False)
    expectations: Path = Field(Path("expectations"), strict=False)
    metrics: Path = Field(Path("metrics"), strict=False)
    reports: Path = Field(Path("reports"), strict=False)
    synthetic_templates: Path = Field(Path("templates/synthesize"), strict=False)  # <template_lang>/<register>.txt
    synthetic_cache: Path = Field(Path("data/synthetic_cache"), strict=False)  # endpoint answers by request hash
    synthetic_review: Path = Field(Path("data/review/synthetic.jsonl"), strict=False)  # review-data's decisions
    vision: Path = Field(Path("data/vision"), strict=False)  # image-and-text examples: {train,val,test}.jsonl, images/

    @model_validator(mode="after")
    def _acquired_is_fixed(self) -> PathsParams:
        if self.acquired != ACQUIRED_DIR:
            raise ValueError(f"paths.acquired must stay {ACQUIRED_DIR.as_posix()} (readers find acquired sources there)")
        if self.media != MEDIA_DIR:
            raise ValueError(f"paths.media must stay {MEDIA_DIR.as_posix()} (readers find extracted text there)")
        return self

    def under(self, root: Path | str) -> PathsParams:
        """The same layout below another folder (a benchmark's or a test's copy of the project)."""
        return self.model_copy(update={name: Path(root) / value for name, value in self})

    def split_file(self, split: str) -> Path:
        """data/processed/<split>.jsonl"""
        return self.processed / f"{split}.jsonl"

    def metric(self, name: str) -> Path:
        """metrics/<name>.json"""
        return self.metrics / f"{name}.json"


class Params(Strict):
    seed: int = 13
    paths: PathsParams = PathsParams()
    ingest: IngestParams = IngestParams()
    clean: CleanParams = CleanParams()
    dedup: DedupParams = DedupParams()
    split: SplitParams = SplitParams()
    format: FormatParams = FormatParams()
    quality: QualityParams = QualityParams()
    base: BaseParams = BaseParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    coverage: CoverageParams = CoverageParams()
    retrain: RetrainParams = RetrainParams()
    tokenizer: TokenizerParams = TokenizerParams()
    release: ReleaseParams = ReleaseParams()
    export: ExportParams = ExportParams()
    serve: ServeParams = ServeParams()
    media: MediaParams = MediaParams()
    synthesize: SynthesizeParams = SynthesizeParams()
    vision: VisionParams = VisionParams()


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    return validate_model(Params, load_yaml(path), str(path))


def load_sources(path: str | Path = "sources.yaml") -> Sources:
    path = Path(path)
    return validate_model(Sources, load_yaml(path), str(path))
