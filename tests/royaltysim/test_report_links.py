"""The run report links the documentation of each mechanism it used, and every link lands on a heading that exists.

Links are checked against the headings of the Markdown files themselves, slugged as GitHub does
(``test_docs._anchors``), not against the report's own list of sections.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

import royaltysim
from royaltysim.report import DOCS, doc_href, github_slug, mechanism_links, write_report
from royaltysim.schemes import SCHEMES

from .conftest import small_scenario
from .test_docs import _anchors

_HREF = re.compile(r'href="([^"]+)"')


def _doc_links(page: Path) -> list[tuple[Path, str]]:
    """Every link of the page into a file: (the file it resolves to, the anchor)."""
    links = []
    for href in _HREF.findall(page.read_text()):
        if href.startswith("#"):
            continue
        target, _, anchor = href.partition("#")
        links.append(((page.parent / unquote(target)).resolve(), anchor))
    return links


def _assert_every_link_lands(page: Path) -> set[tuple[str, str]]:
    """Each link of ``page`` points at an existing heading of a file in docs/; returns (file name, anchor) pairs."""
    found = set()
    for target, anchor in _doc_links(page):
        assert target.is_file(), target
        assert target.parent == DOCS.resolve(), target
        assert anchor in _anchors(target.read_text()), f"{target.name}#{anchor}"
        found.add((target.name, anchor))
    text = page.read_text()
    for anchor in re.findall(r'href="#([^"]+)"', text):
        assert f'id="{anchor}"' in text, anchor
    return found


@pytest.fixture(scope="module")
def corpus_results(run_dir: Path) -> royaltysim.Results:
    raw = small_scenario(run_dir, steps=2, seeds=2)
    raw["schemes"][0]["human"] = {"name": "user_centric"}
    raw["schemes"].append({"label": "hybrid", "ai": {"name": "hybrid"}})
    return royaltysim.run(raw, workers=1)


def test_report_links_each_arms_schemes_and_the_models_sections(corpus_results: royaltysim.Results,
                                                               tmp_path: Path) -> None:
    page = write_report(corpus_results, tmp_path / "nested" / "run")
    found = _assert_every_link_lands(page)
    assert {("schemes.md", s) for s in ("the-two-pools", "user_centric", "pro_rata", "similarity", "causal",
                                         "hybrid")} <= found
    odd = {anchor for name, anchor in found if name == "ODD.md"}
    assert {"3-process-overview-and-scheduling", "49-stochasticity", "71-listening", "72-revenue-pools-and-settlement",
            "73-what-creators-learn-from-the-market", "74-creators-decisions", "75-ai-quality",
            "76-creator-populations-and-true-contribution", "411-observation", "77-welfare-and-measures"} <= odd
    text = page.read_text()
    assert "creators of the attribution run" in text and "opting out" not in text  # a corpus run, no opt-outs


def test_a_fitted_run_with_every_behaviour_says_so_and_its_links_land(run_dir: Path, tmp_path: Path) -> None:
    raw = small_scenario(run_dir, steps=2, seeds=1,
                         source={"kind": "fitted", "run": str(run_dir), "n_creators": 40, "attribution_snr": 2.0},
                         behaviour={"opt_out": True, "imitation": True, "flooding": True},
                         platform={"ai_listening_share": 0.0})
    res = royaltysim.run(raw)
    page = write_report(res, tmp_path / "fitted")
    found = _assert_every_link_lands(page)
    assert ("ODD.md", "75-ai-quality") not in found  # no AI listening: AI quality plays no part
    what = " ".join(m["what"] for m in mechanism_links(res, tmp_path / "fitted"))
    for phrase in ("opting out of AI training", "imitating the AI's style", "flooding the catalogue",
                   "a population of 40", "signal-to-noise ratio of 2"):
        assert phrase in what, phrase


def test_every_scheme_and_every_odd_section_the_report_can_name_exists() -> None:
    schemes = _anchors((DOCS / "schemes.md").read_text())
    for name in SCHEMES:
        href = doc_href("schemes.md", f"`{name}`", DOCS)
        assert href == f"schemes.md#{name}" and name in schemes
    assert github_slug("7.4 Creators' decisions") == "74-creators-decisions"
    assert github_slug("`pro_rata`") == "pro_rata"


def test_links_follow_a_published_docs_url_or_name_the_section_without_a_folder(
        corpus_results: royaltysim.Results, tmp_path: Path) -> None:
    page = write_report(corpus_results, tmp_path / "url", docs="https://example.org/royaltysim/docs")
    hrefs = [h for h in _HREF.findall(page.read_text()) if not h.startswith("#")]
    assert hrefs and all(h.startswith("https://example.org/royaltysim/docs/") for h in hrefs)
    assert "https://example.org/royaltysim/docs/ODD.md#71-listening" in hrefs
    page = write_report(corpus_results, tmp_path / "none", docs=tmp_path / "no-docs-here")
    text = page.read_text()
    assert not [h for h in _HREF.findall(text) if not h.startswith("#")]
    assert "ODD 7.1 Listening (docs/ODD.md, 7.1 Listening)" in text
