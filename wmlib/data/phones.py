"""Phone symbols and their broad classes (vowel, stop, fricative, ...), shared by every speech source.

Festival's ``radio`` phone set, the CMU/ARPAbet symbols of forced aligners (stress digits stripped) and TIMIT's
61 symbols all map to the same classes, so phone-class probes (later chapters) compare across corpora.
"""
from __future__ import annotations

import re

SILENCE = "sil"

_CLASSES = {
    "vowel": "aa ae ah ao aw ax axr ay eh er ey ih ix iy ow oy uh uw ux ax-h",
    "stop": "b d g k p t q dx",
    "affricate": "ch jh",
    "fricative": "dh f s sh th v z zh hh hv",
    "nasal": "m n ng em en eng nx",
    "approximant": "l r w y el",
    "closure": "bcl dcl gcl kcl pcl tcl",
    SILENCE: "pau h# epi sil sp spn #",
}
PHONE_CLASS: dict[str, str] = {phone: cls for cls, phones in _CLASSES.items() for phone in phones.split()}
PHONE_CLASSES: tuple[str, ...] = tuple(_CLASSES)


def normalize_phone(symbol: str) -> str:
    """Lower-case, strip ARPAbet stress digits, and map every silence symbol to ``sil``.

    >>> normalize_phone("AA1"), normalize_phone("pau"), normalize_phone("h#")
    ('aa', 'sil', 'sil')
    """
    phone = re.sub(r"[0-9]", "", symbol.strip().lower())
    if phone == "" or PHONE_CLASS.get(phone) == SILENCE:
        return SILENCE
    return phone


def phone_class(phone: str) -> str:
    """The broad class of a (normalized) phone; ``other`` for symbols we do not know."""
    return PHONE_CLASS.get(normalize_phone(phone), "other")
