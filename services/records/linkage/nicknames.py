"""English given names and the short forms children are known by (Bill for William, Katie for
Catherine), so that a school's "Bill" and a GP's "William" compare as the same name.

Names are grouped; two names are nickname-equivalent when some group holds both. A short form may
sit in several groups ("Alex": Alexander and Alexandra), and equivalence is not carried through
it: Alexander and Alexandra are not equivalent. Spelling variants that differ by a letter or two
are left to Jaro-Winkler; a group lists those it would miss. Keys are `name_key` forms."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from services.records.linkage.spelling import one_edit

_GROUPS = """
william will bill billy willy willie liam wills
elizabeth elisabeth liz lizzie lizzy beth betty bess bessie eliza elsie libby lisa liza betsy bette lilibet
katherine catherine kathryn katharine kate katie katy cathy kathy kat kay kitty cate
alexander aleksander alex alec sandy xander aleks olek sasha
alexandra aleksandra alex alexa sandra sandy lexi lexie sasha ali ally; thomas tom tommy thom
margaret maggie peggy meg margo madge marge margie greta rita; robert rob robbie bob bobby bert robin
richard rich richie rick ricky dick dicky; james jim jimmy jamie jem; john jack johnny jon jonny jonno
jonathan jon jonny jonty jonno; michael mike mikey mick micky mickey mitch
christopher kristopher chris kit topher christy
christine christina kristina chris chrissie tina kirsty kirsten; nicholas nick nicky nico
nicola nicole nicky nikki; daniel dan danny; danielle dani; matthew matt matty; joseph jozef joe joey jo
joshua josh; benjamin ben benny benji; samuel sam sammy; samantha sam sammy sammie
edward ed eddie eddy ted teddy ned; edmund ed eddie ned; henry harry hal hank; harold harry hal
charles charlie chas chuck charley; charlotte charlie lottie lotty
frederick fredrick frederic fred freddie freddy; george georgie; georgia georgie gina
georgina georgie gina; anthony antony tony ant; andrew andy drew; peter pete; patrick pat paddy
patricia pat patty patsy trish tricia; stephen steven steve stevie; stephanie steph stevie
timothy tim timmy; david dave davy davie; jacob jakub jakob jake kuba; alfred alfie alf fred
albert bert bertie al albie; archibald archie; theodore theo ted teddy; oliver ollie olly
olivia liv livvy ollie livia; isabella isabelle isabel isobel izzy izzie bella belle issy
amelia millie milly mia; emily em emmy millie; millicent millie milly
eleanor elinor ellie nell nellie nora elle; helen nell nellie; ellen ellie nell; abigail abbie abby gail
rebecca becky becca bex; victoria wiktoria vicky vickie tori wika; jennifer jen jenny jenna
jessica jess jessie; deborah debra debbie deb; susan sue susie suzy; suzanne susanne sue suzie
jacqueline jackie jacqui; josephine jo josie; joanne joanna jo; madeleine madeline madelyn maddie maddy
matilda tilly tillie mattie; florence flo florrie flossie; penelope penny; dorothy dot dotty dolly
mary molly polly mae may mamie; sarah sara sally sadie; ann anne anna annie nan nancy; hannah hanna annie
jane janie jenny; janet jan jess; louise louisa lou lulu; louis lewis lou louie; lucy lucie lu
lucas luca luka
gabriel gabe gabby; gabriella gabriela gabrielle gabby gabi ella
frances francesca fran frankie fanny chesca; francis frank frankie; franklin frank
lawrence laurence larry laurie; laura laurie lori; leonard leo len lenny; leonardo leo
raymond ray; ronald ron ronnie; donald don donny; kenneth ken kenny; gerald gerry jerry
jeremy jeremiah jerry jez; geoffrey jeffrey geoff jeff; gregory greg; philip phillip phil pip
vincent vince vinny; zachary zachariah zach zack zac zak; nathaniel nathan nat nate; nathan nat nate
maximilian max maxi; maxwell max; sebastian seb; dominic dom; benedict ben benny; reginald reg reggie
augustus gus; angus gus; cameron cam; isaac ike zac
mohammed muhammad mohammad mohamed muhammed mohamad mo; katarzyna kasia; magdalena magda; wojciech wojtek
cecilia cecily cissy; constance connie; cynthia cindy; lucinda cindy lucy; christian chris
caroline carolyn carol carrie caz; evelyn evie eve; eve eva evie; evangeline evie; genevieve gen evie
harriet hattie harry; henrietta hetty etta; imogen immy; jemima jem mima; kimberley kimberly kim
lillian lilian lily lilly lil lillie; miranda mandy; amanda mandy; natalie natalia nat tally
natasha tasha tash; pamela pam; rosemary rosie rose; rose rosie; rosalind rosie roz
theresa teresa tess tessa terri; valerie val; veronica ronnie; virginia ginny; winifred winnie
gwendolyn gwen; guinevere gwen; wilfred wilf fred; walter walt wally; terence terry; bartholomew bart
barnaby barney; bernard bernie barney; arthur art artie; adrian ade; alan allan allen al
alistair alastair ali; alison allison ali ally; alice ali allie; andrea andie; angela angie
annabel annabelle bella belle; antonia toni; bethany beth; bridget biddy bridie; camilla millie cammie
cassandra cassie; clementine clemmie clem; diana di; edith edie; esther essie hetty; felicity fliss
gillian jillian gill jill; hilary hil; judith judy jude; julia jules julie; julian jules; katrina kat
marjorie marge margie; martha mattie patty; maureen mo; melanie mel; melissa mel missy lissa
michelle shell; mildred millie; miriam mim; priscilla cilla; prudence prue; rachel rach; roberta bobbie
ruth ruthie; sophia sophie soph; tabitha tabby; vanessa nessa ness; wilhelmina mina billie; ashley ash
bradley brad; callum cal; calvin cal; connor con; declan dec; finlay finley finn; harrison harry
kieran kieron; lachlan lachie; mitchell mitch; montgomery monty; oscar ossie; raphael rafe raf
reuben ruben rube; rodney rod; roger rodge; roland roly; solomon sol; stanley stan; stuart stewart stu
tobias toby; tristan tris; victor vic; abraham abe bram; ezekiel zeke; elijah eli; elias eli
emmanuel manny; ernest ernie; eugene gene; hugh hughie; hubert bert; ignatius iggy; jerome jerry
malcolm mal; mark marc; marcus marc; martin marty; matthias matt; maurice mo morris; mervyn merv
neville nev; norman norm; percival percy; quentin quin; randolph randy; sidney sydney sid; simon si
tyrone ty; vernon vern; wesley wes; zuzanna zuzia; oluwaseun seun; oluwatoyin toyin; abdirahman abdi
abdullah abdul; grace gracie; zofia zosia; temitope tope temi; folasade sade shade fola; oluwafemi femi
oluwatobi tobi; oluwakemi kemi; oluwadamilola damilola dami; adebayo bayo; ayomide ayo; ifeoluwa ife
chukwuemeka emeka; chukwudi chudi; chinonso nonso; ikechukwu ike ikenna
"""

_WRITTEN = [group.split() for line in _GROUPS.splitlines() for group in line.split(";") if group.strip()]
GROUPS: tuple[frozenset[str], ...] = tuple(frozenset(group) for group in _WRITTEN)
_MEMBERSHIP: dict[str, frozenset[int]] = {}
for _index, _group in enumerate(GROUPS):
    for _name in _group:
        _MEMBERSHIP[_name] = _MEMBERSHIP.get(_name, frozenset()) | {_index}
_NONE: frozenset[int] = frozenset()
# The first name written in each group: the full form that its short forms stand for.
CANONICAL: tuple[str, ...] = tuple(group[0] for group in _WRITTEN)


def groups_of(key: str) -> frozenset[int]:
    """The indices of the nickname groups that hold a given-name key (empty when none does)."""
    return _MEMBERSHIP.get(key, _NONE)


@lru_cache(maxsize=1 << 14)
def nicknames(a: str, b: str) -> bool:
    """Whether two different given-name keys are the same name by a known short form."""
    return a != b and not groups_of(a).isdisjoint(groups_of(b))


def shared_full_forms(a: str, b: str) -> tuple[str, ...]:
    """The full forms of the groups that hold both keys ("mia"/"millie" → ("amelia",)), sorted."""
    return tuple(sorted({CANONICAL[i] for i in groups_of(a) & groups_of(b)}))


def canonical_forms(key: str) -> tuple[str, ...]:
    """The full forms a given-name key may stand for ("bill" → "william"), sorted; the key itself
    when no group holds it. Both sides of a pair give the same form for Bill and William, which
    is what blocking needs."""
    indices = groups_of(key)
    if not indices:
        return (key,)
    return tuple(sorted({CANONICAL[i] for i in indices}))


_MIN_TYPO = 5
_BY_LENGTH: dict[int, tuple[str, ...]] = {}
for _name in sorted(_MEMBERSHIP):
    _BY_LENGTH[len(_name)] = (*_BY_LENGTH.get(len(_name), ()), _name)


def groups_near(key: str, near: Callable[[str, str], bool] = one_edit) -> set[int]:
    """The groups of `key` and of every listed name `near` it (by default within one typo:
    "leonnard" → Leonard's); `near` is only asked of names within one letter of its length."""
    found: set[int] = set(groups_of(key))
    for length in (len(key) - 1, len(key), len(key) + 1):
        for name in _BY_LENGTH.get(length, ()):
            if near(key, name):
                found |= groups_of(name)
    return found


@lru_cache(maxsize=1 << 12)
def nicknames_with_typo(a: str, b: str) -> bool:
    """Whether two given-name keys are nicknames of one another once one typo is allowed in either
    ("Leonnard"/"Lenny"). Slow (it searches the whole list), so only for rare, careful checks."""
    # A typo in a short name makes another name too easily ("Roy" is one letter from "Rob").
    return (len(a) >= _MIN_TYPO and not groups_near(a).isdisjoint(groups_of(b))) or (
        len(b) >= _MIN_TYPO and not groups_near(b).isdisjoint(groups_of(a))
    )
