"""The call centre's public data sets, built offline and the same every time, each saved with `datasets`'
save_to_disk under data/raw/hf/ in the shape of a public Hugging Face data set (the same columns and types):

- common-voice-id: 12 Indonesian sentences of call-centre speech in Common Voice's shape (client_id, path,
  audio as 48 kHz mono MP3, sentence, up_votes, ..., locale), spoken by espeak-ng's Indonesian voice: one
  voice, so one speaker. Ten are clean; two have line hiss mixed in (about 20 dB SNR), which speech
  recognition copes with and a synthetic voice must not learn.
- massive-id: callers' requests in MASSIVE's shape (locale, partition, scenario, intent as a ClassLabel, utt),
  five intents of an internet provider's customers, 30 each.
- smsa: callers' comments after a call in IndoNLU SmSA's shape (text, label as a ClassLabel: positive, neutral,
  negative), 30 each, as a DatasetDict with its train split.
- dialect-id: a language-identification set in the shape of papluca/language-identification (labels, text):
  Banyumasan words and Indonesian words, 40 each, both taken from the banyumasan-corpus package (0.1.0, MIT),
  which the project installs and nobody on it wrote.
- ngapak-indonesia: 400 Banyumasan-Indonesian pairs (ngapak, indonesia) of the same package, for translation;
  no entry is in both this set and the dialect set.

The intents and comments are composed from the phrase lists below; a composed sentence too close to one already
kept (character 4-gram Jaccard similarity 0.6 or more) is passed over, so dedup keeps every row. Whisper would
need a download, so a tiny Whisper is built from its config (media.asr.model points at it): its words are noise,
and the speech manifests carry the data set's own sentences.

    python examples/call-centre/build_data.py DIR     # writes DIR/data/raw/hf/ and DIR/models/tiny-whisper/
"""

from __future__ import annotations

import hashlib
import io
import random
import sys
import tempfile
from itertools import product
from pathlib import Path

RAW = Path("data/raw/hf")
WHISPER = Path("models/tiny-whisper")  # git-ignored, like every model folder
SEED = 17
SPEECH, INTENTS, SENTIMENT, DIALECT, PARALLEL = (RAW / name for name in (
    "common-voice-id", "massive-id", "smsa", "dialect-id", "ngapak-indonesia"))
PER_INTENT, PER_SENTIMENT, PER_DIALECT, PAIRS = 30, 30, 40, 400
MAX_SIMILARITY = 0.6  # character 4-gram Jaccard; the dedup stage removes near copies at 0.85
NOISE_RMS = 0.004  # line hiss on the noisy clips, against speech of about 0.09 RMS: an SNR near 20 dB

# What the voice says (a call centre's prompts and callers' sentences), and which clips have line hiss.
SPEECH_SENTENCES = [
    "Selamat pagi, terima kasih telah menghubungi Serayu Net.",
    "Mohon tunggu sebentar, panggilan Anda akan segera kami sambungkan.",
    "Untuk informasi tagihan, silakan tekan satu.",
    "Untuk melaporkan gangguan internet, silakan tekan dua.",
    "Teknisi kami akan datang ke rumah Anda besok pagi.",
    "Pembayaran Anda sudah kami terima, terima kasih.",
    "Paket internet Anda akan berganti mulai bulan depan.",
    "Mohon maaf atas gangguan yang Anda alami hari ini.",
    "Apakah masih ada yang bisa kami bantu?",
    "Selamat sore, dengan layanan pelanggan Serayu Net.",
    "Sinyal di rumah saya putus sejak kemarin sore.",
    "Saya ingin berhenti berlangganan mulai bulan ini.",
]
NOISY = frozenset({10, 11})  # indexes of SPEECH_SENTENCES recorded over a hissing line

# --- callers' requests: MASSIVE's shape, an internet provider's intents ---------------------------------------
OPENINGS = ["", "Halo, ", "Selamat pagi, ", "Selamat siang, ", "Selamat sore, ", "Permisi kak, ", "Mbak, ", "Mas, ",
            "Maaf mengganggu, ", "Halo admin, "]
CLOSINGS = ["", " ya", ", tolong dicek", ", terima kasih", ", mohon bantuannya", ", bisa dibantu?"]
MONTHS = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober"]
PLACES = ["Sokaraja", "Ajibarang", "Purwokerto", "Banyumas", "Wangon", "Cilongok", "Kembaran", "Baturraden"]
INTENT_FRAMES = {
    "billing_inquiry": [
        "tagihan saya bulan {month} kok naik", "berapa tagihan internet saya bulan {month}",
        "saya mau tanya rincian tagihan bulan {month}", "kenapa tagihan bulan ini lebih mahal dari bulan {month}",
        "apakah tagihan bulan {month} sudah lunas", "saya sudah bayar tapi tagihannya masih muncul",
        "tolong kirim ulang tagihan ke email saya", "denda keterlambatan di tagihan saya berapa",
        "jatuh tempo tagihan saya tanggal berapa", "ada biaya tambahan yang tidak saya kenal di tagihan",
        "bisa bayar tagihan lewat minimarket", "tagihan saya dobel untuk bulan {month}",
    ],
    "outage_report": [
        "internet di rumah saya mati sejak pagi", "wifi di {place} putus terus dari kemarin",
        "lampu modem saya merah berkedip", "koneksi lemot sekali sejak hujan semalam",
        "sinyal internet hilang di daerah {place}", "modem menyala tapi tidak bisa browsing",
        "jaringan di {place} sedang gangguan atau tidak", "kabel fiber di depan rumah putus kena truk",
        "video call selalu terputus sejak minggu lalu", "internet mati total, tolong kirim teknisi",
        "kecepatan turun jauh di bawah paket saya", "lampu LOS di modem menyala sejak subuh",
    ],
    "plan_change": [
        "saya mau naik ke paket yang lebih cepat", "bisa turun paket mulai bulan {month}",
        "saya ingin ganti ke paket tanpa televisi", "apa ada paket khusus untuk pelajar",
        "tolong ubah paket saya jadi 50 Mbps", "berapa harga paket keluarga yang baru",
        "paket saya terlalu mahal, ada yang lebih murah", "kalau pindah paket ada biaya administrasinya",
        "saya mau tambah saluran olahraga ke paket saya", "ganti paket bisa langsung aktif hari ini",
        "paket promo bulan {month} masih berlaku", "tolong jelaskan beda paket hemat dan paket kencang",
    ],
    "new_installation": [
        "saya mau pasang internet baru di {place}", "berapa biaya pemasangan baru untuk rumah",
        "apakah jaringan Serayu Net sudah sampai {place}", "kapan teknisi bisa datang untuk pasang baru",
        "saya baru pindah rumah dan mau daftar langganan", "syarat pasang baru apa saja",
        "bisa pasang wifi untuk warung saya di {place}", "pendaftaran pelanggan baru lewat mana",
        "saya ingin memasang internet di kantor desa", "ada promo gratis pemasangan bulan {month}",
        "berapa lama proses pemasangan sampai internet aktif", "tolong jadwalkan survei lokasi ke {place}",
    ],
    "cancel_subscription": [
        "saya mau berhenti berlangganan", "tolong putus langganan internet saya bulan {month}",
        "bagaimana cara menutup akun pelanggan", "saya pindah ke luar kota jadi mau berhenti",
        "modem harus dikembalikan kalau berhenti langganan", "ada denda kalau berhenti sebelum kontrak habis",
        "saya ingin membatalkan pemasangan yang kemarin", "tolong hentikan tagihan otomatis saya",
        "langganan atas nama ibu saya mau ditutup", "saya sudah tidak pakai, mohon diputus saja",
        "proses berhenti langganan berapa hari", "saya kecewa dan mau berhenti mulai bulan {month}",
    ],
}
SCENARIOS = {"billing_inquiry": "billing", "outage_report": "technical", "plan_change": "sales",
             "new_installation": "sales", "cancel_subscription": "retention"}

# --- callers' comments after a call: SmSA's shape -------------------------------------------------------------
COMMENT_OPENINGS = ["", "Jujur, ", "Menurut saya ", "Pokoknya ", "Sejauh ini ", "Terus terang, "]
COMMENT_FRAMES = {
    "positive": [
        "petugasnya ramah dan sabar menjelaskan", "gangguan di rumah saya langsung beres hari itu juga",
        "teknisinya datang tepat waktu dan rapi kerjanya", "pelayanan telepon cepat, tidak menunggu lama",
        "internet sekarang lancar untuk kerja dari rumah", "saya puas dengan bantuan mbak {name}",
        "masalah tagihan selesai dalam satu kali telepon", "admin {name} sangat membantu, terima kasih banyak",
        "paket barunya kencang dan harganya pas", "prosesnya mudah dan semua dijelaskan dengan jelas",
        "respon di WhatsApp cepat sekali", "sudah tiga tahun langganan dan jarang ada masalah",
    ],
    "neutral": [
        "saya hanya menanyakan jadwal teknisi", "petugas mencatat laporan saya dan memberi nomor tiket",
        "saya menelepon untuk mengganti alamat email", "informasi paket sudah saya terima lewat pesan",
        "tagihan bulan {month} sudah saya bayar di kantor", "saya diminta menunggu konfirmasi besok",
        "panggilan saya dipindahkan ke bagian teknis", "petugas {name} membacakan ulang data saya",
        "saya menanyakan cara mengganti kata sandi wifi", "laporan sudah diteruskan ke kantor cabang",
        "teknisi dijadwalkan datang hari {day}", "saya mendapat nomor antrean untuk pemasangan",
    ],
    "negative": [
        "sudah tiga kali lapor tapi internet tetap mati", "petugasnya ketus dan memotong pembicaraan",
        "saya menunggu di telepon hampir satu jam", "teknisi tidak datang padahal sudah dijanjikan",
        "tagihan naik terus tanpa pemberitahuan", "internet lemot tiap malam, sangat mengecewakan",
        "keluhan saya tidak pernah ditanggapi", "saya dioper ke sana kemari tanpa solusi",
        "modem rusak dan penggantiannya lama sekali", "janji perbaikan hari {day} tidak ditepati",
        "pelayanan makin buruk sejak bulan {month}", "saya kecewa, uang tetap ditarik padahal jaringan putus",
    ],
}
COMMENT_CLOSINGS = ["", ".", "!", ", itu saja", " kali ini", " minggu ini"]
NAMES = ["Sari", "Dewi", "Rina", "Ayu", "Wulan", "Tika", "Budi", "Agus"]
DAYS = ["Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu"]


def shingles(text: str, width: int = 4) -> set[str]:
    squeezed = " ".join(text.casefold().split())
    return {squeezed[i:i + width] for i in range(max(len(squeezed) - width + 1, 1))}


class Distinct:
    """Keeps sentences that are not too like any kept before (across every set: dedup compares them all)."""

    def __init__(self, max_similarity: float = MAX_SIMILARITY):
        self.kept: list[set[str]] = []
        self.max_similarity = max_similarity

    def take(self, text: str) -> bool:
        grams = shingles(text)
        if any(len(grams & other) / len(grams | other) >= self.max_similarity for other in self.kept):
            return False
        self.kept.append(grams)
        return True


def fill(frame: str, rng: random.Random) -> str:
    return frame.format(month=rng.choice(MONTHS), place=rng.choice(PLACES), name=rng.choice(NAMES),
                        day=rng.choice(DAYS))


def composed(frames: dict[str, list[str]], openings: list[str], closings: list[str], per_label: int,
             distinct: Distinct, rng: random.Random, end: str = "") -> list[tuple[str, str]]:
    """(text, label) rows, per_label of each label, composed from opening x frame x closing, drawn in a seeded order."""
    rows = []
    for label, label_frames in frames.items():
        candidates = list(product(openings, label_frames, closings))
        rng.shuffle(candidates)
        taken = 0
        for opening, frame, closing in candidates:
            body = fill(frame, rng)
            text = f"{opening}{body}{closing}".strip()
            text = text[0].upper() + text[1:]
            if end and not text.endswith((".", "!", "?")):
                text += end
            if distinct.take(text):
                rows.append((text, label))
                taken += 1
                if taken == per_label:
                    break
        if taken < per_label:
            raise SystemExit(f"build_data: only {taken} distinct sentences for {label!r}; add phrases")
    return rows


def package_entries() -> list[tuple[str, str]]:
    """The banyumasan-corpus package's entries whose headword differs from its gloss, each headword and each gloss
    once, in a seeded order."""
    from banyumasan_corpus import load_entries

    seen_words: set[str] = set()
    entries = []
    for entry in load_entries():
        word, gloss = entry.ngapak.strip(), entry.indonesia.strip()
        if word.casefold() == gloss.casefold() or word.casefold() in seen_words or gloss.casefold() in seen_words:
            continue
        seen_words.update((word.casefold(), gloss.casefold()))
        entries.append((word, gloss))
    random.Random(SEED).shuffle(entries)
    return entries


def mp3_bytes(samples, rate: int, out_rate: int = 48_000) -> bytes:
    """Float samples as a mono MP3 at out_rate (Common Voice's format), encoded with PyAV's LAME."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=out_rate, layout="mono")
        stream.bit_rate = 64_000
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=out_rate)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        for part in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(part):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def speech_rows() -> list[dict]:
    """Common Voice's columns, one row per sentence; the audio as {bytes, path} so the MP3 lives in the data set."""
    import numpy as np
    import soundfile

    from langfoundry.media.audio import synthesize_speech

    client = hashlib.sha256(b"espeak-ng id").hexdigest()  # Common Voice's client_id: one hashed contributor
    noise = np.random.default_rng(SEED)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, sentence in enumerate(SPEECH_SENTENCES):
            wav = synthesize_speech(sentence, Path(scratch) / f"{index}.wav", voice="id", words_per_minute=150)
            samples, rate = soundfile.read(wav, dtype="float32")
            if index in NOISY:
                samples = samples + noise.normal(0.0, NOISE_RMS, samples.shape).astype("float32")
            name = f"common_voice_id_{40_000_000 + index}.mp3"
            rows.append({"client_id": client, "path": name, "audio": {"bytes": mp3_bytes(samples, rate), "path": name},
                         "sentence": sentence, "up_votes": 2, "down_votes": 0, "age": "", "gender": "", "accent": "",
                         "locale": "id", "segment": "", "variant": ""})
    return rows


def save(rows: list[dict], folder: Path, features, split: str | None = None) -> Path:
    """rows saved with save_to_disk (a DatasetDict of one split when split is given). An Audio column is stored
    as a plain {bytes, path} struct first, then cast: datasets encodes Audio values only with torchcodec installed,
    and the bytes are already encoded."""
    import datasets

    datasets.disable_progress_bars()
    audio = {name: feature for name, feature in features.items() if isinstance(feature, datasets.Audio)}
    plain = datasets.Features({name: {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
                               if name in audio else feature for name, feature in features.items()})
    table = datasets.Dataset.from_list(rows, features=plain)
    for name, feature in audio.items():
        table = table.cast_column(name, feature)
    saved = datasets.DatasetDict({split: table}) if split else table
    saved.save_to_disk(str(folder))
    return folder


def build(root: Path) -> dict[str, list[Path]]:
    """Every input under root (a walkthrough workspace); returns what was written, by kind."""
    from datasets import Audio, ClassLabel, Features, Value

    from langfoundry.media.asr import build_tiny_whisper

    root = Path(root)
    rng = random.Random(SEED)
    distinct = Distinct()
    built: dict[str, list[Path]] = {}

    speech_features = Features({"client_id": Value("string"), "path": Value("string"), "audio": Audio(sampling_rate=48_000),
                                "sentence": Value("string"), "up_votes": Value("int64"), "down_votes": Value("int64"),
                                "age": Value("string"), "gender": Value("string"), "accent": Value("string"),
                                "locale": Value("string"), "segment": Value("string"), "variant": Value("string")})
    built["speech"] = [save(speech_rows(), root / SPEECH, speech_features, split="train")]

    intents = composed(INTENT_FRAMES, OPENINGS, CLOSINGS, PER_INTENT, distinct, rng)
    intent_names = sorted(INTENT_FRAMES)
    scenario_names = sorted(set(SCENARIOS.values()))
    massive = Features({"id": Value("string"), "locale": Value("string"), "partition": Value("string"),
                        "scenario": ClassLabel(names=scenario_names), "intent": ClassLabel(names=intent_names),
                        "utt": Value("string")})
    built["intent"] = [save([{"id": str(number), "locale": "id-ID", "partition": "train",
                              "scenario": scenario_names.index(SCENARIOS[label]), "intent": intent_names.index(label),
                              "utt": text} for number, (text, label) in enumerate(intents, start=1)],
                            root / INTENTS, massive)]

    comments = composed(COMMENT_FRAMES, COMMENT_OPENINGS, COMMENT_CLOSINGS, PER_SENTIMENT, distinct, rng, end=".")
    sentiment_names = ["positive", "neutral", "negative"]  # SmSA's label order
    smsa = Features({"text": Value("string"), "label": ClassLabel(names=sentiment_names)})
    built["sentiment"] = [save([{"text": text, "label": sentiment_names.index(label)} for text, label in comments],
                               root / SENTIMENT, smsa, split="train")]

    entries = package_entries()
    dialect, pairs = entries[:PER_DIALECT], entries[PER_DIALECT:PER_DIALECT + PAIRS]
    rows = [{"labels": "banyumasan", "text": word, "lang": "jv-x-banyumas"} for word, _ in dialect]
    rows += [{"labels": "indonesian", "text": gloss, "lang": "id"} for _, gloss in dialect]
    rows.sort(key=lambda row: row["text"].casefold())
    language_id = Features({"labels": Value("string"), "text": Value("string"), "lang": Value("string")})
    built["dialect"] = [save(rows, root / DIALECT, language_id)]

    parallel = Features({"ngapak": Value("string"), "indonesia": Value("string")})
    built["parallel"] = [save([{"ngapak": word, "indonesia": gloss} for word, gloss in pairs], root / PARALLEL, parallel)]

    built["asr model"] = [build_tiny_whisper(root / WHISPER, seed=3, languages=("id", "jw"))]
    return built


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    for kind, files in build(target).items():
        print(f"{kind}: {', '.join(str(path.relative_to(target)) for path in files)}")
