"""Ingestion: readers on tiny generated files, the metadata rules, the bad-input corpus, the
shared corpora and the provincial .docx originals."""

from __future__ import annotations

import csv
import logging
import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest
from conftest import ALL_CORPORA, shared_corpus

from pipeline import ingest, normalize
from pipeline.errors import IngestError
from pipeline.ingest import (
    Source,
    find_duplicates,
    load_corpus,
    parse_date,
    read_source,
    scan_corpus,
)

HEADER = "doc_id,title,date,issuer,level,region,doc_type,language"


def _source(path: Path) -> Source:
    return Source(path.stem, path.name, path, "2020", 2020, {}, path.parent)


def _read(path: Path, *, to_simplified: bool = False) -> ingest.Document:
    return read_source(_source(path), to_simplified=to_simplified)


def _fails(path: Path) -> str:
    with pytest.raises(IngestError) as info:
        _read(path)
    return info.value.message


def _by_path(corpus: ingest.Corpus) -> dict[str, ingest.LedgerEntry]:
    return {e.path: e for e in corpus.ledger}


# --------------------------------------------------------------------------- dates, duplicates


@pytest.mark.parametrize(("value", "expected"), [
    ("2015", ("2015", 2015)), ("2015-03", ("2015-03", 2015)), (" 2015-03-05 ", ("2015-03-05", 2015)),
    ("2015-13", None), ("2015-03-32", None), ("2015/03/05", None), ("15", None), ("", None),
    ("2015年", None),
])
def test_parse_date_accepts_only_year_month_day_forms(value: str, expected: object) -> None:
    assert parse_date(value) == expected


def test_find_duplicates_keeps_the_first_doc_id_of_each_hash() -> None:
    pairs = [("b", "h1"), ("a", "h1"), ("c", "h2"), ("d", "h1")]
    assert find_duplicates(pairs) == {"b": "a", "d": "a"}


# --------------------------------------------------------------------------- text files


def test_utf8_with_and_without_bom_read_the_same(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes("社会保障\n养老保险".encode())
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbf" + "社会保障\n养老保险".encode())
    a, b = _read(tmp_path / "a.txt"), _read(tmp_path / "b.txt")
    assert a.text == b.text == "社会保障\n养老保险"
    assert (a.encoding, b.encoding, a.reader) == ("utf-8", "utf-8", "txt")


def test_utf16_with_bom_is_decoded(tmp_path: Path) -> None:
    (tmp_path / "u16.txt").write_bytes("全民参保计划。\r\n第二段".encode("utf-16"))
    doc = _read(tmp_path / "u16.txt")
    assert (doc.text, doc.encoding) == ("全民参保计划。\n第二段", "utf-16")


@pytest.mark.parametrize(("codec", "label"), [("gb2312", "gb2312"), ("gbk", "gbk")])
def test_gbk_family_is_detected(tmp_path: Path, codec: str, label: str) -> None:
    text = "最低生活保障应保尽保" + ("，社会救助" if codec == "gb2312" else "，镕")  # 镕 is GBK only
    (tmp_path / "g.txt").write_bytes(text.encode(codec))
    doc = _read(tmp_path / "g.txt")
    assert doc.text == text.replace("，", ",")
    assert doc.encoding == label


def test_gb18030_only_characters_are_decoded(tmp_path: Path) -> None:
    (tmp_path / "g.txt").write_bytes("社会保障𠀀".encode("gb18030"))
    doc = _read(tmp_path / "g.txt")
    assert (doc.text, doc.encoding) == ("社会保障𠀀", "gb18030")


def test_binary_file_named_txt_fails(tmp_path: Path) -> None:
    (tmp_path / "bin.txt").write_bytes(bytes(range(256)) * 4)
    assert "binary data" in _fails(tmp_path / "bin.txt")


def test_control_bytes_without_nul_fail_as_binary(tmp_path: Path) -> None:
    (tmp_path / "ctl.txt").write_bytes(bytes(range(1, 32)) * 20 + "社会保障".encode())
    assert "binary data (" in _fails(tmp_path / "ctl.txt")


def test_truncated_gbk_fails_as_truncated(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_bytes("社会保障制度改革".encode("gbk")[:-1])
    message = _fails(tmp_path / "t.txt")
    assert "t.txt: GBK/GB18030 text that ends in the middle of a character" in message
    assert "truncated" in message


@pytest.mark.parametrize("wrong", ["latin-1", "cp1252"])
def test_utf8_text_once_decoded_as_latin1_or_cp1252_fails_as_mojibake(
        tmp_path: Path, wrong: str) -> None:
    mangled = "中国社会保障制度".encode().decode(wrong, errors="ignore")  # e.g. 'ä¸\xadå›½...'
    (tmp_path / "m.txt").write_text(f"标题\n{mangled}\n{mangled}", encoding="utf-8")
    assert "mojibake" in _fails(tmp_path / "m.txt")


def test_european_accents_are_not_mistaken_for_mojibake(tmp_path: Path) -> None:
    (tmp_path / "e.txt").write_text("Sécurité sociale, naïve Müßiggang, façade, Æsir: Ørsted",
                                    encoding="utf-8")
    assert _read(tmp_path / "e.txt").text.startswith("Sécurité")


def test_replacement_characters_fail_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / "r.txt").write_text("第一行\n社会\ufffd保障", encoding="utf-8")
    assert "1 replacement character(s) U+FFFD (first on line 2)" in _fails(tmp_path / "r.txt")


def test_big5_text_read_as_gbk_fails_as_mojibake(tmp_path: Path) -> None:
    text = "為進一步完善社會保障體系，積極應對人口老齡化，發展養老服務，健全多層次醫療保障制度。" * 2
    (tmp_path / "big5.txt").write_bytes(text.encode("big5"))
    assert "mojibake" in _fails(tmp_path / "big5.txt")


def test_empty_and_whitespace_only_files_fail(tmp_path: Path) -> None:
    (tmp_path / "e.txt").write_bytes(b"")
    (tmp_path / "w.txt").write_text(" \n\u3000\n", encoding="utf-8")
    assert "empty file" in _fails(tmp_path / "e.txt")
    assert "no text" in _fails(tmp_path / "w.txt")


def test_traditional_text_is_kept_unless_conversion_is_asked(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("積極應對人口老齡化，發展養老服務", encoding="utf-8")
    kept = _read(tmp_path / "t.txt")
    converted = _read(tmp_path / "t.txt", to_simplified=True)
    assert kept.text == "積極應對人口老齡化,發展養老服務" and not kept.converted
    assert "traditional characters" in kept.note and "--to-simplified" in kept.note
    assert converted.text == "积极应对人口老龄化,发展养老服务" and converted.converted
    assert converted.note.startswith("converted from traditional to simplified")


# --------------------------------------------------------------------------- html, docx, pdf


def test_html_keeps_body_paragraphs_and_drops_scripts_and_navigation(tmp_path: Path) -> None:
    (tmp_path / "p.html").write_text(
        "<html><head><title>标题不要</title><style>p{color:red}</style></head><body>"
        "<nav><a href='/'>首页</a></nav><header>网站头</header>"
        "<h1>关于养老服务的通知</h1><p>加强<b>社会保障</b>体系建设。<br>第二行</p>"
        "<script>var x = '脚本';</script><!-- 注释 -->"
        "<table><tr><td>指标</td><td>目标</td></tr></table>"
        "<aside>相关链接</aside><footer>版权所有</footer></body></html>", encoding="utf-8")
    doc = _read(tmp_path / "p.html")
    assert doc.text == "关于养老服务的通知\n加强社会保障体系建设。\n第二行\n指标 目标"
    assert doc.reader == "html"


def test_html_declared_gbk_charset_is_used(tmp_path: Path) -> None:
    page = '<html><head><meta charset="gb2312"></head><body><p>社会救助</p></body></html>'
    (tmp_path / "g.htm").write_bytes(page.encode("gbk"))
    doc = _read(tmp_path / "g.htm")
    assert (doc.text, doc.encoding) == ("社会救助", "gb18030")


def test_docx_paragraphs_and_tables_in_document_order(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("第一段：全民参保。")
    table = document.add_table(rows=2, cols=2)
    for (r, c), value in {(0, 0): "项目", (0, 1): "目标", (1, 0): "参保率", (1, 1): "95%"}.items():
        table.cell(r, c).text = value
    document.add_paragraph("第二段：应保尽保。")
    document.save(str(tmp_path / "d.docx"))
    doc = _read(tmp_path / "d.docx")
    assert doc.text == "第一段:全民参保。\n项目 目标\n参保率 95%\n第二段:应保尽保。"
    assert (doc.reader, doc.encoding) == ("docx", "docx")


def test_a_file_that_is_not_a_docx_fails_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "old.docx").write_bytes(b"\xd0\xcf\x11\xe0 an old Word .doc file")
    message = _fails(tmp_path / "old.docx")
    assert "not a valid .docx" in message and "save it as .docx" in message


def _pdf(path: Path, draw: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplfonts
    import numpy as np
    from matplotlib.font_manager import FontProperties

    font = Path(mplfonts.__file__).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
    with matplotlib.rc_context({"pdf.fonttype": 42}):
        fig = plt.figure(figsize=(4, 2))
        if draw == "text":
            fig.text(0.1, 0.6, "加强社会保障体系建设。", fontproperties=FontProperties(fname=str(font)))
            fig.text(0.1, 0.3, "Coverage 95%", fontproperties=FontProperties(fname=str(font)))
        else:
            ax = fig.add_axes((0, 0, 1, 1))
            ax.imshow(np.arange(100).reshape(10, 10))
            ax.axis("off")
        fig.savefig(path, format="pdf")
        plt.close(fig)


def test_pdf_text_layer_is_read(tmp_path: Path) -> None:
    _pdf(tmp_path / "t.pdf", "text")
    doc = _read(tmp_path / "t.pdf")
    assert doc.text == "加强社会保障体系建设。\nCoverage 95%"
    assert doc.reader == "pdf"


def test_pdf_without_text_layer_fails_saying_it_needs_ocr(tmp_path: Path) -> None:
    _pdf(tmp_path / "scan.pdf", "image")
    message = _fails(tmp_path / "scan.pdf")
    assert "no text layer" in message and "needs OCR" in message


# --------------------------------------------------------------------------- corpus folders


def test_folder_without_metadata_takes_doc_id_and_year_from_names(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "2015-notice.txt").write_text("互联网+社会保障", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "policy.md").write_text("养老服务", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    with caplog.at_level(logging.WARNING, logger="pipeline.ingest"):
        corpus = load_corpus(tmp_path)
    assert [(d.doc_id, d.year, d.date) for d in corpus.documents] == [
        ("2015-notice", 2015, "2015"), ("policy", None, "")]
    assert _by_path(corpus)["image.png"].status == "skipped"
    assert "unsupported file type .png" in _by_path(corpus)["image.png"].reason
    assert "sub/policy.md" in caplog.text and "no 4-digit year" in caplog.text


def test_warning_names_the_folder_relative_to_the_working_folder(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "语料" / "sub").mkdir(parents=True)
    (tmp_path / "语料" / "sub" / "通知.txt").write_text("养老服务", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="pipeline.ingest"):
        scan_corpus(Path("语料"))
    assert "语料: no metadata.csv and no 4-digit year in the name of 1 file(s) (sub/通知.txt)" \
        in caplog.text
    assert str(tmp_path) not in caplog.text


def test_metadata_path_column_extra_columns_and_unlisted_files(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.html").write_text("<p>社会治理</p>", encoding="utf-8")
    (tmp_path / "b.txt").write_text("基层治理", encoding="utf-8")
    (tmp_path / "NOTES.md").write_text("notes", encoding="utf-8")
    (tmp_path / "metadata.csv").write_text(
        HEADER + ",path,source_repo\n"
        "a,甲,2018-07,某省,provincial,广东省,notice,zh,docs/a.html,repo/x\n"
        "b,乙,2019,国务院,national,全国,law,zh,,repo/y\n", encoding="utf-8")
    corpus = load_corpus(tmp_path)
    a, b = corpus.documents
    assert (a.doc_id, a.path, a.year, a.reader) == ("a", "docs/a.html", 2018, "html")
    assert a.meta == {"title": "甲", "issuer": "某省", "level": "provincial", "region": "广东省",
                      "doc_type": "notice", "language": "zh", "source_repo": "repo/x"}
    assert b.path == "b.txt"
    ledger = _by_path(corpus)
    assert ledger["NOTES.md"] == ingest.LedgerEntry(
        "NOTES.md", "", "corpus_file", "documents the corpus; not listed in metadata.csv")
    assert ledger["metadata.csv"].status == "corpus_file"


def test_a_metadata_row_with_too_few_or_too_many_fields_says_how_many(tmp_path: Path) -> None:
    # A short row was once reported as "3 fields but the header has 3".
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.txt").write_text(f"社会保障{name}\n", encoding="utf-8")
    (tmp_path / "metadata.csv").write_text(
        "doc_id,date,title\na,2019\nb,2020,乙,多余\nc,2021,丙\n", encoding="utf-8")
    corpus = load_corpus(tmp_path)
    ledger = _by_path(corpus)
    assert ledger["metadata.csv:2"].reason == (
        "metadata.csv:2: 2 fields but the header has 3; add the missing fields (empty ones "
        "too: a comma each)")
    assert ledger["metadata.csv:3"].reason == (
        "metadata.csv:3: 4 fields but the header has 3; quote fields that contain commas")
    assert ledger["a.txt"].reason == "not listed in metadata.csv"
    assert [d.doc_id for d in corpus.documents] == ["c"]


def test_same_normalised_text_is_skipped_as_a_duplicate(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("社会保障 体系\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("\ufeff社会保障  体系\r\n\r\n", encoding="utf-8")
    corpus = load_corpus(tmp_path)
    assert [d.doc_id for d in corpus.documents] == ["a"]
    assert _by_path(corpus)["b.txt"] == ingest.LedgerEntry(
        "b.txt", "b", "skipped", "duplicate of a (same normalised text)")


def test_without_metadata_links_out_fail_unread_and_linked_folders_are_not_followed(
        tmp_path: Path, opened_files: list[str]) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "2001-secret.txt").write_text(SECRET, encoding="utf-8")
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "2020-a.txt").write_text("社会保障", encoding="utf-8")
    (root / "2021-link.txt").symlink_to(outside / "2001-secret.txt")
    (root / "linked-dir").symlink_to(outside, target_is_directory=True)
    (root / "2022-inside.txt").symlink_to(root / "2020-a.txt")  # a link inside is fine
    opened_files.clear()
    corpus = load_corpus(root)
    ledger = _by_path(corpus)
    assert sorted(ledger) == ["2020-a.txt", "2021-link.txt", "2022-inside.txt", "linked-dir"]
    assert ledger["2021-link.txt"].status == "failed"
    assert "points outside the corpus folder" in ledger["2021-link.txt"].reason
    assert ledger["linked-dir"] == ingest.LedgerEntry(
        "linked-dir", "", "skipped", "a link to a folder; linked folders are not followed")
    assert ledger["2022-inside.txt"].reason == "duplicate of 2020-a (same normalised text)"
    assert not [p for p in opened_files if str(outside) in str(Path(p).resolve())]


def test_read_source_refuses_a_source_outside_its_root(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("社会保障", encoding="utf-8")
    src = Source("x", "x.txt", tmp_path / "x.txt", "2020", 2020, {}, tmp_path / "corpus")
    with pytest.raises(IngestError, match="points outside the corpus folder"):
        read_source(src)


def test_metadata_without_doc_id_column_is_unusable(tmp_path: Path) -> None:
    (tmp_path / "metadata.csv").write_text("id,date\nx,2020\n", encoding="utf-8")
    with pytest.raises(IngestError, match=r"metadata.csv:1: no 'doc_id' column"):
        scan_corpus(tmp_path)


def test_missing_folder_is_an_error() -> None:
    with pytest.raises(IngestError, match="no such corpus folder"):
        scan_corpus(Path("/no/such/corpus"))


# --------------------------------------------------------------------------- the bad-input corpus

_OPENED: list[str] = []
_RECORDING: list[bool] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _RECORDING and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


@pytest.fixture
def opened_files() -> Iterator[list[str]]:
    """Every path opened (builtins.open, io.open, os.open) while the test body runs."""
    if not getattr(sys, "_mobilize_audit", False):
        sys.addaudithook(_audit)
        sys._mobilize_audit = True  # type: ignore[attr-defined]
    _OPENED.clear()
    _RECORDING.append(True)
    try:
        yield _OPENED
    finally:
        _RECORDING.clear()


SECRET = "机密：这一行在语料库文件夹之外"


def make_bad_corpus(base: Path) -> Path:
    """A corpus with every kind of bad input, next to a folder it must never read."""
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET, encoding="utf-8")
    root = base / "bad"
    root.mkdir()
    (root / "good.txt").write_text("加强社会保障体系建设。", encoding="utf-8")
    (root / "copy.txt").write_text("加强社会保障体系建设。\n", encoding="utf-8")
    (root / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (root / "truncated-gbk.txt").write_bytes("最低生活保障应保尽保".encode("gbk")[:-1])
    (root / "utf16.txt").write_bytes("全民参保\r\n多层次社会保障体系".encode("utf-16"))
    (root / "empty.txt").write_bytes(b"")
    with (root / "huge.txt").open("wb") as fh:  # 50 MB, one line
        chunk = "社会保障".encode() * 87382  # ~1 MiB
        for _ in range(50):
            fh.write(chunk)
    (root / "slides.pptx").write_bytes(b"PK\x03\x04 not read")
    (root / "dup-a.txt").write_text("甲", encoding="utf-8")
    (root / "dup-b.txt").write_text("乙", encoding="utf-8")
    (root / "baddate.txt").write_text("丙", encoding="utf-8")
    (root / "link.txt").symlink_to(outside / "secret.txt")
    (root / "README.md").write_text("说明", encoding="utf-8")
    rows = [
        "good,,2020,,,,,,good.txt", "good-copy,,2020,,,,,,copy.txt", "binary,,2020,,,,,,binary.txt",
        "truncated,,2020,,,,,,truncated-gbk.txt", "utf16,,2020-01,,,,,,utf16.txt",
        "empty,,2020,,,,,,empty.txt", "huge,,2020,,,,,,huge.txt", "slides,,2020,,,,,,slides.pptx",
        "ghost,,2020,,,,,,ghost.txt", "dup,,2020,,,,,,dup-a.txt", "dup,,2020,,,,,,dup-b.txt",
        "baddate,,2020-13-45,,,,,,baddate.txt", "link,,2020,,,,,,link.txt",
        "escape,,2020,,,,,,../outside/secret.txt", f"absolute,,2020,,,,,,{outside / 'secret.txt'}",
    ]
    (root / "metadata.csv").write_text(HEADER + ",path\n" + "\n".join(rows) + "\n",
                                       encoding="utf-8")
    return root


@pytest.mark.slow
def test_bad_input_corpus_gets_documented_statuses_and_reads_nothing_outside(
        tmp_path: Path, opened_files: list[str]) -> None:
    root = make_bad_corpus(tmp_path)
    opened_files.clear()  # record only what load_corpus opens
    corpus = load_corpus(root)
    opened = [str(Path(p).resolve()) for p in opened_files]
    ledger = _by_path(corpus)
    secret = str(tmp_path / "outside" / "secret.txt")
    absolute_row = secret

    expected = {
        "good.txt": ("ingested", ""),
        "copy.txt": ("skipped", "duplicate of good (same normalised text)"),
        "binary.txt": ("failed", "binary.txt: binary data (NUL bytes), not text"),
        "truncated-gbk.txt": ("failed", "ends in the middle of a character: the file looks truncated"),
        "utf16.txt": ("ingested", ""),
        "empty.txt": ("failed", "empty.txt: empty file (0 bytes)"),
        "huge.txt": ("failed", "huge.txt: file is 50.0 MB, over the 20 MB limit"),
        "slides.pptx": ("skipped", "metadata.csv:9: unsupported file type .pptx"),
        "ghost.txt": ("failed", "metadata.csv:10: file not found: ghost.txt"),
        "dup-a.txt": ("ingested", ""),
        "dup-b.txt": ("failed", "metadata.csv:12: duplicate doc_id 'dup' (first on line 11)"),
        "baddate.txt": ("failed", "metadata.csv:13: invalid date '2020-13-45'; use YYYY, YYYY-MM"),
        "link.txt": ("failed", "metadata.csv:14: link.txt points outside the corpus folder"),
        "../outside/secret.txt": ("failed", "metadata.csv:15: path '../outside/secret.txt' leaves"),
        absolute_row: ("failed", f"metadata.csv:16: path {secret!r} leaves the corpus folder"),
        "README.md": ("corpus_file", "documents the corpus; not listed in metadata.csv"),
        "metadata.csv": ("corpus_file", "the corpus metadata (15 rows)"),
    }
    assert sorted(ledger) == sorted(expected)
    assert len(corpus.ledger) == len(expected)  # every file and row exactly once
    for path, (status, reason) in expected.items():
        assert ledger[path].status == status, (path, ledger[path])
        assert reason in ledger[path].reason, (path, ledger[path])
    assert "was not read" in ledger["link.txt"].reason
    assert [d.doc_id for d in corpus.documents] == ["dup", "good", "utf16"]
    assert next(d for d in corpus.documents if d.doc_id == "utf16").text == "全民参保\n多层次社会保障体系"
    # Nothing outside the corpus folder was opened, and the oversized file was not read.
    assert opened, "the audit hook saw no file being opened"
    assert not [p for p in opened if p.startswith(str(tmp_path / "outside"))]
    assert str(root / "huge.txt") not in opened
    assert str(root / "good.txt") in opened
    assert all(SECRET not in d.text for d in corpus.documents)


# --------------------------------------------------------------------------- shared corpora


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_CORPORA)
def test_shared_corpus_ingests_every_metadata_row_without_failure(name: str) -> None:
    root = shared_corpus(name)
    with (root / "metadata.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    corpus = load_corpus(root)
    assert corpus.failed == []
    assert len(corpus.documents) == len(rows)
    assert [d.doc_id for d in corpus.documents] == sorted(r["doc_id"] for r in rows)
    # every file under the folder is in the ledger once
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert sorted(e.path for e in corpus.ledger) == files
    # the text is the file's text, normalised (the corpora are UTF-8, one paragraph per line)
    first = corpus.documents[0]
    assert first.text == normalize.text((root / first.path).read_text(encoding="utf-8"))


def _docx_region(name: str) -> str:
    return PurePosixPath(name).stem.removeprefix("2025年").removesuffix("政府工作报告")


def _line_agreement(text: str, reference: str) -> float:
    """Share of ``reference``'s characters that sit in lines found verbatim in ``text``."""
    lines = set(text.split("\n"))
    ref_lines = reference.split("\n")
    total = sum(len(line) for line in ref_lines)
    return sum(len(line) for line in ref_lines if line in lines) / max(1, total)


@pytest.mark.slow
def test_provincial_docx_originals_agree_with_the_published_text(tmp_path: Path) -> None:
    """The 31 .docx in raw/*.zip, extracted by our reader, agree with the 2025 .txt files.

    Measure: the share of characters in lines that occur verbatim (after normalisation) in
    the other text, in both directions. Exact line matches are stricter than a character
    multiset and, unlike difflib on 20k-character strings (about 35 s for the 31), cheap.
    """
    root = shared_corpus("gwr-provincial-zh")
    archives = sorted((root / "raw").glob("*.zip"))
    assert archives, f"no .zip in {root / 'raw'}"
    with (root / "metadata.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["doc_id"].startswith("2025-")]
    out = tmp_path / "docx"
    out.mkdir()
    seen: dict[str, str] = {}
    for archive in archives:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".docx"):
                    continue
                # names without the UTF-8 flag are stored in GBK (made on Chinese Windows)
                name = info.filename if info.flag_bits & 0x800 else \
                    info.filename.encode("cp437").decode("gbk")
                match = [r["doc_id"] for r in rows if r["region"].startswith(_docx_region(name))]
                assert len(match) == 1, (name, match)
                (out / f"{match[0]}.docx").write_bytes(zf.read(info))
                seen[match[0]] = name
    assert len(seen) == 31
    corpus = load_corpus(out)
    assert corpus.failed == []
    assert len(corpus.documents) == 31
    poor = []
    for doc in corpus.documents:
        assert doc.reader == "docx"
        reference = normalize.text((root / f"{doc.doc_id}.txt").read_text(encoding="utf-8"))
        agree = min(_line_agreement(doc.text, reference), _line_agreement(reference, doc.text))
        if agree < 0.98:
            poor.append((doc.doc_id, round(agree, 4)))
    assert poor == []


def test_line_agreement_measures_shared_lines() -> None:
    assert _line_agreement("甲乙\n丙丁", "甲乙\n丙丁") == 1.0
    assert _line_agreement("甲乙\n丙", "甲乙\n丙丁") == 0.5  # 丙丁 is not a line of the text
    assert _line_agreement("", "甲乙") == 0.0


def test_demo_corpus_ingests_every_document_and_reader() -> None:
    root = Path(__file__).resolve().parent.parent / "corpora" / "demo"
    corpus = load_corpus(root)
    assert corpus.failed == []
    with (root / "metadata.csv").open(encoding="utf-8") as fh:
        assert len(corpus.documents) == len(list(csv.DictReader(fh)))
    assert {d.reader for d in corpus.documents} == {"txt", "html", "docx"}
    assert "gbk" in {d.encoding for d in corpus.documents}
    years = [d.year for d in corpus.documents if d.year]
    assert min(years) <= 2006 and max(years) >= 2024
    with_internet_plus = sorted(d.year for d in corpus.documents if "互联网+" in d.text and d.year)
    assert with_internet_plus and with_internet_plus[0] >= 2015


# --------------------------------------------------------------------------- ordinary data that
# once crashed a run or was read wrong (issue 12)


@pytest.mark.parametrize(("value", "days"), [("2010-02-31", 28), ("2011-04-31", 30),
                                             ("2011-02-29", 28)])
def test_impossible_dates_fail_their_row_saying_how_many_days_the_month_has(
        tmp_path: Path, value: str, days: int) -> None:
    assert parse_date(value) is None
    assert parse_date("2012-02-29") == ("2012-02-29", 2012)  # a leap day
    (tmp_path / "a.txt").write_text("养老保险", encoding="utf-8")
    (tmp_path / "b.txt").write_text("医疗保险", encoding="utf-8")
    (tmp_path / "metadata.csv").write_text(
        f"doc_id,date,path\na,{value},a.txt\nb,2012-02-29,b.txt\n", encoding="utf-8")
    ledger = _by_path(load_corpus(tmp_path))
    assert ledger["a.txt"].status == "failed"
    assert ledger["a.txt"].reason.startswith(f"metadata.csv:2: impossible date '{value}': ")
    assert f"has {days} days" in ledger["a.txt"].reason
    assert ledger["b.txt"].status == "ingested"


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
@pytest.mark.parametrize("with_metadata", [False, True])
def test_a_symlink_loop_is_a_failed_ledger_entry_not_a_crash(tmp_path: Path,
                                                             with_metadata: bool) -> None:
    (tmp_path / "2020-a.txt").write_text("养老保险", encoding="utf-8")
    os.symlink("loop.txt", tmp_path / "loop.txt")
    os.symlink("y.txt", tmp_path / "x.txt")
    os.symlink("x.txt", tmp_path / "y.txt")
    if with_metadata:
        (tmp_path / "metadata.csv").write_text(
            "doc_id,date,path\na,2020,2020-a.txt\nloop,2020,loop.txt\nx,2020,x.txt\n",
            encoding="utf-8")
    ledger = _by_path(load_corpus(tmp_path))
    assert ledger["2020-a.txt"].status == "ingested"
    for name in ("loop.txt", "x.txt"):
        assert ledger[name].status == "failed"
        assert "symbolic link in a loop" in ledger[name].reason
    assert ledger["y.txt"].status == ("skipped" if with_metadata else "failed")


@pytest.mark.skipif(sys.platform != "linux", reason="file names as bytes")
@pytest.mark.parametrize("with_metadata", [False, True])
def test_a_file_name_that_is_not_utf8_fails_shown_with_escapes(tmp_path: Path,
                                                              with_metadata: bool) -> None:
    (tmp_path / "2020-a.txt").write_text("养老保险", encoding="utf-8")
    name = "社保2021.txt".encode("gbk")  # a GBK name, as an old Windows tool writes it
    with open(os.path.join(os.fsencode(tmp_path), name), "wb") as fh:
        fh.write("医疗保险".encode())
    if with_metadata:
        (tmp_path / "metadata.csv").write_text("doc_id,date,path\na,2020,2020-a.txt\n",
                                               encoding="utf-8")
    corpus = load_corpus(tmp_path)
    shown = "\\xc9籣2021.txt"  # (bytes e7 b1 a3 happen to be UTF-8 for 籣)
    entry = _by_path(corpus)[shown]
    assert entry.status == "failed" and "not valid UTF-8" in entry.reason
    assert "convmv" in entry.reason
    assert [d.doc_id for d in corpus.documents] == ["2020-a" if not with_metadata else "a"]
    for e in corpus.ledger:  # every entry can be written as UTF-8
        e.path.encode("utf-8") and e.reason.encode("utf-8")


def test_a_metadata_field_over_the_csv_limit_is_an_error_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("养老保险", encoding="utf-8")
    # An unclosed quote on line 3 swallows the rest of the file into one field.
    (tmp_path / "metadata.csv").write_text(
        "doc_id,title,date,path\na,标题,2020,a.txt\nb,\"未闭合的引号,2021,b.txt\n"
        + "c,正文,2022,c.txt\n" * 20000, encoding="utf-8")
    with pytest.raises(IngestError) as info:
        scan_corpus(tmp_path)
    assert info.value.line == 3 and info.value.path == str(tmp_path / "metadata.csv")
    assert "csv module's limit" in info.value.problem and "Close the quote" in info.value.fix


def test_a_carriage_return_inside_a_quoted_metadata_field_becomes_a_line_feed(
        tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("养老保险", encoding="utf-8")
    (tmp_path / "metadata.csv").write_bytes(
        "doc_id,title,date,path\na,\"第一行\r第二行\r\n第三行\",2020,a.txt\n".encode())
    (src,) = scan_corpus(tmp_path).sources
    assert src.meta["title"] == "第一行\n第二行\n第三行"


UTF8_TEXT = "坚持以人民为中心，推进共同富裕，健全社会保障体系。\n完善养老保险制度，加强社会救助。\n"


def test_utf8_with_a_stray_latin1_byte_is_read_as_utf8_and_the_ledger_says_where(
        tmp_path: Path) -> None:
    # "Café" pasted in Latin-1 (byte 0xe9) into UTF-8 text: once read as GBK/GB18030 mojibake.
    raw = (UTF8_TEXT * 3).encode() + b"Caf\xe9 du commerce\n" + (UTF8_TEXT * 3).encode()
    (tmp_path / "s.txt").write_bytes(raw)
    doc = _read(tmp_path / "s.txt")
    assert doc.encoding == "utf-8"
    assert doc.text.split("\n")[6] == "Caf\ufffd du commerce"
    assert doc.text.replace("Caf\ufffd du commerce\n", "") == normalize.text(UTF8_TEXT * 6)
    assert doc.note.startswith("UTF-8 text with 1 invalid byte(s)")
    assert "line(s) 7 of the file" in doc.note
    corpus = load_corpus(tmp_path)
    assert _by_path(corpus)["s.txt"].reason == doc.note


def test_english_text_with_a_stray_byte_is_not_read_as_gbk(tmp_path: Path) -> None:
    # A middle dot 0xb7 in Latin-1 before ASCII text: GB18030 reads "\xb7R" as one Chinese
    # character, and the rest of the text passes every GBK check.
    raw = b"\xb7REPORT ON THE WORK OF THE GOVERNMENT\n" + b"Delivered at the session.\n" * 10
    assert raw.decode("gb18030")[0] == "稲"
    (tmp_path / "e.txt").write_bytes(raw)
    doc = _read(tmp_path / "e.txt")
    assert doc.encoding == "utf-8" and doc.text.startswith("\ufffdREPORT ON THE WORK")
    assert "1 invalid byte(s)" in doc.note


def test_gbk_text_is_still_gbk_and_many_bad_bytes_still_fail(tmp_path: Path) -> None:
    (tmp_path / "g.txt").write_bytes((UTF8_TEXT * 4).encode("gbk"))
    assert _read(tmp_path / "g.txt").encoding == "gb2312"
    broken = bytearray((UTF8_TEXT * 40).encode())
    for i in range(1, 12):
        broken[i * 100] = 0xFF  # 11 bad bytes: more than a few stray ones
    (tmp_path / "b.txt").write_bytes(bytes(broken))
    assert "neither UTF-8 nor GBK" in _fails(tmp_path / "b.txt")
