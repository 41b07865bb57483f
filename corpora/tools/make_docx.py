"""Make the demo corpus's .docx files (illustrative texts written for the demo).

Run from anywhere: ``python corpora/tools/make_docx.py``. It writes into ``corpora/demo/``
and lives outside it, so that a run does not count it as a skipped file. Needs python-docx
(a mobilize dependency). The texts below are written for this project; they are not
real policy documents. Re-running rewrites the three .docx files with the same
text (the zip timestamps inside differ, the extracted text does not).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import docx

HERE = Path(__file__).resolve().parent.parent / "demo"
FIXED = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

DOCS: dict[str, dict[str, object]] = {
    "2008-national-disaster-relief": {
        "title": "关于做好地震灾区困难群众生活救助工作的通知（示例文本）",
        "paragraphs": [
            "各省、自治区、直辖市人民政府：",
            "地震灾害发生后，党中央高度重视。各地要在党的领导下，加强组织领导，做好灾害救助工作。",
            "一、广泛开展社会动员，发动群众开展生产自救，保障受灾群众基本生活。",
            "二、支持慈善组织和志愿者有序参与救灾，及时公开捐赠款物使用情况。",
            "三、将因灾困难群众纳入最低生活保障和社会福利范围，做好防灾减灾工作。",
        ],
        "table": None,
    },
    "2016-sichuan-poverty": {
        "title": "关于社会保障助力脱贫攻坚的实施意见（示例文本）",
        "paragraphs": [
            "为落实精准扶贫、精准脱贫基本方略，发挥社会保障兜底作用，提出以下意见。",
            "一、做好易地扶贫搬迁群众的社会保险关系转移接续，确保搬迁群众应保尽保。",
            "二、从建档立卡贫困人口中选聘生态护林员，完善生态补偿机制，坚持绿色发展。",
            "三、深入推进供给侧结构性改革，在降低企业负担的同时保持养老保险基金收支平衡。",
        ],
        "table": [
            ["项目", "2016年", "2020年目标"],
            ["贫困人口养老保险参保率", "90%", "95%以上"],
            ["低保兜底人数（万人）", "120", "应保尽保"],
        ],
    },
    "2020-zhejiang-flexible-employment": {
        "title": "关于维护新就业形态劳动者劳动保障权益的实施意见（示例文本）",
        "paragraphs": [
            "平台经济和数字经济快速发展，新就业形态劳动者数量大幅增加。",
            "一、支持灵活就业人员参加养老保险和医疗保险，探索职业伤害保障办法。",
            "二、督促平台企业优化算法规则，不得以算法压低劳动报酬。",
            "三、关注老年人在智能技术面前遇到的困难，消除数字鸿沟。",
        ],
        "table": [
            ["保障项目", "参保方式"],
            ["基本养老保险", "以灵活就业人员身份参保"],
            ["职业伤害保障", "平台企业按单缴费"],
        ],
    },
}


def make(doc_id: str, spec: dict[str, object]) -> Path:
    document = docx.Document()
    document.add_heading(str(spec["title"]), level=1)
    paragraphs = list(spec["paragraphs"])  # type: ignore[call-overload]
    for text in paragraphs[:2]:
        document.add_paragraph(text)
    table = spec["table"]
    if table:
        rows = list(table)  # type: ignore[call-overload]
        grid = document.add_table(rows=len(rows), cols=len(rows[0]))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    for text in paragraphs[2:]:
        document.add_paragraph(text)
    document.core_properties.created = FIXED
    document.core_properties.modified = FIXED
    document.core_properties.title = str(spec["title"])
    out = HERE / f"{doc_id}.docx"
    document.save(str(out))
    return out


if __name__ == "__main__":
    for doc_id, spec in DOCS.items():
        print(make(doc_id, spec))
