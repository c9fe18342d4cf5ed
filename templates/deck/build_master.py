"""Build ``templates/deck/rox_master.pptx``, the slide master of the client deck.

Run it after changing the master's layout (the .pptx is committed, this script makes it
reproducible)::

    .venv/bin/python templates/deck/build_master.py

What it does to python-pptx's default template:

* 16:9 slides (13.333 x 7.5 in), the placeholders of the master and of every layout
  widened to match (the default template is 4:3);
* a brand bar across the top and a thin accent rule under it on the master, named
  ``rox-brand-bar`` and ``rox-accent-rule``: ``rox_helpers.deliverables`` recolours them
  in the client's colours from engagement.yml, so one master serves every client;
* Arial for titles and body text, titles 28 pt, body 16 pt.

The file is deterministic: the same script gives the same slide XML (the package's
timestamps are fixed).
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from lxml import etree
from pptx import Presentation
from pptx.dml.color import RGBColor
from pptx.enum.shapes import MSO_SHAPE
from pptx.oxml.ns import qn
from pptx.shapes.autoshape import Shape
from pptx.util import Emu, Inches, Pt

HERE = Path(__file__).resolve().parent
OUT = HERE / "rox_master.pptx"
WIDTH, HEIGHT = Emu(12192000), Emu(6858000)  # 13.333 x 7.5 in
FONT = "Arial"
#: default brand colours (ROX Workbook's own); replaced per client when a deck is built
PRIMARY, ACCENT = "0B3C5D", "D9B310"
FIXED_TIME = datetime(2026, 1, 1)


def _widen(shapes, factor: float) -> None:
    for shp in shapes:
        # only positions a shape sets itself; inherited ones follow the (widened) master
        if shp._element.spPr.find(qn("a:xfrm")) is not None:
            shp.left = Emu(int(shp.left * factor))
            shp.width = Emu(int(shp.width * factor))


def _bar(master, name: str, top: int, height: int, colour: str) -> None:
    tree = master.shapes._spTree
    ids = [int(x) for x in tree.xpath(".//p:cNvPr/@id")]
    sp = tree.add_autoshape(max(ids) + 1, name, MSO_SHAPE.RECTANGLE.value, 0, top, WIDTH, height)
    # behind the placeholders: right after the group properties
    tree.remove(sp)
    tree.insert(2, sp)
    shape = Shape(sp, master.shapes)
    shape.fill.solid()
    shape.fill.fore_color.rgb = RGBColor.from_string(colour)
    shape.line.fill.background()
    shape.shadow.inherit = False


def _fonts(master) -> None:
    styles = master.element.find(qn("p:txStyles"))
    for style, size in (("p:titleStyle", 2800), ("p:bodyStyle", 1600)):
        el = styles.find(qn(style))
        lvl1 = el.find(qn("a:lvl1pPr"))
        for lvl in el:
            rpr = lvl.find(qn("a:defRPr"))
            if rpr is None:
                continue
            latin = rpr.find(qn("a:latin"))
            if latin is None:
                latin = etree.SubElement(rpr, qn("a:latin"))
                # a:latin comes after fills and effects and before the other fonts
                rpr.remove(latin)
                ea = rpr.find(qn("a:ea"))
                (ea.addprevious(latin) if ea is not None else rpr.append(latin))
            latin.set("typeface", FONT)
        lvl1.find(qn("a:defRPr")).set("sz", str(size))


def build(out: Path = OUT) -> Path:
    prs = Presentation()
    factor = WIDTH / prs.slide_width
    prs.slide_width, prs.slide_height = WIDTH, HEIGHT
    master = prs.slide_master
    _widen(master.placeholders, factor)
    for layout in prs.slide_layouts:
        _widen(layout.placeholders, factor)
    _bar(master, "rox-brand-bar", 0, Inches(0.18), PRIMARY)
    _bar(master, "rox-accent-rule", Inches(0.18), Pt(3), ACCENT)
    _fonts(master)
    cp = prs.core_properties
    cp.title, cp.author, cp.last_modified_by = "ROX Workbook deck master", "ROX Workbook", ""
    cp.created = cp.modified = FIXED_TIME
    cp.revision = 1
    prs.save(out)
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
