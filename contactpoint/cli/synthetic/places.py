"""English councils (real GSS codes and names) with the real postcode districts and post towns of
their areas, and a made-up gazetteer of streets and postcodes within those districts."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from contactpoint.cli.synthetic.names import SURNAMES, Weighted

# Letters used in the last two places of a postcode (never C, I, K, M, O or V).
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


@dataclass(frozen=True, slots=True)
class Address:
    lines: tuple[str, ...]
    town: str
    postcode: str


@dataclass(frozen=True, slots=True)
class Council:
    code: str  # GSS code
    name: str
    towns: tuple[tuple[str, tuple[str, ...]], ...]  # post town → its postcode districts
    phone: str  # Ofcom's drama range for the area: "#" is any digit
    ods_prefix: str  # GP practices' ODS codes start so
    children: int  # relative number of children (thousands)
    origins: tuple[float, ...]  # shares of families by origin, in `names.ORIGINS` order
    flats: float  # share of homes that are flats

    @property
    def districts(self) -> frozenset[str]:
        return frozenset(d for _, ds in self.towns for d in ds)


def _districts(spec: str) -> tuple[str, ...]:
    """ "M1-4 M8" → M1, M2, M3, M4, M8."""
    out: list[str] = []
    for part in spec.split():
        m = re.fullmatch(r"([A-Z]+)(\d+)-(\d+)", part)
        out += [f"{m[1]}{n}" for n in range(int(m[2]), int(m[3]) + 1)] if m else [part]
    return tuple(out)


def _council(code: str, name: str, towns: dict[str, str], phone: str, ods: str, children: int,
             origins: str, flats: float) -> Council:  # fmt: skip
    return Council(
        code, name, tuple((t, _districts(d)) for t, d in towns.items()), phone, ods, children,
        tuple(float(x) for x in origins.split()), flats,
    )  # fmt: skip


# Origins: english, south_asian, african, caribbean, eastern_european, irish, chinese.
COUNCILS: tuple[Council, ...] = (
    _council("E08000025", "Birmingham", {"Birmingham": "B1-21 B23-38 B42 B44", "Sutton Coldfield": "B72-76"},
             "0121 496 0###", "M85", 290, ".45 .30 .07 .08 .05 .03 .02", 0.2),
    _council("E08000003", "Manchester", {"Manchester": "M1-4 M8 M9 M11-16 M18-23 M40"},
             "0161 496 0###", "P84", 130, ".50 .20 .10 .05 .06 .05 .04", 0.3),
    _council("E08000035", "Leeds", {"Leeds": "LS1-20 LS25-27", "Otley": "LS21", "Wetherby": "LS22 LS23",
                                     "Pudsey": "LS28"},
             "0113 496 0###", "B86", 170, ".70 .10 .06 .03 .06 .03 .02", 0.15),
    _council("E09000033", "Westminster", {"London": "W1B W1D W1F W1G W1H W1J W1K W1U W1W W2 W9 NW1 NW8 "
                                                    "SW1E SW1H SW1P SW1V SW1W WC2N"},
             "020 7946 0###", "E87", 40, ".45 .12 .14 .05 .08 .04 .04", 0.8),
    _council("E08000012", "Liverpool", {"Liverpool": "L1-19 L24 L25 L27"},
             "0151 496 0###", "N82", 95, ".80 .03 .05 .02 .03 .05 .02", 0.15),
    _council("E06000018", "Nottingham", {"Nottingham": "NG1-3 NG5-8 NG11"},
             "0115 496 0###", "C84", 65, ".62 .12 .08 .08 .06 .02 .02", 0.2),
    _council("E08000032", "Bradford", {"Bradford": "BD1-10 BD12-15", "Keighley": "BD20-22",
                                       "Shipley": "BD17 BD18", "Bingley": "BD16", "Ilkley": "LS29"},
             "01632 960###", "B83", 150, ".50 .40 .02 .02 .04 .01 .01", 0.1),
    _council("E06000023", "Bristol", {"Bristol": "BS1-11 BS13 BS14 BS16"},
             "0117 496 0###", "L81", 95, ".75 .05 .08 .05 .04 .01 .02", 0.25),
    _council("E08000021", "Newcastle upon Tyne", {"Newcastle upon Tyne": "NE1-7 NE13 NE15"},
             "0191 498 0###", "A86", 60, ".80 .08 .04 .01 .03 .01 .03", 0.25),
    _council("E09000030", "Tower Hamlets", {"London": "E1 E1W E2 E3 E14"},
             "020 7946 0###", "F84", 65, ".30 .45 .09 .04 .06 .02 .04", 0.85),
    _council("E06000016", "Leicester", {"Leicester": "LE1-5"},
             "0116 496 0###", "C82", 80, ".45 .37 .08 .03 .05 .01 .01", 0.15),
    _council("E10000016", "Kent", {"Maidstone": "ME14-17", "Canterbury": "CT1-4", "Ashford": "TN23-27",
                                   "Tunbridge Wells": "TN1-4", "Dartford": "DA1 DA2", "Gravesend": "DA11-13",
                                   "Folkestone": "CT18-20", "Sevenoaks": "TN13-15", "Margate": "CT9",
                                   "Ramsgate": "CT11 CT12", "Sittingbourne": "ME9 ME10", "Faversham": "ME13"},
             "01632 960###", "G82", 330, ".88 .03 .03 .01 .04 .005 .005", 0.1),
    _council("E10000012", "Essex", {"Chelmsford": "CM1-3", "Colchester": "CO1-7", "Basildon": "SS13-16",
                                    "Harlow": "CM17-20", "Brentwood": "CM13-15", "Braintree": "CM7",
                                    "Clacton-on-Sea": "CO15 CO16", "Witham": "CM8"},
             "01632 960###", "F81", 300, ".88 .03 .04 .015 .03 .005 .005", 0.1),
    _council("E10000017", "Lancashire", {"Preston": "PR1-5", "Chorley": "PR6 PR7", "Lancaster": "LA1",
                                         "Morecambe": "LA3 LA4", "Burnley": "BB10-12", "Skelmersdale": "WN8"},
             "01632 960###", "P81", 260, ".84 .10 .01 .005 .03 .01 .005", 0.1),
)  # fmt: skip
BY_CODE = {c.code: c for c in COUNCILS}
COUNCIL_WEIGHTS = Weighted([c.code for c in COUNCILS], [c.children for c in COUNCILS])


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_STEMS = _words(
    "Oak Elm Ash Beech Birch Cedar Willow Maple Hawthorn Chestnut Rowan Holly Church Mill Station Park "
    "High Victoria Albert Queen's King's Princess Windsor York Clarence Grosvenor Wellington Nelson "
    "Trafalgar Stanley Derby Lancaster Shakespeare Byron Tennyson Milton Chaucer Cromwell Salisbury "
    "Marlborough Devonshire Cavendish Brook Meadow Orchard Spring Green Moor Heath Field Hill Bank Cross "
    "Bridge Water Canal Coronation Jubilee School Manor Grange Abbey Priory Chapel Rectory Vicarage "
    "Foxglove Primrose Bluebell Lavender Heather Fern Cherry Poplar Sycamore Larch Laburnum Alexandra "
    "Belgrave Hamilton Gladstone Peel Russell Ashfield Woodland Fairfield Highfield Newlands Springfield"
)
_SUFFIXES = Weighted(
    _words(
        "Road Street Avenue Close Lane Drive Grove Way Crescent Gardens Terrace Place Court Mews Walk Rise"
    ),
    [30, 25, 8, 8, 7, 6, 4, 3, 3, 2, 2, 1, 1, 0.5, 0.5, 0.5],
)
_BLOCKS = _words("House Court Heights Lodge Tower Point Mansions")
_HOUSES = ("Rose Cottage", "The Old Rectory", "Orchard House", "The Bungalow", "Ivy Cottage", "Meadow View")


def postcode(rng: random.Random, district: str, sector: int | None = None) -> str:
    """A postcode in `district`, e.g. "M14 5RG"."""
    sector = rng.randrange(10) if sector is None else sector
    return f"{district} {sector}{rng.choice(INWARD_LETTERS)}{rng.choice(INWARD_LETTERS)}"


@dataclass(frozen=True, slots=True)
class Street:
    name: str
    town: str
    postcodes: tuple[str, ...]
    houses: int


class Gazetteer:
    """A council's streets (names unique within a district, each with one to three postcodes),
    the same for the same seed. England has about 1.7 million postcodes for 11 million children;
    `streets` grows with the feed so that a postcode holds a handful of children, not hundreds."""

    def __init__(self, council: Council, seed: int, streets: int = 400) -> None:
        rng = random.Random(f"{seed}:{council.code}:streets")
        self.council = council
        districts = [(town, d) for town, ds in council.towns for d in ds]
        names: set[tuple[str, str]] = set()
        self.streets: list[Street] = []
        while len(self.streets) < streets:
            stem = rng.choice(_STEMS) if rng.random() < 0.6 else SURNAMES["english"].pick(rng)
            name = f"{stem} {_SUFFIXES.pick(rng)}"
            town, district = rng.choice(districts)
            if (name, district) in names:  # a name may recur in another district, as in England
                continue
            names.add((name, district))
            sector = rng.randrange(10)
            codes = tuple(postcode(rng, district, sector) for _ in range(rng.randint(1, 3)))
            self.streets.append(Street(name, town, codes, rng.choice((12, 30, 60, 120, 200))))

    def home(self, rng: random.Random) -> Address:
        """A home: a house, a flat or (rarely) a named house."""
        street = rng.choice(self.streets)
        number = str(rng.randint(1, street.houses))
        if rng.random() < 0.03:
            number += rng.choice("ab")
        code = rng.choice(street.postcodes)
        kind = rng.random()
        if kind < self.council.flats:
            flat = f"Flat {rng.randint(1, 40)}"
            if rng.random() < 0.5:
                return Address((flat, f"{number} {street.name}"), street.town, code)
            block = f"{rng.choice(_STEMS)} {rng.choice(_BLOCKS)}"
            return Address((f"{flat} {block}", street.name), street.town, code)
        if kind > 0.98:
            return Address((rng.choice(_HOUSES), street.name), street.town, code)
        return Address((f"{number} {street.name}",), street.town, code)

    def premises(self, rng: random.Random) -> Address:
        """The address of a school, surgery or office."""
        street = rng.choice(self.streets)
        return Address((f"{rng.randint(1, street.houses)} {street.name}",), street.town, street.postcodes[0])

    def stem(self, rng: random.Random) -> str:
        """A local place word for naming schools and surgeries."""
        return rng.choice(self.streets).name.split()[0] if rng.random() < 0.5 else rng.choice(_STEMS)


def phone(rng: random.Random, pattern: str) -> str:
    """A number from an Ofcom drama range (never a real line), written as `pattern`."""
    return "".join(str(rng.randrange(10)) if ch == "#" else ch for ch in pattern)
