"""Municipality names in the letter reader's language and script, where a standard exonym exists."""

from __future__ import annotations

# AGS -> (German name, {language: name}) for the municipalities of the default scenarios (`scenario.PILOT_CITIES`
# and the city states). Keyed by AGS and checked against the German name: an offer that names the municipality
# otherwise keeps its own name. A language missing for a municipality means it uses the German name.
EXONYMS: dict[str, tuple[str, dict[str, str]]] = {
    "01002000": ("Kiel", {"uk": "Кіль", "ru": "Киль", "pl": "Kilonia"}),
    "02000000": ("Hamburg", {"uk": "Гамбург", "ru": "Гамбург"}),
    "03101000": ("Braunschweig", {"uk": "Брауншвейг", "ru": "Брауншвейг", "pl": "Brunszwik"}),
    "03102000": ("Salzgitter", {"uk": "Зальцгіттер", "ru": "Зальцгиттер"}),
    "04011000": ("Bremen", {"uk": "Бремен", "ru": "Бремен", "pl": "Brema"}),
    "04012000": ("Bremerhaven", {"uk": "Бремергафен", "ru": "Бремерхафен"}),
    "05111000": ("Düsseldorf", {"uk": "Дюссельдорф", "ru": "Дюссельдорф"}),
    "05170008": ("Dinslaken", {"uk": "Дінслакен", "ru": "Динслакен"}),
    "05382068": ("Troisdorf", {"uk": "Тройсдорф", "ru": "Тройсдорф"}),
    "08416036": ("Rottenburg am Neckar", {"uk": "Роттенбург-на-Неккарі", "ru": "Роттенбург-на-Неккаре"}),
    "09162000": ("München", {"uk": "Мюнхен", "ru": "Мюнхен", "pl": "Monachium"}),
    "11000000": ("Berlin", {"uk": "Берлін", "ru": "Берлин"}),
}


def local_name(ags: str, name: str, language: str) -> str:
    """The municipality's name as a reader of `language` knows it; the given (German) name where none is known."""
    german, names = EXONYMS.get(ags, ("", {}))
    if german != name:
        return name
    return names.get(language.split("_")[0], name)
