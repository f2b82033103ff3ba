"""Shipped name frequencies: roughly what share of children in England bear a family name, or a
first given name, as `name_key` forms. Used for term-frequency adjustment, so that two records
that agree on "Smith" count for less than two that agree on "Okonkwo".

The figures are rounded approximations from public statistics (surname counts for England and
Wales; the ONS baby-name tables for the years of birth of children now under 18), in per cent of
all children, both sexes together. They only need to be right to within a factor of two or so;
`em.name_frequencies` computes real ones from a registry's own records."""

from __future__ import annotations

from types import MappingProxyType

_FAMILY = """
smith 1.15 jones .85 williams .68 taylor .58 brown .56 davies .52 evans .40 wilson .37 thomas .37 johnson .36
roberts .35 robinson .29 thompson .28 wright .27 walker .26 white .26 edwards .26 hughes .26 green .25
hall .25 lewis .24 harris .24 clarke .23 patel .24 jackson .22 wood .21 turner .21 martin .20 cooper .20
hill .20 ward .19 morris .19 moore .19 clark .19 lee .19 king .19 baker .19 harrison .18 morgan .18
allen .18 james .18 scott .17 phillips .17 watson .17 davis .17 parker .16 price .16 bennett .16 young .16
griffiths .16 mitchell .15 kelly .15 cook .15 carter .15 richardson .15 bailey .15 collins .15 bell .14
shaw .14 murphy .14 miller .14 cox .14 richards .14 khan .16 marshall .13 anderson .13 simpson .13
ellis .13 adams .13 singh .14 begum .12 wilkinson .12 foster .12 chapman .12 powell .12 webb .12
rogers .12 gray .12 mason .12 ali .13 hunt .12 hussain .12 campbell .11 matthews .11 owen .11 palmer .11
holmes .11 mills .11 barnes .11 knight .11 lloyd .11 butler .11 russell .11 barker .10 fisher .10
stevens .10 jenkins .10 murray .10 dixon .10 harvey .10 graham .10 pearson .10 ahmed .11 fletcher .10
walsh .10 kaur .10 gibson .09 howard .09 andrews .09 stewart .09 elliott .09 reynolds .09 saunders .09
payne .09 fox .09 ford .09 pearce .09 day .09 brooks .09 west .09 lawrence .09 cole .09 atkinson .09
bradley .09 spencer .09 gill .08 dawson .08 ball .08 burton .08 obrien .08 watts .08 rose .08 booth .08
perry .08 ryan .08 grant .08 wells .08 armstrong .08 francis .08 rees .08 hayes .08 hart .08 hudson .08
newman .08 barrett .08 webster .08 hunter .08 gregory .08 carr .08 lowe .08 page .08 marsh .08 riley .08
dunn .08 woods .08 parsons .07 berry .07 stone .07 reid .07 holland .07 hawkins .07 harding .07
porter .07 robertson .07 newton .07 oliver .07 reed .07 kennedy .07 williamson .07 bird .07 gardner .07
shah .07 dean .07 lane .07 cooke .07 bates .07 henderson .07 parry .07 burgess .07 bishop .07 walton .07
burns .07 nicholson .07 shepherd .07 ross .07 cross .07 long .07 freeman .07 warren .07 nicholls .07
hamilton .07 byrne .06 sutton .06 mcdonald .06 yates .06 hodgson .06 robson .06 curtis .06 hopkins .06
oconnor .06 harper .06 coleman .06 watkins .06 moss .06 mccarthy .06 chambers .06 oneill .06 griffin .06
sharp .06 hardy .06 wheeler .06 potter .06 osborne .06 johnston .06 gordon .06 doyle .06 wallace .06
george .06 jordan .06 hutchinson .06 rowe .06 burke .06 may .06 pritchard .06 gilbert .06 willis .06
higgins .06 read .06 miles .06 stevenson .06 stephenson .06 hammond .06 arnold .06 buckley .06
walters .06 hewitt .06 barber .06 nelson .06 slater .06 austin .06 sullivan .06 whitehead .06 mann .06
frost .06 lambert .06 stephens .06 blake .06 akhtar .06 lynch .05 goodwin .05 barton .05 woodward .05
thomson .05 cunningham .05 quinn .05 barnett .05 baxter .05 bibi .05 clayton .05 nash .05 greenwood .05
jennings .05 holt .05 kemp .05 poole .05 gallagher .05 bond .05 stokes .05 tucker .05 davidson .05
fowler .05 heath .05 norman .05 middleton .05 lawson .05 banks .05 french .05 stanley .05 jarvis .05
gibbs .05 ferguson .05 hayward .05 carroll .05 douglas .05 dickinson .05 todd .05 barlow .05 peters .05
lucas .05 knowles .05 hartley .05 miah .05 simmons .05 morton .05 alexander .05 field .05 morrison .05
norris .05 townsend .05 preston .05 hancock .05 thornton .05 baldwin .05 burrows .05 briggs .05 storey .05
nowak .04 kowalski .04 wisniewski .03 rahman .05 islam .04 uddin .04 mahmood .04 iqbal .04 mohamed .04
nguyen .03 chen .03 wang .03 li .03 zhang .03 okafor .02 adeyemi .02 mensah .02 kumar .04 sharma .04
"""

_GIVEN = """
oliver .55 harry .50 jack .50 george .45 noah .40 charlie .42 jacob .40 alfie .36 freddie .32 oscar .35
leo .36 thomas .38 james .38 william .32 muhammad .32 mohammed .16 mohammad .07 henry .26 joshua .32
archie .30 ethan .30 isaac .26 joseph .27 samuel .26 daniel .27 max .24 lucas .24 logan .22 arthur .22
theo .20 theodore .12 alexander .20 riley .20 dylan .20 mason .20 harrison .19 adam .20 lewis .18
benjamin .18 finley .18 jayden .14 tyler .15 edward .15 sebastian .14 luke .15 jake .15 matthew .16
ryan .15 callum .12 liam .12 aaron .10 kai .10 louie .10 toby .12 reuben .10 elijah .10 frankie .09
albie .08 ronnie .08 tommy .09 hugo .09 teddy .09 jenson .08 luca .08 ollie .07 rory .09 zachary .08
harley .08 bobby .08 jaxon .06 carter .06 stanley .07 michael .10 david .09 nathan .08 owen .08
elliot .07 jamie .08 kian .06 connor .07 bailey .07 jude .07 arlo .05 rowan .05 ezra .05 albert .06
roman .05 caleb .06 ibrahim .08 yusuf .07 ali .07 omar .06 ahmed .05 hamza .06 ayaan .04 felix .06
austin .05 blake .05 cameron .06 charles .06 christopher .06 jackson .05 jesse .05 joel .05
jonathan .05 kieran .05 kyle .05 louis .07 marcus .05 patrick .05 peter .04 rhys .05 robert .05 seth .05
sonny .06 spencer .04 andrew .05 anthony .04 bradley .05 dexter .05 dominic .04 evan .05 finn .05
frederick .05 gabriel .06 harvey .10 jasper .04 morgan .05 nathaniel .03 oakley .04 olly .02 otis .04
preston .02 reggie .05 sam .04 tristan .03 vincent .02 zain .04 aiden .06 aidan .04 ben .03 billy .05
olivia .55 amelia .52 isla .40 ava .40 emily .42 sophie .30 sophia .28 lily .36 mia .36 isabella .30
grace .30 ella .30 evie .30 jessica .30 chloe .25 poppy .30 ruby .26 freya .26 charlotte .26 isabelle .14
daisy .20 phoebe .20 florence .20 sienna .18 willow .17 ivy .18 harper .14 millie .20 evelyn .14
rosie .15 matilda .15 alice .16 scarlett .15 layla .14 erin .14 lucy .18 holly .14 emma .12 hannah .13
elsie .15 imogen .12 lola .12 maisie .13 eva .12 zara .10 megan .12 katie .10 amber .10 molly .15
lacey .07 leah .08 esme .10 maya .10 lilly .07 hallie .05 bella .06 aria .08 georgia .08 eleanor .09
niamh .06 summer .07 heidi .06 darcy .06 gracie .08 lottie .06 ellie .12 mila .07 ayla .05 eliza .06
elizabeth .07 thea .06 violet .07 rose .05 mya .05 orla .04 aisha .06 fatima .06 maryam .06 zainab .04
amelie .07 annabelle .05 abigail .07 bethany .06 caitlin .06 elise .03 francesca .04 gabriella .04
hollie .05 jasmine .07 julia .03 lauren .07 lydia .05 madison .05 martha .05 maria .05 nancy .06
naomi .03 paige .05 rebecca .05 sara .04 sarah .06 skye .05 victoria .04 anna .06 aurora .06
beatrice .05 emilia .06 iris .04 jade .04 kayla .03 laila .05 lexi .05 luna .05 mollie .05 natalia .03
penelope .04 robyn .04 sofia .06 tilly .05 zoe .05 alexandra .03 katherine .02 catherine .02 kate .02
mary .03 jennifer .02 laura .03 nicole .02 olive .05 margot .03 edith .03 hazel .03 delilah .04
"""


def _table(text: str) -> MappingProxyType[str, float]:
    words = text.split()
    return MappingProxyType(
        {name: float(pct) / 100 for name, pct in zip(words[::2], words[1::2], strict=True)}
    )


FAMILY: MappingProxyType[str, float] = _table(_FAMILY)
GIVEN: MappingProxyType[str, float] = _table(_GIVEN)
