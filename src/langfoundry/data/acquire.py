"""Acquire: bring sources that live outside the repository into data/raw/acquired/<source id>/.

Four kinds of acquire spec (sources.yaml): a resource shipped in a pinned PyPI distribution, a
Hugging Face dataset (a hub id at a pinned revision, or a local directory), a URL with its sha256, or
the serving database's corrections (data/feedback.py).
Each directory also gets ACQUIRED.json (the spec and each file's sha256, no timestamps), so reruns
are byte-identical, and the acquired tree holds exactly the sources sources.yaml names.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from langfoundry.core.config import (
    ACQUIRED_DIR,
    HuggingFaceSpec,
    PackageSpec,
    RenderSpec,
    Source,
    UrlSpec,
    VideosSpec,
    acquired_dir,
)
from langfoundry.core.errors import UserError
from langfoundry.data.feedback import snapshot_feedback
from langfoundry.data.readers import PROVENANCE_FILE
from langfoundry.data.readers.rows import one_line

log = logging.getLogger(__name__)

HF_DATA_FILE = "data.parquet"
DOWNLOAD_CHUNK = 1 << 20
DOWNLOAD_TIMEOUT_S = 60


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(DOWNLOAD_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _where(source: Source) -> str:
    return f"sources.yaml: source {source.id!r}"


# --- package -------------------------------------------------------------------------------------


def fetch_package(source: Source, spec: PackageSpec, dest: Path) -> None:
    """Copy a data file shipped inside an installed distribution, after checking its pinned version."""
    from importlib import metadata

    install = f"pip install '{spec.name}=={spec.version}'"
    try:
        distribution = metadata.distribution(spec.name)
    except metadata.PackageNotFoundError:
        raise UserError(f"{_where(source)} needs the package {spec.name}=={spec.version}, which is not "
                        f"installed; run: {install}") from None
    if distribution.version != spec.version:
        raise UserError(f"{_where(source)} pins {spec.name}=={spec.version} but {distribution.version} is "
                        f"installed; run: {install} (or change acquire.package.version in sources.yaml)")
    shipped = {file.as_posix(): file for file in distribution.files or []}
    if spec.resource not in shipped:
        data_files = [name for name in shipped if not name.endswith((".py", ".pyc")) and ".dist-info/" not in name]
        hint = difflib.get_close_matches(spec.resource, data_files, n=1)
        maybe = f"; did you mean {hint[0]!r}?" if hint else ""
        raise UserError(f"{_where(source)}: {spec.name} {spec.version} ships no file {spec.resource!r}{maybe} "
                        f"(data files: {', '.join(sorted(data_files)[:8]) or 'none'})")
    located = Path(str(distribution.locate_file(shipped[spec.resource])))
    shutil.copyfile(located, dest / PurePosixPath(spec.resource).name)


# --- Hugging Face --------------------------------------------------------------------------------


def _is_saved_dataset(directory: Path) -> bool:
    """A directory written by Dataset.save_to_disk or DatasetDict.save_to_disk."""
    return (directory / "dataset_dict.json").is_file() or (directory / "state.json").is_file()


def fetch_huggingface(source: Source, spec: HuggingFaceSpec, dest: Path, root: Path,
                      cache_dir: str | None = None) -> None:
    """Load one split with `datasets` and write its rows to data.parquet."""
    import datasets  # heavy: only the acquire of a Hugging Face source pays for it

    datasets.disable_progress_bars()  # bars of its internal steps (Map, Creating parquet) would fill the stage's log
    local = root / spec.dataset
    try:
        if local.is_dir() and _is_saved_dataset(local):
            loaded = datasets.load_from_disk(str(local))
            if isinstance(loaded, datasets.DatasetDict):
                if spec.split not in loaded:
                    raise UserError(f"{_where(source)}: {spec.dataset} has no split {spec.split!r} (splits: "
                                    f"{', '.join(loaded)}); set acquire.huggingface.split")
                loaded = loaded[spec.split]
        elif local.is_dir():
            loaded = datasets.load_dataset(str(local), name=spec.config, split=spec.split, cache_dir=cache_dir)
        elif spec.dataset.startswith((".", "/", "~")) or spec.dataset.count("/") > 1:
            raise UserError(f"{_where(source)}: {spec.dataset} is not a directory; give a hub id such as "
                            f"org/name or an existing local dataset directory")
        else:
            if not spec.revision:
                raise UserError(f"{_where(source)}: the hub dataset {spec.dataset} needs a pinned revision (a commit "
                                f"sha or tag) in acquire.huggingface.revision, so every run reads the same data")
            loaded = datasets.load_dataset(spec.dataset, name=spec.config, revision=spec.revision, split=spec.split,
                                           cache_dir=cache_dir)
    except (FileNotFoundError, ValueError, ConnectionError) as err:
        raise UserError(f"{_where(source)}: cannot load {spec.dataset} split {spec.split!r} ({one_line(err)})") from None
    with_label_names(loaded, datasets).to_parquet(str(dest / HF_DATA_FILE))


def with_label_names(loaded: Any, datasets: Any) -> Any:
    """ClassLabel columns (an intent or sentiment data set's label) as their names, not their numbers: the
    numbers mean nothing once the data set's features are gone, and the classification sets show names."""
    labels = {column: feature.names for column, feature in loaded.features.items()
              if isinstance(feature, datasets.ClassLabel)}
    if not labels:
        return loaded
    features = loaded.features.copy()
    features.update({column: datasets.Value("string") for column in labels})

    def named(batch: dict[str, list]) -> dict[str, list]:
        return {column: [None if value is None or value < 0 else names[value] for value in batch[column]]
                for column, names in labels.items()}

    return loaded.map(named, batched=True, features=features, load_from_cache_file=False, keep_in_memory=True)


# --- URL -----------------------------------------------------------------------------------------


def _file_name_of(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    name = PurePosixPath(unquote(urlsplit(url).path)).name
    if not name or name.startswith(".") or name == PROVENANCE_FILE:
        return "download" + (name if name.startswith(".") else "")
    return name


def fetch_url(source: Source, spec: UrlSpec, dest: Path) -> None:
    """Download a file, hashing as it streams; a sha256 that differs from the pinned one writes nothing."""
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    if urlsplit(spec.url).scheme not in ("http", "https"):
        raise UserError(f"{_where(source)}: {spec.url} is not an http(s) URL")
    target = dest / _file_name_of(spec.url)
    digest = hashlib.sha256()
    request = urllib.request.Request(spec.url, headers={"User-Agent": "langfoundry-acquire"})
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response, target.open("wb") as out:
            for chunk in iter(lambda: response.read(DOWNLOAD_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
                if received % (64 * DOWNLOAD_CHUNK) < len(chunk):
                    log.info("  %s: %d MiB", source.id, received >> 20)
    except urllib.error.HTTPError as err:
        raise UserError(f"{_where(source)}: {spec.url} answered HTTP {err.code} {one_line(err.reason)}") from None
    except (urllib.error.URLError, OSError) as err:
        raise UserError(f"{_where(source)}: cannot download {spec.url} ({one_line(getattr(err, 'reason', err))})") from None
    if digest.hexdigest() != spec.sha256:
        target.unlink()
        raise UserError(f"{_where(source)}: {spec.url} has sha256 {digest.hexdigest()} but sources.yaml pins "
                        f"{spec.sha256}; nothing was written. If the file changed on purpose, put its new hash in "
                        f"acquire.url.sha256")


# --- all sources ---------------------------------------------------------------------------------


def render_pages(spec: RenderSpec, dest: Path) -> None:
    """The default pipeline's stand-in scan: dictionary lines rendered to PDF pages (media.ocr_check)."""
    from langfoundry.media.ocr_check import render_dictionary_pdf

    render_dictionary_pdf(dest / "pages.pdf", spec.entries, spec.lines_per_page, spec.seed)


def fetch_videos(source: Source, spec: VideosSpec, dest: Path) -> None:
    """Each URL through yt-dlp into dest as <id>.<ext>, with its subtitles in the source's language beside it
    (<id>.<lang>.vtt), which the ocr stage reads with the video."""
    import yt_dlp  # only a videos source pays for it

    options = {"outtmpl": str(dest / "%(id)s.%(ext)s"), "format": spec.format, "quiet": True, "no_warnings": True,
               "noprogress": True, "enable_file_urls": True, "writesubtitles": True,
               "subtitleslangs": [source.lang.split("-")[0]], "subtitlesformat": "vtt/srt/best"}
    with yt_dlp.YoutubeDL(options) as downloader:
        for url in spec.urls:
            try:
                downloader.download([url])
            except yt_dlp.utils.DownloadError as err:
                raise UserError(f"{_where(source)}: cannot fetch {url} ({one_line(err).removeprefix('ERROR: ')}); "
                                f"check the URL and the network, or put the file under data/raw/ and give its path") from None


def provenance(source: Source, directory: Path) -> dict:
    assert source.acquire is not None
    files = sorted(path for path in directory.iterdir() if path.name != PROVENANCE_FILE)
    return {"source": source.id, "acquire": source.acquire.model_dump(mode="json", exclude_none=True),
            "files": {path.name: {"bytes": path.stat().st_size, "sha256": sha256_of(path)} for path in files}}


def _write_provenance(record: dict, directory: Path) -> None:
    text = json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (directory / PROVENANCE_FILE).write_text(text, encoding="utf-8")


def _pinned(source: Source, root: Path) -> bool:
    """Whether the spec names content that cannot change: a package version, a hash, a hub revision.
    A local dataset directory can change under the same spec, so it is always read again."""
    spec = source.acquire
    assert spec is not None
    if spec.huggingface is not None:
        return spec.huggingface.revision is not None and not (root / spec.huggingface.dataset).exists()
    return spec.feedback is None  # a database changes under the same spec


def _unchanged(source: Source, directory: Path) -> bool:
    """True when the directory already holds what the spec asks for, byte for byte (no refetch needed)."""
    recorded = directory / PROVENANCE_FILE
    if not recorded.is_file():
        return False
    try:
        return json.loads(recorded.read_text(encoding="utf-8")) == provenance(source, directory)
    except (ValueError, OSError):
        return False


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def acquire_source(source: Source, root: Path, hf_cache_dir: str | None = None,
                   review_queue: list[dict] | None = None) -> Path:
    """Fetch one source into a staging folder, then swap it in: a failure leaves the old copy untouched.
    A feedback source adds its answers that need a person to review_queue."""
    spec = source.acquire
    assert spec is not None
    final = root / acquired_dir(source.id)
    if _pinned(source, root) and _unchanged(source, final):
        log.info("%s: already acquired, unchanged", source.id)
        return final
    staging = final.with_name(f".{source.id}.partial")
    if staging.exists():
        _remove(staging)
    staging.mkdir(parents=True)
    try:
        if spec.package is not None:
            fetch_package(source, spec.package, staging)
        elif spec.huggingface is not None:
            fetch_huggingface(source, spec.huggingface, staging, root, hf_cache_dir)
        elif spec.url is not None:
            fetch_url(source, spec.url, staging)
        elif spec.render is not None:
            render_pages(spec.render, staging)
        elif spec.videos is not None:
            fetch_videos(source, spec.videos, staging)
        elif spec.feedback is not None:
            queue = snapshot_feedback(source, spec.feedback, staging)
            if review_queue is not None:
                review_queue.extend(queue)
        _write_provenance(provenance(source, staging), staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if final.exists():
        _remove(final)
    staging.rename(final)
    log.info("%s: acquired %s", source.id, ", ".join(sorted(p.name for p in final.iterdir())))
    return final


def acquire_sources(sources: Iterable[Source], root: Path | str = ".", hf_cache_dir: str | None = None,
                    review_queue: list[dict] | None = None) -> list[Path]:
    """Acquire every source with an acquire spec (but planned ones); then remove whatever else is in data/raw/acquired."""
    root = Path(root)
    wanted = [source for source in sources if source.acquire is not None and not source.planned]
    (root / ACQUIRED_DIR).mkdir(parents=True, exist_ok=True)
    acquired = [acquire_source(source, root, hf_cache_dir, review_queue) for source in wanted]
    keep = {source.id for source in wanted}
    for entry in sorted((root / ACQUIRED_DIR).iterdir()):
        if entry.name not in keep:
            log.info("removing %s: no source in sources.yaml acquires it", entry.relative_to(root).as_posix())
            _remove(entry)
    return acquired
