"""The tokenizer report for people: a table per language, the characters without a token, the extension, a plot."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from langfoundry.core.storage import ensure_parent
from langfoundry.model.tokenizer_analysis import ACCEPTABLE_UP_TO, FINE_BELOW, VERDICTS, LanguageFigures, TokenizerAnalysis

MAX_CHARS_LISTED = 60
MAX_TOKENS_LISTED = 20


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _percent(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def _char(char: str) -> str:
    name = unicodedata.name(char, "")
    shown = f"◌{char}" if unicodedata.category(char).startswith("M") else char  # a mark alone needs a base to show
    return f"`{shown}` U+{ord(char):04X}{' ' + name.lower() if name else ''}"


def _figures_table(figures: dict[str, LanguageFigures]) -> list[str]:
    lines = [
        "| language | texts | words | fertility | continued words | chars/token | bytes/token | unknown | byte fallback "
        "| char coverage | pivot | parity | fertility ratio | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lang, figure in sorted(figures.items(), key=lambda item: (item[1].pivot is None, item[0])):
        lines.append(
            f"| {lang} | {figure.texts} | {figure.words} | {_number(figure.fertility)} | {_percent(figure.continued_share)} "
            f"| {_number(figure.chars_per_token)} | {_number(figure.bytes_per_token)} | {_percent(figure.unknown_rate)} "
            f"| {_percent(figure.byte_fallback_rate)} | {_percent(figure.char_coverage)} | {figure.pivot or '(pivot)'} "
            f"| {_number(figure.parity)} | {_number(figure.fertility_ratio)} "
            f"| {VERDICTS[figure.verdict] if figure.verdict else '–'} |"
        )
    return lines


def _uncovered(figures: dict[str, LanguageFigures]) -> list[str]:
    lines = ["## Characters without a token of their own", ""]
    listed = False
    for lang, figure in sorted(figures.items()):
        if not figure.uncovered:
            continue
        listed = True
        shown = ", ".join(_char(char) for char in figure.uncovered[:MAX_CHARS_LISTED])
        more = f", and {len(figure.uncovered) - MAX_CHARS_LISTED} more" if len(figure.uncovered) > MAX_CHARS_LISTED else ""
        lines.append(f"- **{lang}**: {len(figure.uncovered)} of {figure.distinct_chars} distinct characters: {shown}{more}")
    if not listed:
        lines.append("Every character of the data is a token of its own.")
    return lines


def _extension(analysis: TokenizerAnalysis) -> list[str]:
    extension, before, after = analysis.extension, analysis.before, analysis.figures
    assert extension is not None and before is not None
    new_tokens = extension["new_tokens"]
    lines = [
        "## Vocabulary extension",
        "",
        f"{len(new_tokens)} new tokens, vocabulary {extension['original_vocab_size']} -> {extension['vocab_size']}. "
        "They continue the base tokenizer's BPE on the target-language training text (each joins two tokens it "
        "already produced, most frequent first); each new embedding row starts as the mean of the rows of the "
        "tokens it replaces, and fine-tuning trains those rows. Held-out: the val and test texts, which the "
        "extension never saw.",
        "",
        "| language | fertility before | after | held-out fertility before | after | parity before | after "
        "| verdict before | after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    heldout = analysis.heldout_fertility or {}
    for lang in sorted(after, key=lambda name: (after[name].pivot is None, name)):
        old, new = before[lang], after[lang]
        held = heldout.get(lang, (None, None))
        lines.append(
            f"| {lang} | {_number(old.fertility)} | {_number(new.fertility)} | {_number(held[0])} | {_number(held[1])} "
            f"| {_number(old.parity)} | {_number(new.parity)} | {old.verdict or '–'} | {new.verdict or '–'} |"
        )
    top = sorted(new_tokens, key=lambda token: (-token["uses_in_training_text"], token["id"]))[:MAX_TOKENS_LISTED]
    if top:
        lines += ["", "Most used new tokens on the training text:", "", "| id | token | uses |", "|---|---|---|"]
        lines += [f"| {token['id']} | `{token['text']}` | {token['uses_in_training_text']} |" for token in top]
    return lines


def render_markdown(analysis: TokenizerAnalysis, base_dir: str, plot_name: str) -> str:
    extended = analysis.extension is not None
    lines = [
        "# Tokenizer analysis",
        "",
        f"The tokenizer of `{base_dir}` (vocabulary {analysis.vocab_size}"
        f"{', extended' if extended else ''}) on the distinct texts of the train, val and test sets: the "
        "record-language side of every example, and the pivot side of the translation pairs.",
        "",
        *_figures_table(analysis.figures),
        "",
        f"Rule of thumb on the fertility ratio (the language's fertility over its pivot's): under {FINE_BELOW:g} is "
        f"fine; {FINE_BELOW:g} to {ACCEPTABLE_UP_TO:g} is acceptable, but training and generation are slower; over "
        f"{ACCEPTABLE_UP_TO:g}, consider extending the vocabulary (`tokenizer.extend.enabled: true`).",
        "",
        f"![fertility per language]({plot_name})",
        "",
        "- fertility: tokens per word (words are runs of whole grapheme clusters, so combining marks stay in "
        "their word); continued words: the share of words cut into two or more tokens;",
        "- unknown: the share of unknown tokens; byte fallback: the share of tokens that hold only part of a "
        "character's bytes;",
        "- char coverage: the share of the distinct characters that the vocabulary holds as a token of their own;",
        "- parity: tokens of the language's side of the translation pairs over tokens of the pivot's side.",
        "",
        *_uncovered(analysis.figures),
    ]
    if extended:
        lines += ["", *_extension(analysis)]
    return "\n".join(lines) + "\n"


def _bars(axis, labels: Sequence[str], series: list[tuple[str, list[float]]], floor: float = 0.0) -> None:
    """Grouped bars, with room above the highest bar (or the floor) for the legend."""
    width = 0.8 / len(series)
    highest = floor
    for index, (name, values) in enumerate(series):
        heights = [0.0 if math.isnan(value) else value for value in values]
        positions = [position + (index - (len(series) - 1) / 2) * width for position in range(len(labels))]
        axis.bar(positions, heights, width, label=name)
        highest = max([highest, *heights])
    axis.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    axis.set_ylim(0, 1.4 * highest if highest > 0 else 1.0)


def plot_fertility(analysis: TokenizerAnalysis, path: str | Path) -> None:
    """Fertility per language and fertility ratio per target language against the rule of thumb's bands."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figures = analysis.figures
    langs = sorted(figures)
    targets = [lang for lang in langs if figures[lang].pivot is not None]
    before = analysis.before

    def series(names: list[str], pick) -> list[tuple[str, list[float]]]:
        after = [("after extension" if before is not None else "base tokenizer", [pick(figures[lang]) for lang in names])]
        return ([("before extension", [pick(before[lang]) for lang in names])] if before is not None else []) + after

    figure = Figure(figsize=(9, 3.6), dpi=100)
    left, right = figure.subplots(1, 2)
    _bars(left, langs, series(langs, lambda item: item.fertility))
    left.set_title("fertility (tokens per word)")
    _bars(right, targets, series(targets, lambda item: math.nan if item.fertility_ratio is None else item.fertility_ratio),
          floor=ACCEPTABLE_UP_TO)
    right.axhline(FINE_BELOW, color="tab:orange", linestyle="--", linewidth=1, label=f"{FINE_BELOW:g}x: slower")
    right.axhline(ACCEPTABLE_UP_TO, color="tab:red", linestyle="--", linewidth=1, label=f"{ACCEPTABLE_UP_TO:g}x: extend")
    right.set_title("fertility ratio against the pivot")
    for axis in (left, right):
        axis.legend(fontsize="small")
    figure.tight_layout()
    # no Software entry (it names the matplotlib version), so the image depends on the figures alone
    figure.savefig(ensure_parent(path), format="png", metadata={"Software": None})


def write_report(analysis: TokenizerAnalysis, base_dir: str, report_path: str | Path, plot_path: str | Path) -> None:
    plot_fertility(analysis, plot_path)
    ensure_parent(report_path).write_text(render_markdown(analysis, base_dir, Path(plot_path).name), encoding="utf-8")
