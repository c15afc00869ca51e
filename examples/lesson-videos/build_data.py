"""The community's lesson videos, built offline and the same every time: eleven short recordings of a board
written in N'Ko (Manding), one with SRT subtitles, and the dialogues a teacher typed up from the dialogue lessons.

The board text is everyday Bambara (Manding) written in N'Ko letters by a plain letter-for-letter
transliteration, without tone marks: enough to exercise the script, not a reference for the language. Each
slide is drawn with Debian's Noto Sans N'Ko (fonts-noto-core) and Noto Sans, shown for 5 or 10 seconds, and the
videos are encoded with PyAV at 2 frames per second.

No OCR engine reads N'Ko offline, so the run uses a local stand-in for the hosted vision model (stand_in.py).
It cannot read: it looks each frame up in a table this script writes (stand-in/boards.json: a 48x27 grey
thumbnail of each rendered slide and the text written on it) and answers the text of the nearest slide.

    python examples/lesson-videos/build_data.py DIR     # writes DIR/data/raw/lessons/ and DIR/stand-in/boards.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

RAW = Path("data/raw/lessons")
TABLE = Path("stand-in/boards.json")  # outside data/raw: what the stand-in "knows", not the community's data
SIZE = (640, 360)
VIDEO_FPS = 2
THUMB = (48, 27)

LETTERS = {"a": "ߊ", "e": "ߋ", "i": "ߌ", "ɛ": "ߍ", "u": "ߎ", "o": "ߏ", "ɔ": "ߐ", "b": "ߓ", "p": "ߔ", "t": "ߕ",
           "j": "ߖ", "c": "ߗ", "d": "ߘ", "r": "ߙ", "s": "ߛ", "g": "ߜ", "f": "ߝ", "k": "ߞ", "l": "ߟ", "m": "ߡ",
           "ɲ": "ߢ", "n": "ߣ", "h": "ߤ", "w": "ߥ", "y": "ߦ"}


def nko(latin: str) -> str:
    """Bambara in Latin letters -> N'Ko letters, letter for letter ("n" alone is the syllabic ߒ; no tones)."""
    words = []
    for word in latin.lower().replace("ny", "ɲ").split():
        words.append("ߒ" if word == "n" else "".join(LETTERS.get(char, char) for char in word))
    return " ".join(words)


# Board lessons: phrase = translation, two lines a slide, two slides a video (kind parallel, separator "=").
PHRASES = [
    [[("i ni ce", "hello"), ("i ni sɔgɔma", "good morning")],
     [("i ni wula", "good afternoon"), ("i ka kɛnɛ wa", "are you well")]],
    [[("tɔɔrɔ tɛ", "no problem"), ("i tɔgɔ ye di", "what is your name")],
     [("n tɔgɔ ye musa ye", "my name is Musa"), ("i bɛ bɔ min", "where are you from")]],
    [[("n bɛ bɔ bamako", "I am from Bamako"), ("a ni ce", "thank you")],
     [("k an bɛn", "see you later"), ("n bɛ kalan kɛ", "I am studying")]],
    [[("karamɔgɔ bɛ yan", "the teacher is here"), ("ji di n ma", "give me water")],
     [("sugu ka jan", "the market is far"), ("a bɛ baara la", "he is at work")]],
    [[("den bɛ so kɔnɔ", "the child is in the house"), ("muso bɛ taa sugu la", "the woman goes to the market")],
     [("tile ka gbɛlɛn", "the sun is hot"), ("an bɛ kalan kɛ sini", "we will study tomorrow")]],
    [[("n ye gafe san", "I bought a book"), ("misi bɛ jiri kɔrɔ", "the cow is under the tree")],
     [("i ka baara ka ɲi", "your work is good"), ("kalanden bɛ sɛbɛnni kɛ", "the student is writing")]],
]
# Vocabulary boards: word : gloss, three a slide (kind dictionary, separator ":").
WORDS = [
    [[("ji", "water"), ("buru", "bread"), ("dumuni", "food")], [("so", "house"), ("muso", "woman"), ("cɛ", "man")]],
    [[("den", "child"), ("gafe", "book"), ("jiri", "tree")], [("misi", "cow"), ("wari", "money"), ("sugu", "market")]],
    [[("tile", "sun"), ("kalo", "moon"), ("dugu", "village")], [("baara", "work"), ("kalan", "lesson"), ("bolo", "hand")]],
]
# Dialogue lessons: the board shows the dialogue's opening; dialogue-01 has its spoken lines as SRT subtitles.
DIALOGUES = {
    "dialogue-01": {"board": ["i ni ce musa", "n ba i ni ce", "i ka kɛnɛ wa", "tɔɔrɔ si tɛ"],
                    "subtitles": ["i ni sɔgɔma karamɔgɔ", "n ba i ni sɔgɔma", "an bɛ kalan kɛ bi", "ɔwɔ an bɛ kalan kɛ"]},
    "dialogue-02": {"board": ["i bɛ taa min", "n bɛ taa sugu la", "i bɛ mun san", "n bɛ buru san"], "subtitles": None},
}
# What the teacher typed up from the dialogue lessons: who asks and who answers (kind conversation).
CONVERSATIONS = [
    ("dialogue-01.mp4", [("i ni ce", "n ba i ni ce"), ("i ka kɛnɛ wa", "tɔɔrɔ si tɛ")]),
    ("dialogue-01.mp4", [("i ni sɔgɔma karamɔgɔ", "n ba i ni sɔgɔma"), ("an bɛ kalan kɛ bi wa", "ɔwɔ an bɛ kalan kɛ bi")]),
    ("dialogue-02.mp4", [("i bɛ taa min", "n bɛ taa sugu la"), ("i bɛ mun san", "n bɛ buru san")]),
    ("dialogue-02.mp4", [("sugu ka jan wa", "ayi a ma jan")]),
    ("dialogue-02.mp4", [("i tɔgɔ ye di", "n tɔgɔ ye awa ye"), ("i bɛ bɔ min", "n bɛ bɔ segu")]),
    ("dialogue-01.mp4", [("ji di n ma", "ji filɛ"), ("a ni ce", "ɔwɔ")]),
]


def fonts() -> tuple[ImageFont.FreeTypeFont, ImageFont.FreeTypeFont]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    from langfoundry.media.ocr_check import noto_font  # UserError with the apt-get line when fonts-noto-core is missing

    return ImageFont.truetype(str(noto_font("Nkoo")), 34), ImageFont.truetype(str(noto_font("Latn")), 26)


def board(rows: list[tuple[str, str | None]], title: str, fonts_: tuple) -> Image.Image:
    """A dark-green board with a chalk title; each row's N'Ko on the right (it reads right to left), its other
    side (if any) on the left."""
    nko_font, latin_font = fonts_
    image = Image.new("RGB", SIZE, (24, 60, 40))
    draw = ImageDraw.Draw(image)
    draw.text((24, 14), title, font=latin_font, fill=(200, 200, 170))
    for index, (script, other) in enumerate(rows):
        top = 70 + index * 64
        draw.text((SIZE[0] - 24, top), script, font=nko_font, fill=(245, 245, 235), anchor="ra", direction="rtl")
        if other is not None:
            draw.text((24, top + 6), other, font=latin_font, fill=(235, 225, 160))
    return image


def thumbnail(image: Image.Image) -> list[int]:
    return list(image.convert("L").resize(THUMB, Image.Resampling.BILINEAR).tobytes())


def srt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    return f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d},{millis % 1000:03d}"


def build(root: Path) -> dict[str, list[Path]]:
    """Write the videos, the subtitles and the typed-up dialogues under root/data/raw/lessons/, and the stand-in's
    table; the files written, by kind."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    from langfoundry.media.video import write_video

    fonts_ = fonts()
    raw = root / RAW
    table: list[dict] = []
    written: dict[str, list[Path]] = {"videos": [], "subtitles": [], "dialogues": []}

    def video(path: Path, slides: list[tuple[Image.Image, list[str], int]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = [image for image, _, seconds in slides for _ in range(seconds * VIDEO_FPS)]
        write_video(frames, path, VIDEO_FPS)
        for image, lines, _ in slides:
            table.append({"video": path.name, "thumbnail": thumbnail(image), "lines": lines})
        written["videos"].append(path)

    for number, slides in enumerate(PHRASES, start=1):
        shown = [(board([(nko(phrase), english) for phrase, english in slide], f"Lesson {number}", fonts_),
                  [f"{nko(phrase)} = {english}" for phrase, english in slide], seconds)
                 for slide, seconds in zip(slides, (10, 5))]
        video(raw / "boards" / f"lesson-{number:02d}.mp4", shown)
    for number, slides in enumerate(WORDS, start=1):
        shown = [(board([(nko(word), gloss) for word, gloss in slide], f"Words {number}", fonts_),
                  [f"{nko(word)} : {gloss}" for word, gloss in slide], seconds)
                 for slide, seconds in zip(slides, (10, 5))]
        video(raw / "vocabulary" / f"words-{number:02d}.mp4", shown)
    for name, dialogue in DIALOGUES.items():
        lines = [nko(line) for line in dialogue["board"]]
        video(raw / "dialogues" / f"{name}.mp4", [(board([(line, None) for line in lines], "Dialogue", fonts_), lines, 15)])
        if dialogue["subtitles"]:
            cues = [f"{index}\n{srt_time(index * 3.0)} --> {srt_time(index * 3.0 + 2.5)}\n{nko(line)}\n"
                    for index, line in enumerate(dialogue["subtitles"], start=1)]
            track = raw / "dialogues" / f"{name}.srt"
            track.write_text("\n".join(cues), encoding="utf-8")
            written["subtitles"].append(track)
    typed = raw / "typed" / "dialogues.jsonl"
    typed.parent.mkdir(parents=True, exist_ok=True)
    with typed.open("w", encoding="utf-8", newline="\n") as handle:
        for video_name, turns in CONVERSATIONS:
            messages = [{"role": role, "content": nko(text)} for pair in turns for role, text in zip(("user", "assistant"), pair)]
            handle.write(json.dumps({"video": video_name, "messages": messages}, ensure_ascii=False) + "\n")
    written["dialogues"].append(typed)
    (root / TABLE).parent.mkdir(parents=True, exist_ok=True)
    (root / TABLE).write_text(json.dumps({"size": THUMB, "slides": table}, ensure_ascii=False), encoding="utf-8")
    return written


if __name__ == "__main__":
    for kind, files in build(Path(sys.argv[1] if len(sys.argv) > 1 else ".")).items():
        print(f"{kind}: {len(files)} file(s)")
