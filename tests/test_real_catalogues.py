"""Real gettext catalogues, with plural entries, through ingest, clean, dedup, split and format.

The catalogues are Django's Indonesian and Malayalam translations as the Django wheel ships them (a
test-only dependency pinned in the dev extras); nobody on this project wrote them. They are found in
the installed package at test time and copied into the test's own project folder, declared as `po`
sources, and run on the default params.yaml with the quality gates on.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import polib
import pyarrow.parquet as pq
import pytest
import yaml

from langfoundry.core.config import Params, load_params

REPO = Path(__file__).resolve().parents[1]
LANGS = ("id", "ml")  # Indonesian has one plural form (nplurals=1), Malayalam two


def stage_main(name: str) -> Callable:
    """stages/<name>.py's main, imported as DVC would run it."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def catalogue(lang: str) -> Path:
    """Django's own catalogue for a language, in the installed package (the dev extras pin django)."""
    spec = importlib.util.find_spec("django")
    assert spec is not None, "django is missing: install the dev extras (pip install -e '.[dev]' -c constraints.txt)"
    path = importlib.resources.files("django") / "conf" / "locale" / lang / "LC_MESSAGES" / "django.po"
    assert path.is_file(), f"{path}: the django wheel no longer ships this .po catalogue"
    return Path(str(path))


def plural_forms(path: Path) -> list[int]:
    """The line of each translated plural form polib finds, one item per form the reader keeps."""
    entries = polib.pofile(str(path))
    return sorted(entry.linenum for entry in entries if entry.msgid_plural and not entry.obsolete and not entry.fuzzy
                  for text in entry.msgstr_plural.values() if text)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Params, dict[str, list[int]]]:
    """The five data stages on the two catalogues, gates on; the params and each source's plural forms."""
    folder = tmp_path_factory.mktemp("real-catalogues")
    shutil.copytree(REPO / "expectations", folder / "expectations")
    (folder / "data" / "inventory").mkdir(parents=True)
    shutil.copy(REPO / "data" / "inventory" / "languages.csv", folder / "data" / "inventory")
    sources, forms = [], {}
    for lang in LANGS:
        name = f"data/raw/django/{lang}/django.po"
        (folder / name).parent.mkdir(parents=True)
        shutil.copy(catalogue(lang), folder / name)
        forms[f"django-{lang}"] = plural_forms(folder / name)
        sources.append({"id": f"django-{lang}", "kind": "parallel", "lang": lang, "pivot_lang": "en", "path": name,
                        "format": "po", "license": "BSD-3-Clause", "notes": "Django's own translation catalogue"})
    (folder / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    params = load_params(REPO / "params.yaml")
    params = params.model_copy(update={"paths": params.paths.under(folder)})
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # ingest reads source paths, and the gates write reports, from the working directory
        for stage in ("ingest", "clean", "split", "format"):
            if stage == "split":
                stage_main("dedup")(params, params.paths)  # dedup has no gate
            stage_main(stage)(params, params.paths, gate=True)
    return params, forms


def test_the_catalogues_have_plural_entries():
    for lang in LANGS:
        assert plural_forms(catalogue(lang)), lang
    assert "nplurals=2" in polib.pofile(str(catalogue("ml"))).metadata["Plural-Forms"]


def test_every_plural_form_is_a_record_after_ingest(run):
    params, forms = run
    records = pq.read_table(params.paths.ingested, columns=["source", "origin"]).to_pylist()
    for source, lines in forms.items():
        plural = [row["origin"] for row in records if row["source"] == source and row["origin"].endswith("]")]
        assert sorted(int(origin.split(":")[-2]) for origin in plural) == lines, source
    ml_forms = {row["origin"].rsplit(":", 1)[1] for row in records if row["source"] == "django-ml" and "msgstr" in row["origin"]}
    assert ml_forms == {"msgstr[0]", "msgstr[1]"}


def test_every_row_is_accounted_for(run):
    params, _ = run
    paths = params.paths
    ingest = json.loads(paths.metric("ingest").read_text(encoding="utf-8"))
    assert ingest["rows_read"] == ingest["kept"] + ingest["rejected"] > 0
    table = {name: pq.read_table(getattr(paths, name), columns=["id", "origin"]) for name in
             ("ingested", "ingest_rejects", "clean", "clean_rejects", "dedup", "dedup_rejects", "split")}
    assert table["ingested"].num_rows + table["ingest_rejects"].num_rows == ingest["rows_read"]

    def rows(name: str) -> list[tuple]:
        return sorted(zip(table[name].column("id").to_pylist(), table[name].column("origin").to_pylist()))

    assert sorted(rows("clean") + rows("clean_rejects")) == rows("ingested")
    assert sorted(rows("dedup") + rows("dedup_rejects")) == rows("clean")
    assert rows("split") == rows("dedup")
    with_examples = {json.loads(line)["record_id"] for split in ("train", "val", "test")
                     for line in paths.split_file(split).read_text(encoding="utf-8").splitlines()}
    assert with_examples == {record_id for record_id, _ in rows("split")}  # parallel records all translate


def test_examples_from_plural_forms_reach_processed(run):
    params, _ = run
    split = pq.read_table(params.paths.split, columns=["id", "origin", "lang"]).to_pylist()
    plural_ids = {row["id"] for row in split if row["origin"].endswith(":msgstr[1]")}
    examples = {split: [json.loads(line) for line in params.paths.split_file(split).read_text(encoding="utf-8").splitlines()]
                for split in ("train", "val", "test")}
    assert {example["lang"] for example in examples["train"]} == {"id", "ml"}
    reached = {example["record_id"] for split in examples.values() for example in split}
    assert plural_ids and plural_ids <= reached  # every second plural form kept through split gives examples
