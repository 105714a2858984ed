"""Known discovery papers of the anchor catalogs and the parsing of citation text into them.

A lenscat ``ref`` cell (or a generic CSV's ``reference``) is split into citations; each is
reduced to arXiv ids (new and old style), DOIs and ADS bibcodes, looked up in REFERENCES; a
free-text 'Author et al. year' citation matches a known paper by surname + year. The anchor set
of a paper (SETS) follows where it found its lenses: see :mod:`.anchors` for the sets' meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SET_GROUND = "ground"  # primary: discovered in DECam (DES / DECaLS / DR8-DR9) imaging
SET_SLACS_BELLS = "slacs_bells"
SET_GROUND_OTHER = "ground_other"
SET_OTHER = "other"
SETS = (SET_GROUND, SET_SLACS_BELLS, SET_GROUND_OTHER, SET_OTHER)


@dataclass(frozen=True)
class Reference:
    """One discovery paper: ``key`` (short id), ``label`` (Author year), ``anchor_set``,
    ``ids`` (arXiv ids, DOIs, bibcodes or literal words as they appear in lenscat's ``ref``)."""

    key: str
    label: str
    anchor_set: str
    ids: tuple[str, ...]


# Identified from lenscat's ref column and its README (the bare-URL rows are its SuGOHI import).
REFERENCES: tuple[Reference, ...] = (
    # primary: DECam ground-based imaging searches
    Reference("huang2020", "Huang et al. 2020 (DECaLS)", SET_GROUND, ("1906.00970",)),
    Reference("huang2021", "Huang et al. 2021 (DESI LS DR8)", SET_GROUND, ("2005.04730",)),
    Reference("storfer2022", "Storfer et al. 2022 (DESI LS DR9)", SET_GROUND, ("2206.02764",)),
    Reference("stein2021", "Stein et al. 2021 (DESI LS DR9, self-supervised)", SET_GROUND, ("2110.00023",)),
    Reference("jacobs2019", "Jacobs et al. 2019 (DES, CNN)", SET_GROUND, ("1811.03786", "10.3847/1538-4365/ab26b6")),
    Reference("rojas2021", "Rojas et al. 2021 (DES, CNN)", SET_GROUND, ("2109.00014",)),
    Reference("zaborowski2022", "Zaborowski et al. 2022 (DES Y6, CNN)", SET_GROUND, ("2210.10802",)),
    Reference("agel2022", "Tran et al. 2022 (AGEL, DES/DECaLS)", SET_GROUND, ("2205.05307",)),
    Reference("odonnell2021", "O'Donnell et al. 2021 (DES Y3 arcs)", SET_GROUND, ("2110.02418",)),
    Reference("diehl2017", "Diehl et al. 2017 (DES Y1)", SET_GROUND, ("10.3847/1538-4365/aa8667",)),
    # spectroscopic selection + HST confirmation
    Reference("slacs", "SLACS (Bolton 2008, Auger 2009, Shu 2017)", SET_SLACS_BELLS,
              ("SLACS", "0805.1931", "0911.2471", "2019yCat..18510048S")),
    Reference("bells", "BELLS (Brownstein 2012) + BELLS GALLERY (Shu 2016)", SET_SLACS_BELLS,
              ("1112.3683", "1604.01842")),
    # other ground-based imaging searches (different depth / seeing from DR10)
    Reference("petrillo2018", "Petrillo et al. 2018 (KiDS)", SET_GROUND_OTHER, ("1812.03168",)),
    Reference("li2021", "Li et al. 2021 (KiDS)", SET_GROUND_OTHER, ("2110.01905",)),
    Reference("canameras2020", "Canameras et al. 2020 (Pan-STARRS)", SET_GROUND_OTHER, ("2004.13048",)),
    Reference("canameras2021", "Canameras et al. 2021 (HSC)", SET_GROUND_OTHER, ("2107.07829",)),
    Reference("shu2022", "Shu et al. 2022 (HSC)", SET_GROUND_OTHER, ("2201.11135",)),
    Reference("savary2021", "Savary et al. 2021 (UNIONS/CFIS)", SET_GROUND_OTHER, ("2110.11972",)),
    Reference("sugohi", "SuGOHI (HSC) candidate list", SET_GROUND_OTHER,
              ("1704.01585", "1809.07341", "1904.10465", "1905.10522", "1911.02587", "2002.01611",
               "2004.00634", "2006.16584", "2203.12805", "2312.07333",
               "SuGOHI Candidate List (2021) - www-utap.phys.s.u-tokyo.ac.jp/~oguri/sugohi/")),
    Reference("cfhtls", "CFHTLS searches (SL2S, RingFinder, Space Warps)", SET_GROUND_OTHER,
              ("1109.1821", "1403.1041", "1504.05587", "1307.4759", "1307.4764", "0610362",
               "10.1088/0004-637X/785/2/144")),
    # spectroscopic searches without arcs in ground imaging as the selection
    Reference("talbot", "Talbot et al. 2018-2022 (BOSS/eBOSS spectroscopic)", SET_OTHER,
              ("1803.03604", "2007.09006", "2206.09902")),
)
# Stein et al. 2021's list of previously known DR9 lenses (a literature compilation): its rows
# join the primary set only through a 2" match to a catalogued discovery.
STEIN_TRAINING = Reference("stein2021_known", "Stein et al. 2021 known-lens compilation (DR9)", SET_OTHER, ())

_ID_TO_REF: dict[str, Reference] = {i.lower(): r for r in REFERENCES for i in r.ids}
_ARXIV_NEW = re.compile(r"(?<![\d.])(\d{4}\.\d{4,5})(?:v\d+)?")
_ARXIV_OLD = re.compile(r"(?:astro-ph/|arxiv:)(\d{7})", re.I)
_DOI = re.compile(r"(10\.\d{4,9}/[^\s#|]+)")
_BIBCODE = re.compile(r"(\d{4}[A-Za-z&.]{2,}[\w.&]*?\d+[A-Z])(?:/|\b)")
_AUTHOR_YEAR = re.compile(r"^([^()|]+?) et al\. \((\d{4})\)")
# Free-text citations in user CSVs ("Huang et al. 2020", "Jacobs et al. (2019)"): surname + year
# of a known paper's label, for catalogs that give no arXiv id, DOI or bibcode.
_CITATION = re.compile(r"^\s*([A-Za-z'\-]+)(?: et al\.?| and [A-Za-z'\-]+)?,?\s*\(?(\d{4})[a-z]?\)?")
_CITATION_TO_REF: dict[tuple[str, str], Reference] = {}
for _r in REFERENCES:
    _m = _CITATION.match(_r.label)
    if _m:
        _CITATION_TO_REF.setdefault((_m.group(1).lower(), _m.group(2)), _r)


def _split_ref_tokens(ref: str) -> list[str]:
    """Individual citations of a lenscat ``ref`` cell ('A | B' and space-separated URLs)."""
    out: list[str] = []
    for part in str(ref).split(" | "):
        part = part.strip()
        if not part:
            continue
        if part.startswith("http") or " http" in part:
            out.extend(t for t in part.split() if t)
        else:
            out.append(part)
    return out


def _token_ids(token: str) -> list[str]:
    """Identifiers found in one citation token (arXiv ids, DOIs, bibcodes, the token itself)."""
    ids = [m.group(1) for m in _ARXIV_NEW.finditer(token)]
    ids += [m.group(1) for m in _ARXIV_OLD.finditer(token)]
    ids += [m.group(1).rstrip(".") for m in _DOI.finditer(token)]
    if "adsabs" in token:
        ids += [m.group(1) for m in _BIBCODE.finditer(token.split("/abs/")[-1])]
    ids.append(token.strip())
    return ids


def parse_references(ref: str) -> list[str]:
    """Reference keys of a ``ref`` cell, in order, without duplicates.

    Known papers map to their REFERENCES key (``"huang2021"``); an unknown 'Author et al.
    (year) - id' citation to ``"Author (year)"``; an unknown bare arXiv URL to ``"arXiv:<id>"``;
    anything else to its own text.
    """
    keys: list[str] = []
    for token in _split_ref_tokens(ref):
        ids = _token_ids(token)
        key = next((_ID_TO_REF[i.lower()].key for i in ids if i.lower() in _ID_TO_REF), None)
        if key is None:
            cited = _CITATION.match(token)
            known = _CITATION_TO_REF.get((cited.group(1).lower(), cited.group(2))) if cited else None
            key = known.key if known else None
        if key is None:
            m = _AUTHOR_YEAR.match(token)
            arxiv = [i for i in ids[:-1] if _ARXIV_NEW.fullmatch(i)]
            if m:
                key = f"{m.group(1)} ({m.group(2)})"
            elif arxiv:
                key = f"arXiv:{arxiv[0]}"
            else:
                key = token.strip()
        if key and key not in keys:
            keys.append(key)
    return keys


def reference_set(key: str) -> str:
    """Anchor set of one reference key (``other`` when unknown)."""
    for r in (*REFERENCES, STEIN_TRAINING):
        if r.key == key:
            return r.anchor_set
    return SET_OTHER
