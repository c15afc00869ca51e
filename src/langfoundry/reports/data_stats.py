"""The data-statistics report: what the chat examples in data/processed/ hold, before any GPU time goes on them.

Read one line at a time from {train,val,test}.jsonl: examples per split, task and language; the lengths of prompt
and answer in characters and words (kept as counts per length, so memory stays bounded whatever the corpus size),
drawn as histograms per task; and a few random examples per task (reservoir sampling with a fixed seed, so the
same files give the same samples). Writes reports/data_stats.md, reports/data_stats/*.png (the same bytes for the
same data: no date or software version in them) and metrics/data_stats.json. Never imports torch.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from langfoundry.core.errors import UserError

SPLITS = ("train", "val", "test")
PARTS = ("prompt", "answer")
UNITS = ("characters", "words")
PLOTS = {part: f"{part}_lengths.png" for part in PARTS}


def measure(text: str, unit: str) -> int:
    return len(text) if unit == "characters" else len(text.split())


def prompt_and_answer(example: Mapping) -> tuple[str, str]:
    """The prompt (every message before the last assistant turn, system included) and the answer (that turn)."""
    messages = example.get("messages") or []
    last = max((index for index, message in enumerate(messages) if message.get("role") == "assistant"), default=None)
    if last is None:
        return "\n".join(str(message.get("content", "")) for message in messages), ""
    prompt = "\n".join(str(message.get("content", "")) for message in messages[:last])
    return prompt, str(messages[last].get("content", ""))


@dataclass
class DataStats:
    """Counts, length histograms (length -> examples) and samples, filled one example at a time."""
    samples_per_task: int = 3
    seed: int = 13
    counts: Counter = field(default_factory=Counter)  # (split, task, lang) -> examples
    lengths: dict = field(default_factory=lambda: defaultdict(Counter))  # (task, part, unit) -> Counter(length)
    samples: dict = field(default_factory=lambda: defaultdict(list))  # task -> sampled examples
    seen: Counter = field(default_factory=Counter)  # task -> examples seen (for the reservoir)
    malformed: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def add(self, split: str, example: Mapping) -> None:
        task, lang = str(example.get("task", "?")), str(example.get("lang", "?"))
        self.counts[(split, task, lang)] += 1
        prompt, answer = prompt_and_answer(example)
        for part, text in zip(PARTS, (prompt, answer)):
            for unit in UNITS:
                self.lengths[(task, part, unit)][measure(text, unit)] += 1
        self.seen[task] += 1
        kept = {"split": split, "id": example.get("id"), "lang": lang, "source": example.get("source"),
                "prompt": prompt, "answer": answer}
        reservoir = self.samples[task]
        if len(reservoir) < self.samples_per_task:
            reservoir.append(kept)
        else:
            slot = self._rng.randrange(self.seen[task])
            if slot < self.samples_per_task:
                reservoir[slot] = kept

    @property
    def tasks(self) -> list[str]:
        return sorted({task for _, task, _ in self.counts})

    def summary(self, task: str, part: str, unit: str) -> dict:
        histogram = self.lengths[(task, part, unit)]
        return length_summary(histogram)

    def as_metrics(self) -> dict:
        by_task: dict = {}
        for (split, task, lang), count in sorted(self.counts.items()):
            by_task.setdefault(task, {}).setdefault(lang, {split_name: 0 for split_name in SPLITS})[split] = count
        return {
            "examples": sum(self.counts.values()),
            "splits": {split: sum(n for (s, _, _), n in self.counts.items() if s == split) for split in SPLITS},
            "by_task": by_task,
            "languages": sorted({lang for _, _, lang in self.counts}),
            "lengths": {task: {f"{part}_{unit}": self.summary(task, part, unit) for part in PARTS for unit in UNITS}
                        for task in self.tasks},
            "malformed_lines": self.malformed,
            "samples_per_task": self.samples_per_task,
            "seed": self.seed,
        }


def length_summary(histogram: Mapping[int, int]) -> dict:
    """min, median, mean, 95th percentile and max of a length histogram."""
    total = sum(histogram.values())
    if not total:
        return {"min": 0, "median": 0, "mean": 0.0, "p95": 0, "max": 0}
    ordered = sorted(histogram.items())

    def quantile(share: float) -> int:
        wanted, running = share * (total - 1), 0
        for length, count in ordered:
            running += count
            if running - 1 >= wanted:
                return length
        return ordered[-1][0]

    mean = sum(length * count for length, count in ordered) / total
    return {"min": ordered[0][0], "median": quantile(0.5), "mean": round(mean, 2), "p95": quantile(0.95),
            "max": ordered[-1][0]}


def read_examples(path: Path) -> Iterator[dict | None]:
    """One example per line (None for a line that is not a JSON object), streamed."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                example = json.loads(line)
            except json.JSONDecodeError:
                yield None
                continue
            yield example if isinstance(example, dict) else None


def collect(processed: Path, samples_per_task: int = 3, seed: int = 13, splits: Iterable[str] = SPLITS) -> DataStats:
    processed = Path(processed)
    files = [(split, processed / f"{split}.jsonl") for split in splits]
    if not any(path.is_file() for _, path in files):
        raise UserError(f"no {', '.join(f'{split}.jsonl' for split, _ in files)} in {processed}; run `dvc repro format` first")
    stats = DataStats(samples_per_task=samples_per_task, seed=seed)
    for split, path in files:
        if not path.is_file():
            continue
        for example in read_examples(path):
            if example is None:
                stats.malformed += 1
            else:
                stats.add(split, example)
    return stats


def plot_lengths(stats: DataStats, part: str, path: Path) -> None:
    """Histograms of one part's length (characters, words), one step line per task; the same bytes every time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.hashsalt": "langfoundry", "font.family": "DejaVu Sans"}):
        figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
        for axis, unit in zip(axes, UNITS):
            seen = [length for task in stats.tasks for length in stats.lengths[(task, part, unit)]]
            low, high = (min(seen), max(seen)) if seen else (0, 1)
            # shared edges, so the tasks compare: one bin per length when there are few, else 40 equal bins
            step = max(1.0, (high - low + 1) / 40)
            bins = [low - 0.5 + step * index for index in range(int((high - low + 1) / step) + 2)]
            for task in stats.tasks:
                histogram = stats.lengths[(task, part, unit)]
                if not histogram:
                    continue
                values = sorted(histogram)
                axis.hist(values, bins=bins, weights=[histogram[value] for value in values], histtype="step",
                          linewidth=1.4, label=f"{task} ({sum(histogram.values()):,})")
            axis.set_xlabel(f"{part} length ({unit})")
            axis.set_ylabel("examples")
            axis.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        figure.suptitle(f"{part.capitalize()} lengths per task, all splits")
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", metadata={"Software": None})
        plt.close(figure)


def cell(text: str, limit: int = 160) -> str:
    """Text for one markdown table cell: one line, pipes escaped, cut at limit characters."""
    flat = " ".join(str(text).split())
    flat = flat if len(flat) <= limit else flat[:limit - 1] + "…"
    return flat.replace("|", "\\|") or "(empty)"


def render_markdown(stats: DataStats, plots_dir_name: str) -> str:
    metrics = stats.as_metrics()
    lines = ["# Data statistics", "",
             f"{metrics['examples']:,} chat examples in data/processed: " +
             ", ".join(f"{split} {count:,}" for split, count in metrics["splits"].items()) +
             f"; {len(metrics['by_task'])} task(s), {len(metrics['languages'])} language(s)." +
             (f" {stats.malformed} line(s) were not JSON objects." if stats.malformed else ""), "",
             "## Examples per task and language", "",
             "| task | language | train | val | test | total |", "|---|---|---|---|---|---|"]
    for task, languages in metrics["by_task"].items():
        for lang, per_split in languages.items():
            lines.append(f"| {task} | {lang} | " + " | ".join(f"{per_split[split]:,}" for split in SPLITS) +
                         f" | {sum(per_split.values()):,} |")
    lines += ["", "## Lengths", "", "Median, 95th percentile and maximum, all splits together.", "",
              "| task | prompt characters | prompt words | answer characters | answer words |", "|---|---|---|---|---|"]
    for task, measures in metrics["lengths"].items():
        lines.append(f"| {task} | " + " | ".join(
            "{median} / {p95} / {max}".format(**measures[f"{part}_{unit}"]) for part in PARTS for unit in UNITS) + " |")
    lines.append("")
    for part in PARTS:
        lines += [f"![{part} lengths]({plots_dir_name}/{PLOTS[part]})", ""]
    lines += ["## Random samples per task", "",
              f"{stats.samples_per_task} per task, drawn with seed {stats.seed} (the same files give the same samples).", ""]
    for task in stats.tasks:
        lines += [f"### {task}", "", "| split | language | source | prompt | answer |", "|---|---|---|---|---|"]
        for sample in stats.samples[task]:
            lines.append(f"| {sample['split']} | {sample['lang']} | {cell(sample['source'] or '')} | "
                         f"{cell(sample['prompt'])} | {cell(sample['answer'])} |")
        lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True)
class Written:
    report: Path
    plots: list[Path]
    metrics: Path
    stats: DataStats


def write_report(processed: Path, report: Path, metrics_path: Path, samples_per_task: int = 3, seed: int = 13) -> Written:
    """Collect the statistics of processed/ and write the markdown report, its plots (beside it, in a folder of
    the report's name) and the metrics JSON."""
    stats = collect(processed, samples_per_task, seed)
    report, metrics_path = Path(report), Path(metrics_path)
    plots_dir = report.with_suffix("")
    plots = [plots_dir / PLOTS[part] for part in PARTS]
    for part, plot in zip(PARTS, plots):
        plot_lengths(stats, part, plot)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(render_markdown(stats, plots_dir.name), encoding="utf-8")
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(stats.as_metrics(), indent=2, ensure_ascii=False, sort_keys=True) + "\n",
                            encoding="utf-8")
    return Written(report, plots, metrics_path, stats)


def headline(stats: DataStats) -> str:
    metrics = stats.as_metrics()
    tasks = ", ".join(f"{task} {sum(sum(s.values()) for s in langs.values()):,}" for task, langs in metrics["by_task"].items())
    return (f"data-stats: {metrics['examples']:,} examples (" +
            ", ".join(f"{split} {count:,}" for split, count in metrics["splits"].items()) +
            f"); tasks: {tasks}; languages: {', '.join(metrics['languages'])}")
