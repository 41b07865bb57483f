"""Per-document limits and hostile inputs: linear readers, limits applied before the work,
patterns that cannot backtrack without bound, and a lexicon validate that says which would.

Nothing here is timed: each test checks what was read, what failed and why, or how much
work was done; the few inputs that were quadratic before are sized so that a regression
would blow their generous ``timeout`` marker (minutes before, well under a second now).
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from pathlib import Path

import pytest
from conftest import CHINESE_CORPORA, REPO, shared_corpus
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import ingest, normalize
from pipeline.config import DEFAULT_LEXICON
from pipeline.errors import IngestError
from pipeline.ingest import Source, load_corpus, read_source
from pipeline.lexicon import load_lexicon, parse_lexicon_text, validate_lexicon
from pipeline.match import Matcher


def _read(path: Path) -> ingest.Document:
    return read_source(Source(path.stem, path.name, path, "2020", 2020, {}, path.parent))


def _fails(path: Path) -> str:
    with pytest.raises(IngestError) as info:
        _read(path)
    return info.value.message


# --------------------------------------------------------------------------- HTML


def _soup_text(markup: str) -> str:
    """The text the BeautifulSoup tree walk gave, which the one-pass reader replaced (it edited
    the tree with insert_before/insert_after: quadratic in sibling and in nested elements)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "lxml")
    for tag in soup.find_all(ingest._HTML_DROP):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for cell in soup.find_all(("td", "th")):
        cell.insert_after("\t")
    for block in soup.find_all(ingest._HTML_BLOCK):
        block.insert_before("\n")
        block.insert_after("\n")
    return (soup.body or soup).get_text()


def test_html_text_is_the_same_as_the_tree_walk_gave_on_the_demo_pages() -> None:
    pages = sorted((REPO / "corpora").rglob("*.htm*"))
    assert len(pages) >= 4
    for page in pages:
        raw = page.read_bytes()
        assert ingest._read_html(raw)[0] == _soup_text(raw.decode("utf-8")), page.name


_TAGS = ("p", "div", "br", "td", "th", "tr", "table", "span", "b", "rt", "rp", "ruby", "pre",
         "textarea", "script", "style", "nav", "head", "body", "html", "title", "li", "hr",
         "template", "svg", "form", "noscript", "img", "h1")
_TEXTS = ("社会", "保障", " ", "\n", "\t", "  \n ", "&amp;", "&nbsp;", "x", "<!--c-->",
          "<?pi x?>", "<!DOCTYPE html>", "\r\n", "&#x4e00;", "<", ">", "&")
_PIECE = st.one_of(st.sampled_from(_TEXTS), st.sampled_from(_TAGS).map("<{}>".format),
                   st.sampled_from(_TAGS).map("</{}>".format),
                   st.sampled_from(_TAGS).map("<{}/>".format))


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECE, min_size=1, max_size=40).map("".join))
def test_html_text_is_the_same_as_the_tree_walk_gave_on_any_markup(markup: str) -> None:
    """Whitespace-only runs, comments, ruby text, <pre>, dropped elements, text outside <body>."""
    assert ingest._read_html(markup.encode("utf-8"))[0] == _soup_text(markup)


@pytest.mark.timeout(120)
def test_tens_of_thousands_of_sibling_paragraphs_are_read(tmp_path: Path) -> None:
    """30,000 sibling <p> (0.6 MB): minutes with the tree walk, a fraction of a second now."""
    (tmp_path / "p.html").write_text("<html><body>" + "<p>社会保障</p>" * 30_000 + "</body></html>",
                                     encoding="utf-8")
    doc = _read(tmp_path / "p.html")
    assert doc.text == "\n".join(["社会保障"] * 30_000)


@pytest.mark.timeout(120)
def test_deeply_nested_divs_are_read(tmp_path: Path) -> None:
    """30,000 nested <div>: each inserted line break walked all the nested elements before."""
    n = 30_000
    (tmp_path / "d.html").write_text("<html><body>" + "<div>社" * n + "</div>" * n
                                     + "</body></html>", encoding="utf-8")
    assert _read(tmp_path / "d.html").text == "\n".join(["社"] * n)


def test_html_reading_stops_at_the_character_limit(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "MAX_TEXT_CHARS", 1000)
    (tmp_path / "2020-long.html").write_text("<body>" + "<p>社会保障</p>" * 5000 + "</body>",
                                             encoding="utf-8")
    (entry,) = [e for e in load_corpus(tmp_path).ledger if e.path == "2020-long.html"]
    assert entry.status == "failed"
    assert "its text passes the limit of 1,000 characters for one document" in entry.reason
    assert "split it into documents" in entry.reason
    stopped = int(re.search(r"reading stopped at ([\d,]+)", entry.reason)[1].replace(",", ""))
    assert 1000 < stopped <= 1000 + len("社会保障")  # stopped at the first piece past the limit


# --------------------------------------------------------------------------- .docx

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _docx(paragraphs: int, text: str = "社会保障体系建设") -> bytes:
    """A minimal .docx of ``paragraphs`` paragraphs, its document.xml written in a stream."""
    types = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.'
             'org/package/2006/content-types"><Default Extension="rels" ContentType="application/'
             'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
             '"application/xml"/><Override PartName="/word/document.xml" ContentType="application/'
             'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
    rels = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
            'schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="word/document.xml"/></Relationships>')
    para = f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>".encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", types)
        z.writestr("_rels/.rels", rels)
        with z.open("word/document.xml", "w", force_zip64=True) as part:
            part.write(f'<w:document xmlns:w="{_W}"><w:body>'.encode())
            for _ in range(paragraphs // 1000):
                part.write(para * 1000)
            part.write(para * (paragraphs % 1000) + b"</w:body></w:document>")
    return buf.getvalue()


class _Inflated:
    """Counts the bytes ``zipfile`` inflates, and whether python-docx opened the package."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import docx

        self.bytes = 0
        self.parsed = False
        read = zipfile.ZipExtFile.read

        def counting_read(ext: zipfile.ZipExtFile, n: int = -1) -> bytes:
            data = read(ext, n)
            self.bytes += len(data)
            return data

        document = docx.Document

        def recording_document(*args: object, **kwargs: object) -> object:
            self.parsed = True
            return document(*args, **kwargs)

        monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
        monkeypatch.setattr(docx, "Document", recording_document)


def test_an_ordinary_docx_is_read_with_the_limits_in_place(tmp_path: Path) -> None:
    (tmp_path / "d.docx").write_bytes(_docx(3))
    assert _read(tmp_path / "d.docx").text == "社会保障体系建设\n社会保障体系建设\n社会保障体系建设"


@pytest.mark.timeout(300)
def test_a_docx_whose_xml_inflates_past_the_limit_fails_before_it_is_parsed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A zip bomb: 1 MB of .docx whose XML inflates to 17 MB (over the 16 MB limit; 300 MB
    took 217 s and 3.4 GB before). It fails unparsed, having inflated no more than the limit."""
    size = ingest.MAX_XML_BYTES + 2**20
    (tmp_path / "2020-bomb.docx").write_bytes(_docx(size // len("<w:p><w:r><w:t>社会保障体系建设"
                                                                "</w:t></w:r></w:p>".encode())))
    assert (tmp_path / "2020-bomb.docx").stat().st_size < 2**20
    inflated = _Inflated(monkeypatch)
    (entry,) = [e for e in load_corpus(tmp_path).ledger if e.path == "2020-bomb.docx"]
    assert entry.status == "failed"
    assert entry.reason == ("2020-bomb.docx: its XML parts inflate to more than the 16 MB limit "
                            "for one .docx (a zip bomb, or many documents in one); it was not "
                            "parsed. Check that it is one policy document; save it again from "
                            "Word, or convert it to .txt.")
    assert not inflated.parsed
    assert inflated.bytes <= ingest.MAX_XML_BYTES + ingest._ZIP_CHUNK


def test_a_docx_declaring_parts_over_the_limit_fails_without_inflating_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "MAX_INFLATED_BYTES", 2 * 2**20)
    (tmp_path / "big.docx").write_bytes(_docx(50_000))  # 2.7 MB of XML
    inflated = _Inflated(monkeypatch)
    message = _fails(tmp_path / "big.docx")
    assert "its parts would inflate to 2.7 MB (as its zip declares), over the 2 MB limit" in message
    assert inflated.bytes == 0 and not inflated.parsed


def test_a_docx_whose_zip_understates_a_part_fails_having_inflated_only_what_it_declares(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The central directory says document.xml is 1,000 bytes; its data inflates to 150 KB."""
    data = bytearray(_docx(3000))
    entry = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 1)  # [Content_Types], rels, doc
    entry = data.index(b"PK\x01\x02", entry + 1)
    assert data[entry + 46:entry + 46 + 17] == b"word/document.xml"
    assert struct.unpack("<I", data[entry + 24:entry + 28])[0] > 100_000  # uncompressed size
    struct.pack_into("<I", data, entry + 24, 1000)
    (tmp_path / "lying.docx").write_bytes(bytes(data))
    inflated = _Inflated(monkeypatch)
    message = _fails(tmp_path / "lying.docx")
    assert "not a valid .docx (Word 2007+) file" in message
    assert not inflated.parsed
    assert inflated.bytes <= 1000 + 2000  # the part's declared 1,000 bytes and the small ones


def test_docx_extraction_stops_at_the_character_limit(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "MAX_TEXT_CHARS", 100)
    (tmp_path / "long.docx").write_bytes(_docx(50))  # 50 lines of 9 characters
    message = _fails(tmp_path / "long.docx")
    assert "its text passes the limit of 100 characters for one document (reading stopped at " \
           "108)" in message


def test_pdf_extraction_stops_at_the_page_that_passes_the_character_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages
    from pypdf import PageObject

    with PdfPages(tmp_path / "three.pdf") as pdf:
        for _ in range(3):
            fig = plt.figure(figsize=(4, 2))
            fig.text(0.1, 0.5, "Social security " * 3)
            pdf.savefig(fig)
            plt.close(fig)
    pages: list[int] = []
    extract = PageObject.extract_text

    def counting(page: PageObject, *args: object, **kwargs: object) -> str:
        pages.append(1)
        return extract(page, *args, **kwargs)

    monkeypatch.setattr(PageObject, "extract_text", counting)
    assert _read(tmp_path / "three.pdf").text.count("Social security") == 9
    pages.clear()
    monkeypatch.setattr(ingest, "MAX_TEXT_CHARS", 60)
    assert "its text passes the limit of 60 characters" in _fails(tmp_path / "three.pdf")
    assert len(pages) == 2  # the third page was never extracted


# --------------------------------------------------------------------------- matching


@pytest.mark.timeout(120)
def test_a_long_run_of_digits_is_matched_in_linear_time() -> None:
    """100,000 digits between 参保 and 人参保: the coverage-figure pattern re-read the run from each
    digit before (40,000 took 49 s; this would take minutes)."""
    matcher = Matcher(load_lexicon(DEFAULT_LEXICON))
    counts = matcher.count("参保" + "7" * 100_000 + "人参保")
    assert counts[("feature", "F1_population", "覆盖/参保N亿人")] == 0
    counts = matcher.count("参保" + "7" * 100_000 + "亿人参保。3.58亿人参保")
    # (since 2.0.0 a figure has at most 5 digits before 亿: a run of 100,000 is no headcount)
    assert counts[("feature", "F1_population", "覆盖/参保N亿人")] == 1


_OLD_F1 = (r"(?:参保|覆盖)[^。,;]{0,6}?\d+(?:\.\d+)?亿多?(?:人|(?=[,、。;]))"
           r"|\d+(?:\.\d+)?亿多?人参保")


def test_the_coverage_pattern_was_rewritten_without_changing_a_match_within_a_paragraph() -> None:
    """Inline cases the rewrite could have changed: runs of digits, decimals, a match right
    after another. Only a figure in the next paragraph (line) is no longer 参保's or 覆盖's."""
    (term,) = [t for t in load_lexicon(DEFAULT_LEXICON).terms() if t.text == "覆盖/参保N亿人"]
    new, old = re.compile(term.pattern or ""), re.compile(_OLD_F1)
    for text in ("3.58亿人参保", "参保人数增加1.4亿、", "覆盖13.5亿人", "12345亿人参保", "x.5亿人参保",
                 "1.2.3亿人参保", "覆盖13亿人3亿人参保", "参保超过13亿人", "覆盖地区1234亿元",
                 "参保99999亿多人参保。"):
        assert [m.span() for m in new.finditer(text)] == [m.span() for m in old.finditer(text)], text
    assert [m.group() for m in old.finditer("覆盖范围\n13亿人参保")] == ["覆盖范围\n13亿人"]
    assert [m.group() for m in new.finditer("覆盖范围\n13亿人参保")] == ["13亿人参保"]


@pytest.mark.slow
@pytest.mark.parametrize("name", CHINESE_CORPORA)
def test_the_coverage_pattern_finds_what_it_found_before_on_the_shared_corpora(name: str) -> None:
    corpus = load_corpus(shared_corpus(name))
    (term,) = [t for t in load_lexicon(DEFAULT_LEXICON).terms() if t.text == "覆盖/参保N亿人"]
    new, old = re.compile(term.pattern or ""), re.compile(_OLD_F1)
    found = 0
    for doc in corpus.documents:
        spans = [m.span() for m in old.finditer(doc.text)]
        assert [m.span() for m in new.finditer(doc.text)] == spans, doc.doc_id
        found += len(spans)
    assert found > 0 or name != "gwr-national-zh"


# --------------------------------------------------------------------------- lexicon validate


def test_the_shipped_lexicon_validates_without_a_single_note() -> None:
    """It printed a slow-pattern note for the coverage-figure pattern (searched over whole texts)."""
    assert validate_lexicon(DEFAULT_LEXICON) == []


def _lexicon(terms: str) -> str:
    return ("schema: 1\nname: t\nversion: 0.1.0\ndimensions:\n  feature:\n    categories:\n"
            "      - id: F1_population\n        name_zh: 人口\n        name_en: population\n"
            "        definition: d\n        terms:\n" + terms)


def _problems(terms: str) -> list[tuple[int, str, str]]:
    _lex, problems = parse_lexicon_text(_lexicon(terms))
    return [(p.line, p.severity, p.message) for p in problems if "codebook" not in p.message]


@pytest.mark.parametrize("pattern", [r"(\d+)+亿", r"(?:\d{1,3},)+人", r"(?:社保\d*)*覆盖",
                                     r"(?:\d?\d?)*亿", r"覆盖(?:[^。]+)*人"])
def test_nested_quantifiers_are_an_error(pattern: str) -> None:
    ((line, severity, message),) = _problems(f"          - pattern: '{pattern}'\n"
                                             "            label: x\n")
    assert (line, severity) == (12, "error")
    assert f"pattern '{pattern}' nests quantifiers" in message
    assert "catastrophic backtracking" in message


@pytest.mark.parametrize("pattern", [r"(a|aa)*b", r"覆盖(?:社|社会)+人", r"(?:\d|\d\d)+亿",
                                     r"(?:参保|)+人"])
def test_a_repeated_choice_of_overlapping_alternatives_is_an_error(pattern: str) -> None:
    ((line, severity, message),) = _problems(f"          - pattern: '{pattern}'\n"
                                             "            label: x\n")
    assert (line, severity) == (12, "error")
    assert "repeats a choice between alternatives that can start with the same character" \
        in message


@pytest.mark.parametrize("pattern", [r"覆盖(?:\d++)+亿", r"覆盖(?>\d+)+亿", r"覆盖(?:参保|覆盖)+人",
                                     r"(?<!\d)\d+亿人", r"覆盖\d+(?:\.\d+)?亿人",
                                     r"(?:[1-9]\d?(?:\.\d+)?|十几)亿多?人口"])
def test_possessive_atomic_distinct_and_guarded_repeats_are_accepted(pattern: str) -> None:
    assert _problems(f"          - pattern: '{pattern}'\n            label: x\n") == []


@pytest.mark.parametrize("pattern", [r"\d+亿人参保", r"[^。]+覆盖", r"(?:\d+)亿", r"社保|\d*亿人"])
def test_a_pattern_starting_with_an_unguarded_unbounded_repeat_is_a_warning(pattern: str) -> None:
    problems = _problems(f"          - pattern: '{pattern}'\n            label: x\n")
    ((line, severity, message),) = [p for p in problems if p[1] != "note"]  # a slow-search note
    assert (line, severity) == (12, "warning")
    assert "starts with an unbounded repeat and no lookbehind" in message


def test_a_40000_character_term_is_an_error_not_gigabytes() -> None:
    """The segmenter's dictionary keeps every prefix of every term: 1.6 GB for this one."""
    long = "社会保障体系" * 6667
    ((line, severity, message),) = _problems(f"          - 全覆盖\n          - {long[:40_000]}\n")
    assert (line, severity) == (13, "error")
    assert "is 40,000 characters long, over the limit of 64" in message
    ok = "社" * 64
    assert _problems(f"          - {ok}\n") == []


def test_a_pattern_over_the_length_limit_is_an_error() -> None:
    pattern = "|".join(f"社保{i:04d}" for i in range(200))
    ((line, severity, message),) = _problems(f"          - pattern: '{pattern}'\n"
                                             "            label: x\n")
    assert (line, severity) == (12, "error")
    assert f"is {len(pattern):,} characters long, over the limit of 1000" in message


def test_normalised_html_text_keeps_one_block_per_line(tmp_path: Path) -> None:
    """The reader's breaks, then normalize.text: one paragraph per line, cells tab-separated."""
    page = ("<html><body><nav>菜单</nav><h1>标题</h1><p>第一段<br>第二行</p>"
            "<table><tr><td>甲</td><td>乙</td></tr></table><!-- 注释 --><p>  </p></body></html>")
    text, _enc, _note = ingest._read_html(page.encode("utf-8"))
    assert normalize.text(text) == "标题\n第一段\n第二行\n甲 乙"
