"""Stage asr: recordings (sources with media: audio) -> 16 kHz mono WAVs and the asr/ and tts/ manifests in
data/speech/, timed transcript segments in data/interim/media/asr/<source>.jsonl (which ingest reads in the
source's place), unsure segments and refused files in reports/asr_review/queue.jsonl, metrics/asr.json.
The model (media.asr.model at its pinned revision) is loaded only when a recording converts; without an
audio source the stage says so and writes empty outputs."""

import dataclasses
import os
import shutil
import time

from langfoundry.core.config import Params, PathsParams, load_sources, media_records
from langfoundry.core.stage import run_stage
from langfoundry.core.storage import atomic_output
from langfoundry.core.timings import write_stage_metrics
from langfoundry.media.inputs import write_source_index
from langfoundry.media.speech_manifests import TtsBounds, select_tts_clips, write_speech_manifests
from langfoundry.media.speech_source import speech_source

STAGE_FOLDER = "asr"
WHISPER_CODES = {"jv": "jw"}  # Whisper's own code for Javanese; the others are the tags' primary subtags


def whisper_language(tag: str) -> str:
    primary = tag.split("-")[0]
    return WHISPER_CODES.get(primary, primary)


class LazyTranscriber:
    """Loads the model on the first recording that needs it: a source list of refused files costs no model."""

    def __init__(self, params: Params):
        self.settings = params.media.asr
        self.recognizer = None
        self.seconds = 0.0

    def __call__(self, wav_path, language: str | None):
        from langfoundry.media.asr import load_recognizer, transcribe

        started = time.perf_counter()
        if self.recognizer is None:
            self.recognizer = load_recognizer(self.settings.model, self.settings.revision)
        segments = transcribe(self.recognizer, wav_path, language, max_new_tokens=self.settings.max_new_tokens)
        self.seconds += time.perf_counter() - started
        return segments


def relative_to_manifests(clips, manifests_folder):
    """Audio paths as speech toolkits resolve them: relative to the manifest's own folder."""
    return [dataclasses.replace(clip, audio_filepath=os.path.relpath(clip.audio_filepath, manifests_folder))
            for clip in clips]


def main(params: Params, paths: PathsParams | None = None) -> dict:
    paths = paths or params.paths
    sources = [source for source in load_sources(paths.sources).sources if source.media == "audio" and not source.planned]
    folder, review_folder = paths.media / STAGE_FOLDER, paths.reports / "asr_review"
    for stale in (folder, review_folder, paths.speech):  # a source removed from sources.yaml leaves nothing behind
        shutil.rmtree(stale, ignore_errors=True)
    folder.mkdir(parents=True)
    root = paths.sources.parent.resolve()
    transcriber = LazyTranscriber(params)
    started = time.perf_counter()
    metrics: dict = {"sources": {}}
    clips = []
    if not sources:
        print("asr: no source has media: audio; nothing to transcribe (add one to sources.yaml, see README)")
    with atomic_output(review_folder / "queue.jsonl") as partial, partial.open("w", encoding="utf-8", newline="\n") as review:
        for source in sources:
            with atomic_output(root / media_records(source)) as records_partial, \
                    records_partial.open("w", encoding="utf-8", newline="\n") as records:
                language = whisper_language(source.lang)
                counts, source_clips = speech_source(
                    source, lambda wav, language=language: transcriber(wav, language), params.media.audio,
                    params.media.asr.min_avg_logprob, root, paths.speech / "audio", records, review)
            clips += source_clips
            metrics["sources"][source.id] = counts.as_metrics()
            refused = ", ".join(f"{reason} {n}" for reason, n in counts.rejected.items())
            print(f"asr: {source.id}: {counts.converted} of {counts.files} file(s) converted "
                  f"({counts.audio_seconds / 60:.1f} min), {counts.segments} segments: {counts.kept} kept, "
                  f"{counts.review} to review"
                  + (f"; refused: {refused}" if refused else ""))
    shutil.rmtree(paths.speech / "audio" / ".scratch", ignore_errors=True)  # data sets' rows, each written while read
    write_source_index(folder, {source_id: counts["kept"] for source_id, counts in metrics["sources"].items()})
    settings = params.media.asr
    usable = [clip for clip in clips if not clip.failed_checks and clip.text.strip()]
    asr_folder, tts_folder = paths.speech / "asr", paths.speech / "tts"
    salt = params.split.salt  # the text split's salt: one knob reshuffles both
    metrics["manifests"] = {"asr": write_speech_manifests(relative_to_manifests(usable, asr_folder), asr_folder,
                                                         settings.split_fractions, salt=salt)}
    voice, _ = select_tts_clips(clips, TtsBounds(settings.tts_min_seconds, settings.tts_max_seconds, settings.tts_min_snr_db))
    metrics["manifests"]["tts"] = write_speech_manifests(relative_to_manifests(voice, tts_folder), tts_folder,
                                                         settings.split_fractions, salt=salt)
    metrics["manifests"]["left_out"] = len(clips) - len(usable)
    if clips:
        print(f"asr: manifests in {paths.speech}: asr {metrics['manifests']['asr']}, tts {metrics['manifests']['tts']}; "
              f"{len(clips) - len(usable)} clip(s) failed a check or have no text")
    minutes = sum(counts["audio_minutes"] for counts in metrics["sources"].values())
    metrics["transcribe_seconds"] = round(transcriber.seconds, 2)
    metrics["minute_seconds"] = round((time.perf_counter() - started) / minutes, 2) if minutes else None
    write_stage_metrics(paths.metric("asr"), metrics)
    return metrics


if __name__ == "__main__":
    run_stage(main, "recordings to WAV, checks, transcripts and speech manifests")
