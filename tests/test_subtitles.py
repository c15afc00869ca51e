"""SRT and WebVTT as people have them (BOM, CRLF, markup, NOTE and STYLE blocks, cue settings, odd hours),
mistyped timing lines stopped with the file and line, and subtitle files found beside their video."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from langfoundry.core.errors import UserError
from langfoundry.media.subtitles import (
    Cue,
    find_subtitles,
    pair_cues_with_video,
    parse_subtitles,
    read_subtitles,
    subtitle_tracks,
)
from langfoundry.media.video import frame_group


def write(path: Path, text: str, newline: str = "\n", bom: bool = False, encoding: str = "utf-8") -> Path:
    data = text.replace("\n", newline).encode(encoding)
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + data)
    return path


def spans(cues: list[Cue]) -> list[tuple[float, float, str]]:
    return [(cue.start, cue.end, cue.text) for cue in cues]


# --- SRT ------------------------------------------------------------------------------------------------------------

AWKWARD_SRT = """1
00:00:01,000 --> 00:00:04,500
<i>Sugeng enjing,</i>
<font color="#ffff00">para siswa.</font>

2
00:00:05,250 --> 00:00:07,000 X1:100 X2:200 Y1:10 Y2:50
{\\an8}Kula <b>badhe</b> tindak
dhateng peken.

3
00:01:02,5 --> 01:02:03,040
- 42
- 7 < 9, AT&T

4
100:00:00,000 --> 100:00:01,000
Satus jam"""  # no final newline, let alone a blank line


def test_awkward_srt_with_bom_and_crlf_reads_every_cue(tmp_path) -> None:
    path = write(tmp_path / "lesson.srt", AWKWARD_SRT, newline="\r\n", bom=True)
    cues = read_subtitles(path)
    assert spans(cues) == [
        (1.0, 4.5, "Sugeng enjing, para siswa."),
        (5.25, 7.0, "Kula badhe tindak dhateng peken."),
        (62.5, 3723.04, "- 42 - 7 < 9, AT&T"),  # "- 42" is text, not a counter; SRT has no entities to unescape
        (360000.0, 360001.0, "Satus jam"),  # 3-digit hours
    ]
    assert [cue.line for cue in cues] == [2, 7, 12, 17]


def test_srt_with_old_mac_line_ends_and_no_blank_lines_between_cues(tmp_path) -> None:
    text = ("1\n0:00:01,000-->0:00:02,000\nOne\n2\n0:00:03.000 --> 0:00:04.000\nTwo\n\n\n\n"
            "3\n00:00:05,000 --> 00:00:06,000\nThree\n")
    path = write(tmp_path / "run-on.srt", text, newline="\r")
    assert spans(read_subtitles(path)) == [(1.0, 2.0, "One"), (3.0, 4.0, "Two"), (5.0, 6.0, "Three")]


def test_a_legacy_code_page_srt_reads_as_its_text(tmp_path) -> None:
    text = "1\n00:00:01,000 --> 00:00:03,000\nÇa va très bien, merci, à demain à l'école élémentaire.\n\n" \
           "2\n00:00:04,000 --> 00:00:06,000\nLe garçon a mangé une crème brûlée délicieuse à côté du château.\n"
    path = write(tmp_path / "cp1252.srt", text, encoding="cp1252")
    cues = read_subtitles(path)
    assert cues[1].text == "Le garçon a mangé une crème brûlée délicieuse à côté du château."


@pytest.mark.parametrize(("text", "line", "shown"), [
    ("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 --> 00:00:4,000\nbad\n", 6, "'00:00:4,000'"),
    ("1\n00:00:01,000 --> 00:00:02,000\nok\n\n\n2\n00:00:03,000 -> 00:00:04,000\nbad arrow\n", 7, "without '-->'"),
    ("1\n00:00:01,000 --> 00:00:02,000\nok\n2\n00:00:03,000 - 00:00:04,000\nrun on\n3\n00:00:05,000 --> 00:00:06,000\nx\n",
     5, "without '-->'"),
    ("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 --> 00:61:00,000\nbad minutes\n", 6, "'00:61:00,000'"),
    ("1\n00:00:09,000 --> 00:00:02,000\nbackwards\n", 2, "before it starts"),
    ("1\n00:00:01,000 --> \nno end\n", 2, "cannot read the timing line"),
])
def test_malformed_srt_timing_names_the_file_and_line(tmp_path, text: str, line: int, shown: str) -> None:
    path = write(tmp_path / "bad.srt", text, newline="\r\n")
    with pytest.raises(UserError) as caught:
        read_subtitles(path)
    message = str(caught.value)
    assert message.startswith(f"{path.as_posix()}:{line}: ") and shown in message
    assert "\n" not in message and "\r" not in message
    assert "HH:MM:SS" in message or "correct the times" in message  # says how to fix it


# --- WebVTT ---------------------------------------------------------------------------------------------------------

AWKWARD_VTT = """WEBVTT - Pelajaran 1
Kind: captions
Language: jv

STYLE
::cue(.guru) { color: yellow }

NOTE
This note mentions 00:00:01.000 and has
several lines, which are not cues.

REGION
id:fred width:40%

intro
00:01.000 --> 00:04.000 align:start position:10% line:90%
<v Guru Siti>Sugeng <c.guru>enjing</c></v>
sedaya.

NOTE one-line note

00:00:05.000 --> 00:00:06.500
<v.loud Bapak>Tom &amp; Jerry &lt;3</v>
<ruby>漢<rt>kan</rt></ruby>

3
00:00:07.000 --> 00:00:09.000
<00:00:07.000>Karaoke <00:00:08.000>tembang
"""


def test_awkward_webvtt_skips_header_style_note_and_region_blocks(tmp_path) -> None:
    path = write(tmp_path / "lesson.jv.vtt", AWKWARD_VTT, newline="\r\n", bom=True)
    assert spans(read_subtitles(path)) == [
        (1.0, 4.0, "Sugeng enjing sedaya."),  # hour-less times; settings after the end time ignored
        (5.0, 6.5, "Tom & Jerry <3 漢kan"),  # voice, class and ruby tags gone, entities unescaped
        (7.0, 9.0, "Karaoke tembang"),
    ]


def test_a_cue_left_empty_by_its_markup_is_dropped_and_empty_files_have_no_cues(tmp_path) -> None:
    text = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<i></i>\n\n00:00:03.000 --> 00:00:04.000\nkept\n"
    assert spans(parse_subtitles(text, "a.vtt", webvtt=True)) == [(3.0, 4.0, "kept")]
    (tmp_path / "empty.srt").write_bytes(b"")
    assert read_subtitles(tmp_path / "empty.srt") == []
    assert parse_subtitles("WEBVTT\n", "b.vtt", webvtt=True) == []


def test_malformed_webvtt_timestamp_names_its_line(tmp_path) -> None:
    text = "WEBVTT\n\nNOTE fine\n\n00:00:01.000 --> 00:00:02.000\nok\n\n00:00:03.000 --> 00:00:04.0000\ntoo many digits\n"
    with pytest.raises(UserError, match=r"^.*late\.vtt:8: malformed timestamp '00:00:04\.0000'; write cue times as"):
        read_subtitles(write(tmp_path / "late.vtt", text))


def test_not_a_subtitle_file_is_refused_in_one_line(tmp_path) -> None:
    with pytest.raises(UserError, match=r"\.ass is not a subtitle format; use \.srt or \.vtt"):
        read_subtitles(tmp_path / "lesson.ass")
    with pytest.raises(UserError, match="no such file"):
        read_subtitles(tmp_path / "missing.vtt")
    (tmp_path / "binary.srt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(UserError) as caught:
        read_subtitles(tmp_path / "binary.srt")
    assert "\n" not in str(caught.value)


# --- pairing with the video -----------------------------------------------------------------------------------------

def test_cues_pair_with_their_video_by_origin_and_share_its_group(tmp_path) -> None:
    cues = parse_subtitles("1\n00:01:05,000 --> 00:01:08,250\nSugeng\n\n2\n01:00:00,000 --> 01:00:01,000\nenjing\n",
                           "lesson.srt", webvtt=False)
    records = pair_cues_with_video(cues, Path("raw/videos/lesson.mp4"))
    assert [record.origin for record in records] == [
        "raw/videos/lesson.mp4#t=00:01:05.000-00:01:08.250",
        "raw/videos/lesson.mp4#t=01:00:00.000-01:00:01.000",
    ]
    assert {record.group for record in records} == {"video:lesson.mp4"} == {frame_group("elsewhere/lesson.mp4")}
    assert [(record.text, record.start, record.end) for record in records] == [
        ("Sugeng", 65.0, 68.25), ("enjing", 3600.0, 3601.0)]


def test_subtitle_files_are_found_beside_the_video_by_name(tmp_path) -> None:
    for name in ("lesson.mp4", "lesson.srt", "lesson.en.vtt", "lesson.jv-x-banyumas.srt", "lesson.extra.notes.srt",
                 "lessons.srt", "lesson2.vtt", "other.part.mp4", "other.part.id.VTT"):
        (tmp_path / name).write_text("")
    tracks = subtitle_tracks(tmp_path / "lesson.mp4")
    assert [(track.path.name, track.lang) for track in tracks] == [
        ("lesson.srt", None), ("lesson.en.vtt", "en"), ("lesson.jv-x-banyumas.srt", "jv-x-banyumas")]
    assert find_subtitles(tmp_path / "lesson.mp4") == tmp_path / "lesson.srt"
    assert find_subtitles(tmp_path / "lesson.mp4", lang="en") == tmp_path / "lesson.en.vtt"
    assert find_subtitles(tmp_path / "lesson.mp4", lang="jv_x_banyumas") == tmp_path / "lesson.jv-x-banyumas.srt"
    assert find_subtitles(tmp_path / "lesson.mp4", lang="ml") == tmp_path / "lesson.srt"  # untagged: the source's language
    assert find_subtitles(tmp_path / "other.part.mp4") == tmp_path / "other.part.id.VTT"  # the only language there
    assert find_subtitles(tmp_path / "other.part.mp4", lang="en") is None
    assert find_subtitles(tmp_path / "missing-folder" / "x.mp4") is None

    (tmp_path / "lesson.srt").unlink()
    with pytest.raises(UserError, match=r"lesson\.mp4: subtitles in several languages \(en, jv-x-banyumas\)"):
        find_subtitles(tmp_path / "lesson.mp4")
