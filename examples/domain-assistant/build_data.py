"""The walkthrough's input data, built offline and deterministically (nothing large goes into git).

- data/raw/koperasi/qa.json: a few hundred customer-service questions and answers of a savings-and-loan
  cooperative in Purwokerto, in Indonesian, as instruction/input/output records (Alpaca-style JSON), made
  from the cooperative's product sheet and branch list below.
- data/raw/umum/kamus.csv: general-language data, everyday Banyumasan words with their Indonesian glosses,
  taken from the banyumasan-corpus package the project already depends on (every 16th of its 2,000 entries).

    python examples/domain-assistant/build_data.py WORK_DIR
"""

from __future__ import annotations

import csv
import importlib.resources
import json
import sys
from pathlib import Path

COOP = "Koperasi Sejahtera Banyumas"

# product: (what it is, minimum, yield or rate, requirement, term)
PRODUCTS = {
    "Simpanan Pokok": ("simpanan yang dibayar sekali saat menjadi anggota", "Rp100.000", "tidak berbunga",
                       "KTP dan formulir keanggotaan", "selama menjadi anggota"),
    "Simpanan Wajib": ("simpanan bulanan setiap anggota", "Rp20.000 per bulan", "ikut dibagi dalam SHU tahunan",
                       "nomor anggota aktif", "setiap bulan"),
    "Simpanan Sukarela": ("tabungan yang bisa disetor dan ditarik kapan saja", "Rp10.000", "jasa 2,5% per tahun",
                          "KTP dan buku anggota", "tanpa jangka waktu"),
    "Tabungan Pendidikan": ("tabungan untuk biaya sekolah anak", "Rp50.000 per bulan", "jasa 3,5% per tahun",
                            "KTP orang tua dan kartu keluarga", "minimal 12 bulan"),
    "Tabungan Hari Raya": ("tabungan yang dicairkan menjelang Lebaran", "Rp25.000 per bulan", "jasa 3% per tahun",
                           "KTP dan buku anggota", "11 bulan"),
    "Deposito Berjangka": ("simpanan berjangka dengan jasa tetap", "Rp1.000.000", "jasa 5% per tahun",
                           "KTP, NPWP untuk nilai di atas Rp50 juta", "3, 6 atau 12 bulan"),
    "Pinjaman Usaha Mikro": ("pinjaman modal untuk warung dan usaha kecil", "Rp2.000.000",
                             "jasa 1% per bulan menurun", "KTP, kartu keluarga dan foto tempat usaha",
                             "sampai 24 bulan"),
    "Pinjaman Pertanian": ("pinjaman untuk bibit, pupuk dan sewa traktor", "Rp1.500.000",
                           "jasa 0,9% per bulan, dibayar setelah panen", "KTP dan surat keterangan petani dari desa",
                           "satu musim tanam"),
    "Pinjaman Darurat": ("pinjaman cepat untuk keperluan mendesak", "Rp500.000", "jasa 1,2% per bulan",
                         "buku anggota dan slip gaji atau surat keterangan usaha", "sampai 6 bulan"),
    "Kredit Sepeda Motor": ("kredit untuk membeli sepeda motor baru atau bekas", "uang muka 15%",
                            "jasa 1,1% per bulan tetap", "KTP, kartu keluarga dan rekening listrik", "12 sampai 36 bulan"),
    "Pembiayaan Renovasi Rumah": ("pinjaman untuk memperbaiki atau menambah ruangan rumah", "Rp5.000.000",
                                  "jasa 0,95% per bulan menurun", "KTP, kartu keluarga dan sertifikat atau girik",
                                  "sampai 60 bulan"),
    "Arisan Koperasi": ("arisan bulanan yang dikelola koperasi", "Rp100.000 per bulan", "tanpa jasa",
                        "buku anggota", "sesuai jumlah peserta"),
}

QUESTIONS = [  # (instruction template, input or "", answer template)
    ("Apa itu {p}?", "", "{p} adalah {what} di {coop}."),
    ("Berapa setoran atau pinjaman minimal untuk {p}?", "", "Minimal untuk {p} adalah {minimum}."),
    ("Berapa jasa atau bunga {p}?", "", "{p}: {rate}."),
    ("Apa saja syarat untuk mengajukan {p}?", "", "Syarat {p}: {needs}."),
    ("Berapa lama jangka waktu {p}?", "", "Jangka waktu {p}: {term}."),
    ("Bagaimana cara membuka atau mengajukan {p}?", "",
     "Datang ke kantor cabang terdekat dengan membawa {needs}, lalu isi formulir {p} di meja layanan."),
    ("Jelaskan {p} kepada calon anggota.", "Calon anggota belum pernah menabung di koperasi.",
     "{p} adalah {what}. Minimal {minimum}, {rate}, jangka waktu {term}."),
    ("Apakah {p} bisa diurus lewat WhatsApp?", "",
     "Pertanyaan tentang {p} bisa lewat WhatsApp 0812-2600-4411, tetapi tanda tangan tetap di kantor cabang."),
    ("Jawab pertanyaan anggota tentang {p}.", "Anggota bertanya apakah ada biaya administrasi.",
     "Biaya administrasi {p} adalah Rp{fee} dan dibayar sekali di awal."),
    ("Bandingkan {p} dengan produk lain yang mirip.", "Anggota ingin memilih produk yang paling cocok.",
     "{p} cocok bila Anda butuh {what}; syaratnya {needs}."),
    ("Saya ingin berhenti dari {p}, bagaimana caranya?", "",
     "Untuk menutup {p}, isi formulir penutupan di kantor cabang dan bawa buku anggota; dana cair dalam 3 hari kerja."),
    ("Apakah {p} dijamin?", "",
     "Dana {p} dicatat atas nama anggota dan diaudit setiap tahun oleh akuntan publik."),
]

BRANCHES = {
    "Purwokerto Kota": ("Jalan Jenderal Soedirman 112", "0281-631200"),
    "Sokaraja": ("Jalan Raya Sokaraja 45", "0281-6441023"),
    "Ajibarang": ("Jalan Pancasan 7", "0281-571144"),
    "Banyumas": ("Jalan Pramuka 21", "0281-796512"),
    "Wangon": ("Jalan Raya Wangon 88", "0281-513377"),
    "Kembaran": ("Jalan Raya Kembaran 3", "0281-638090"),
    "Cilongok": ("Jalan Raya Pernasidi 16", "0281-655218"),
    "Sumbang": ("Jalan Raya Sumbang 30", "0281-6843120"),
}

BRANCH_QUESTIONS = [
    ("Di mana alamat kantor cabang {b}?", "", "Kantor cabang {b} ada di {address}."),
    ("Berapa nomor telepon kantor cabang {b}?", "", "Telepon kantor cabang {b}: {phone}."),
    ("Jam berapa kantor cabang {b} buka?", "",
     "Kantor cabang {b} buka Senin sampai Jumat pukul 08.00 sampai 15.00, Sabtu pukul 08.00 sampai 12.00."),
    ("Apakah di cabang {b} ada layanan setor tunai?", "",
     "Ya, cabang {b} melayani setor tunai, tarik tunai dan pembayaran angsuran."),
    ("Sampaikan petunjuk arah ke cabang {b}.", "Penelepon sedang berada di alun-alun.",
     "Dari alun-alun, ikuti papan arah ke {address}; kantor cabang {b} ada di sisi kiri jalan."),
]

MEMBERS = [("petani", "surat keterangan petani"), ("pedagang pasar", "foto lapak"), ("guru honorer", "slip honor"),
           ("pengemudi ojek", "SIM dan STNK"), ("perajin batik", "foto hasil kerja"), ("pensiunan", "kartu pensiun")]

LOANS = ["Pinjaman Usaha Mikro", "Pinjaman Pertanian", "Pinjaman Darurat", "Kredit Sepeda Motor",
         "Pembiayaan Renovasi Rumah"]


def fee(product: str) -> int:
    return 5000 + 2500 * (sum(map(ord, product)) % 5)


def domain_records() -> list[dict[str, str]]:
    records = []
    for product, (what, minimum, rate, needs, term) in PRODUCTS.items():
        values = {"p": product, "what": what, "minimum": minimum, "rate": rate, "needs": needs, "term": term,
                  "coop": COOP, "fee": f"{fee(product):,}".replace(",", ".")}
        for instruction, given, answer in QUESTIONS:
            records.append({"instruction": instruction.format(**values), "input": given.format(**values),
                            "output": answer.format(**values)})
    for branch, (address, phone) in BRANCHES.items():
        for instruction, given, answer in BRANCH_QUESTIONS:
            values = {"b": branch, "address": address, "phone": phone}
            records.append({"instruction": instruction.format(**values), "input": given,
                            "output": answer.format(**values)})
    for loan in LOANS:
        needs = PRODUCTS[loan][3]
        for member, extra in MEMBERS:
            records.append({"instruction": f"Dokumen apa yang harus dibawa untuk {loan}?",
                            "input": f"Pemohon bekerja sebagai {member}.",
                            "output": f"Untuk {loan}, seorang {member} membawa {needs}, ditambah {extra}."})
    return records


def general_entries(every: int = 16) -> list[dict[str, str]]:
    corpus = importlib.resources.files("banyumasan_corpus") / "data" / "corpus.json"
    entries = json.loads(corpus.read_text(encoding="utf-8"))["entries"]
    return [{"ngapak": entry["ngapak"], "indonesia": entry["indonesia"]} for entry in entries[::every]]


def build(root: Path) -> dict[str, int]:
    qa = root / "data/raw/koperasi/qa.json"
    qa.parent.mkdir(parents=True, exist_ok=True)
    records = domain_records()
    qa.write_text(json.dumps(records, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    kamus = root / "data/raw/umum/kamus.csv"
    kamus.parent.mkdir(parents=True, exist_ok=True)
    entries = general_entries()
    with kamus.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["ngapak", "indonesia"])
        writer.writeheader()
        writer.writerows(entries)
    return {"domain_qa": len(records), "general_entries": len(entries)}


if __name__ == "__main__":
    counts = build(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
    print(f"build_data: {counts['domain_qa']} domain questions and answers (data/raw/koperasi/qa.json), "
          f"{counts['general_entries']} general Banyumasan-Indonesian entries (data/raw/umum/kamus.csv)")
