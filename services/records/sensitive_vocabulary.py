"""The vocabulary `sensitive` recognises services by: what sexual health, mental health and
substance misuse services in England are called, the organisations and brands that run them, the
words that only suggest them, and the ordinary services whose names contain such a word. Each
phrase is matched as `sensitive.service_name_tokens` reads it; the module's docstring says how a
name is read and which borderline decisions these lists make."""

from __future__ import annotations

from typing import Final, Literal

Category = Literal["sexual_health", "mental_health", "substance_misuse", "unclear"]

SEXUAL_HEALTH: Final = "sexual_health"
MENTAL_HEALTH: Final = "mental_health"
SUBSTANCE_MISUSE: Final = "substance_misuse"
UNCLEAR: Final = "unclear"

# fmt: off
# What the service does.
SERVICES: Final[dict[Category, tuple[str, ...]]] = {
    SEXUAL_HEALTH: (
        # sexual and reproductive health
        "sexual", "sexually", "sexualhealth", "sex health", "safe sex", "safer sex", "sex work",
        "sex worker", "reproductive", "SRH", "iSH", "CaSH clinic", "CaSH service", "GUM",
        "genito-urinary", "GU medicine", "GU clinic", "venereology",
        # contraception
        "contraception", "contraceptive", "family planning", "morning after pill", "LARC", "coil",
        "IUD", "IUS", "condom", "C-Card", "CCard",
        # infections
        "STI", "STD", "chlamydia", "gonorrhoea", "syphilis", "NCSP", "HIV", "PrEP clinic",
        "PrEP service", "PEPSE", "post exposure prophylaxis",
        # pregnancy
        "abortion", "termination of pregnancy", "pregnancy termination", "pregnancy advisory",
        "pregnancy advice", "pregnancy options", "pregnancy testing", "pregnancy test",
        "unplanned pregnancy", "crisis pregnancy", "teenage pregnancy", "teenage conception",
        # sexual violence and exploitation
        "SARC", "rape", "ISVA", "ChISVA", "CSE", "HSB",
        # more found by probing
        "genital warts", "genital", "herpes", "pill clinic", "contraceptive pill",
        # and by a probe of realistic names (6 December)
        "RSH", "SH clinic", "SH service", "CaSH team", "implant clinic", "FP clinic",
        "fam planning", "sx health", "STIs", "STDs", "implant fitting", "pill check",
        "PEP clinic", "PEP service",
        "contraceptive implant", "Nexplanon", "depo clinic", "Depo-Provera", "depo injection",
        "pre-exposure prophylaxis", "TOP service", "TOP clinic", "RASASC",
        # and by an examiner's probe (7 December): the sexual health advice centres' acronym
        "SHAC",
    ),
    MENTAL_HEALTH: (
        # mental health services
        "mental", "mentally", "MH", "MHS", "CAMHS", "CAHMS", "FCAMHS", "SCAMHS", "PCAMHS",
        "CYPMHS", "MHST", "EMHP", "CWP", "PWP", "TaMHS", "CMHT", "CMHS", "AMHP", "SMI",
        "MHFA", "SEMH", "emotional health", "emotional wellbeing", "wellbeing practitioner",
        "recovery college", "dual diagnosis",
        # psychology, psychiatry and therapies
        "psych", "psychological", "psychology", "psychologist", "psychiatry", "psychiatric",
        "psychiatrist", "neuropsychiatry", "psychotherapy", "psychotherapist", "psychotherapeutic",
        "psychodynamic", "psychoanalytic", "psychosocial", "psychosis", "psychotic", "IAPT",
        "talking therapies", "counselling", "counsellor", "CBT", "cognitive behavioural",
        "cognitive therapy", "cognitive analytic", "DBT", "dialectical", "EMDR", "MBT",
        "mentalisation", "MBCT", "family therapy", "systemic therapy", "play therapy",
        "art therapy", "drama therapy", "dramatherapy",
        # conditions
        "anxiety", "depression", "low mood", "OCD", "obsessive compulsive", "PTSD",
        "post traumatic", "traumatic stress", "panic", "phobia", "bipolar", "schizophrenia",
        "personality disorder", "EUPD", "conduct disorder", "gambling", "gaming disorder",
        # self-harm and suicide
        "self-harm", "selfharm", "self-injury", "suicide", "suicidal", "postvention",
        # eating disorders
        "eating disorder", "disordered eating", "anorexia", "bulimia", "binge eating", "ARFID",
        "CEDS", "CYP ED",
        # psychosis, crisis, liaison and inpatient care
        "EIP", "crisis team", "crisis resolution", "crisis line", "crisis cafe", "crisis house",
        "crisis care", "home treatment", "CRHT", "HTT", "street triage", "place of safety",
        "section 136", "S136", "rapid assessment interface and discharge", "adolescent unit",
        "adolescent inpatient", "GAU", "Tier 4 adolescent", "mother and baby unit", "MBU",
        # and by a probe of realistic names (6 December): CAMHS's other names and misspellings,
        # workers' titles, crisis and forensic services, eating disorders, gambling
        "CAMSH", "CHAMS", "EWMHS", "EHWB", "PMHW", "PMHT", "AMHS", "MMHS", "PNMH", "CRHTT",
        "RMN", "CPN", "111 option 2", "PND", "avoidant restrictive food intake", "counciling",
        "councilling", "counceling", "assertive outreach", "liaison and diversion", "section 117",
        "hearing voices", "parent infant relationship", "Theraplay", "family therapist",
        "systemic therapist", "play therapist", "art therapist", "drama therapist",
        "dramatherapist", "high intensity therapist", "CYPEDS", "self-harming", "gambler",
        "Gamblers Anonymous",
    ),
    SUBSTANCE_MISUSE: (
        "substance", "drug", "alcohol", "alcoholic", "addiction", "narcotic", "D&A", "DAAT",
        "DACT", "YPSMS", "detox", "detoxification", "residential rehab", "opiate",
        "opioid", "heroin", "cocaine", "cannabis", "ketamine", "psychoactive", "legal high",
        "solvent abuse", "methadone", "buprenorphine", "subutex", "naloxone",
        "substitute prescribing", "substitution therapy", "needle", "syringe", "NSP",
        "harm reduction", "harm minimisation", "chemsex", "hidden harm", "affected others",
        "problem drinking", "binge drinking", "drinkline", "SMART recovery",
        # image and performance enhancing drugs
        "IPED", "IPEDs", "steroid", "anabolic", "performance enhancing",
        # more found by probing
        "novel psychoactive", "spice and NPS", "overdose", "narcotics anonymous",
        "alcoholics anonymous", "cocaine anonymous", "parental drinking", "parental alcohol",
        "parental substance", "parental drug", "affected by drink", "affected by drugs",
        # and by a probe of realistic names (6 December)
        "YPDAS", "YPDS", "addict", "addicted", "supervised consumption", "solvent misuse",
        "subs misuse", "CDAT",
        "solvent", "Families Anonymous",
    ),
}

# Charities, providers, brands and trusts whose name alone discloses the category.
ORGANISATIONS: Final[dict[Category, tuple[str, ...]]] = {
    SEXUAL_HEALTH: (
        "Brook", "Umbrella Health", "Axess", "SH:24", "56 Dean Street", "Dean Street Express",
        "Mortimer Market", "Jefferiss Wing", "Claude Nicol", "Terrence Higgins", "THT",
        "George House Trust", "Positive East", "BPAS", "MSI", "Marie Stopes", "NUPAS",
        "Come Correct", "Lucy Faithfull", "Stop It Now", "Clinic in a Box",
        "Terrence Higgins Trust",
        # found by a probe of realistic names (6 December)
        "iCaSH", "MESMAC", "Naz Project", "Positively UK", "Sexwise", "FPA", "Freetest", "RU Clear",
        "Hathersage Centre", "Brook Advisory", "Brook Advisory Centre", "Brook Centre",
        "YorSexualHealth", "Burrell Street Clinic", "Garden Clinic", "Saturn Centre",
        "Survivors Manchester",
        # and by a third (6 December): clinics known by their building, SARCs, brands
        "Arden Centre", "Caldecot Centre", "John Hunter Clinic", "Ambrose King Centre",
        "Margaret Pyke Centre", "Respect Yourself", "Fettle", "Emerald Centre", "Juniper Lodge",
        "Letting the Future In", "Survivors UK",
    ),
    MENTAL_HEALTH: (
        "Mind", "MindEd", "MindMate", "YoungMinds", "Young Minds", "Healthy Minds", "Minds Matter",
        "VitaMinds", "Vita Minds", "Kooth", "Qwell", "XenZone", "Togetherall", "Big White Wall",
        "SilverCloud", "Place2Be", "Anna Freud", "42nd Street", "Off the Record",
        "Forward Thinking Birmingham", "Chilypep", "YIACS", "Samaritans", "Papyrus", "HOPELINEUK",
        "Hopeline", "Shout 85258", "85258", "Campaign Against Living Miserably", "Calm Harm",
        "Rethink", "SANE", "SANEline", "TalkWorks", "Talk Works", "Talking Change", "iCope",
        "iTalk", "Steps2Wellbeing", "Steps to Wellbeing", "Steps2Change", "Let's Talk Wellbeing",
        "Talking Space", "Talk Liverpool", "Tavistock", "Maudsley", "Bethlem", "Priory Hospital",
        "Priory Group", "Priory Healthcare", "Priory Adolescent", "Cygnet Hospital",
        "Cygnet Health", "Cygnet Healthcare", "Huntercombe", "Ellern Mede", "TEWV",
        "Tees Esk and Wear Valleys", "Sussex Partnership", "Surrey and Borders", "KMPT", "NSFT",
        "LYPFT", "Navigo", "AWP", "SHSC", "CNTW", "Tavistock and Portman",
        # found by a probe of realistic names (6 December): brands, and trusts that are mental
        # health trusts, named as the organisation
        "stem4", "Tellmi", "MeeTwo", "selfharmUK", "Schoen Clinic", "Healios", "Talking Helps",
        "Beat Youthline", "GamCare", "Gordon Moody", "SLaM", "GMMH", "BSMHFT", "Pennine Care",
        "Devon Partnership", "Northumberland Tyne and Wear", "Lincolnshire Partnership",
        "Hertfordshire Partnership", "North Staffordshire Combined", "Camden and Islington",
        "Derbyshire Healthcare", "Black Country Healthcare", "LSCFT", "Barnet Enfield and Haringey",
        # and by a second, independent one (6 December)
        "Leeds and York Partnership", "Norfolk and Suffolk NHS",
        "Norfolk and Suffolk Foundation Trust", "Medway NHS and Social Care Partnership",
        "Medway and Social Care Partnership", "BeeU", "Bromley Y", "Compass Buzz", "YPAS",
        "Brandon Centre", "Kaleidoscope Plus",
        # and by a third (6 December): local brands with no word that tells
        "Outlook South West", "Darwin Centre", "Croft Child and Family Unit", "Keep Your Head",
        "Thorneywood", "Hopewood", "Coborn Centre", "Off Centre", "Sutton Uplift", "Merton Uplift",
        "Mosaic Clubhouse", "MAC-UK", "Shine Lincolnshire", "Time to Talk Greenwich",
        "Greenwich Time to Talk", "Young People's Consultation Service",
        # and by an examiner's probe (7 December): YPAS written out
        "Young People's Advisory Service",
    ),
    SUBSTANCE_MISUSE: (
        "CGL", "Change Grow Live", "Turning Point", "We Are With You", "Addaction", "Humankind",
        "Forward Leeds", "Forward Trust", "Phoenix Futures", "Cranstoun", "Swanswell",
        "Lifeline Project", "Aquarius", "Delphi Medical", "Blenheim CDP", "Nacoa", "Adfam",
        "Al-Anon", "Alanon", "Alateen", "Talk to Frank", "TalkToFrank", "Drinkaware", "CRI",
        "Crime Reduction Initiatives", "Early Break",
        # found by a probe of realistic names (6 December)
        "WDP", "BDP", "Bristol Drugs Project", "Nelson Trust", "Kenward Trust", "DHI",
        "Spectrum Community Health", "YZUP", "NECA", "M-PACT", "With You in",
        "With You Young People", "Eclypse", "FDAC",
        # and by a third (6 December)
        "Gateshead Evolve", "Better Lives", "Lorraine Hewitt House", "HAGA", "Druglink",
    ),
    # Charities for LGBT+ and gender-questioning young people, and children's counselling lines.
    UNCLEAR: (
        "Mermaids", "Proud Trust", "Gendered Intelligence", "Albert Kennedy Trust", "akt",
        "LGBT Foundation", "Allsorts Youth", "Childline", "Stonewall", "London Friend",
        "Just Like Us", "Metro Charity",
    ),
}

# Brands that are coined words, never a place's, a school's or a club's name: they count beside
# any word ("Place2Be - Oakfield Primary School", "Kooth at school": found by a probe of
# realistic names, 6 December).
COINED_BRANDS: Final = (
    "Place2Be", "Qwell", "XenZone", "Togetherall", "MindEd", "MindMate", "YoungMinds",
    "Chilypep", "YIACS", "Samaritans", "HOPELINEUK", "TalkWorks", "iCope", "iTalk",
    "Steps2Wellbeing", "Steps2Change", "stem4", "Tellmi", "MeeTwo", "selfharmUK", "Healios",
    "CGL", "Change Grow Live", "Addaction", "We Are With You", "Cranstoun", "Swanswell", "Nacoa",
    "Adfam", "TalkToFrank", "Drinkaware", "YZUP", "BPAS", "NUPAS", "THT", "Terrence Higgins Trust",
    "SH:24", "iCaSH", "MESMAC", "Sexwise", "Freetest", "GamCare", "YorSexualHealth", "BeeU",
    "Eclypse", "Druglink", "HAGA", "Thorneywood", "Hopewood", "MAC-UK",
)

# Brands that are also ordinary words: they count only as the whole name, less FILLER_WORDS.
WHOLE_NAMES: Final[dict[Category, tuple[str, ...]]] = {
    SEXUAL_HEALTH: ("Umbrella", "CaSH", "The Havens"),
    MENTAL_HEALTH: ("Beat", "Shout", "CALM", "The Priory", "Harmless", "CHUMS", "FREED"),
    SUBSTANCE_MISUSE: (
        "Frank", "With You", "Lifeline", "Branching Out", "Antidote", "Blenheim", "DAT", "DIP",
        "IBA", "OST", "ADS", "SIAS",
        # found by an examiner's probe (7 December): WDP's new name, and Essex's young people's
        # drug and alcohol service (as a whole name: "Open Road" in an address is a street)
        "Via", "Open Road",
    ),
    UNCLEAR: ("Compass", "Relate", "The Mix", "Lighthouse", "Switchboard", "Metro"),
}
FILLER_WORDS: Final = (
    "the", "service", "team", "NHS", "UK", "helpline", "online", "national", "project", "charity",
    "clinic", "org", "www", "com", "co",
)

# Words that suggest one of the three without naming it: "unclear", and so sensitive.
UNCLEAR_WORDS: Final = (
    "wellbeing", "emotional", "therapeutic", "trauma", "crisis", "recovery", "perinatal",
    "pregnancy", "termination", "sex", "sexuality", "gender identity", "gender clinic",
    "gender service", "GIDS", "LGBT", "LGBTQ", "LGBTQI", "LGBTQIA", "LGB", "queer", "ADHD",
    "gender dysphoria", "gender incongruence", "gender questioning", "transgender",
    "trans youth", "trans young people", "trans support", "trans group", "trans and non-binary",
    "non-binary", "puberty blocker", "puberty suppression", "cross-sex hormone", "GIC",
    "coming out", "pride youth", "rainbow youth", "gay", "lesbian", "bisexual",
    "gay-straight alliance", "hepatitis C", "hep C", "HCV",
    "attention deficit", "music therapy", "multisystemic therapy", "multi-systemic therapy", "MST",
    "Tier 4", "PICU", "EIS", "CSA", "Positive Steps", "blood borne", "BBV", "RAID",
    "neuropsychology", "safe haven", "young people's clinic", "getting help", "EHC", "rehab",
    # THRIVE's other needs-based groupings (found by a probe of realistic names, 6 December)
    "getting more help", "getting risk support", "ED team", "ED service",
    # CAMHS in the North East (found by two reviewers), though also some councils' children's
    # services: when in doubt
    "CYPS",
    # found by an examiner's probe (7 December): psychosis services' usual name, though some
    # councils' early help has it too (stopping smoking stays an ordinary service)
    "early intervention service",
)
# The same, but also the names of schools, nurseries and tutors: ignored in a name with a SETTING_WORD.
UNCLEAR_UNLESS_SETTING: Final = ("minds", "PrEP", "Headstart", "Head Start")
SETTING_WORDS: Final = (
    "school", "nursery", "preschool", "academy", "college", "tuition", "tutor", "tutoring",
    "playgroup", "creche", "childminder", "childminding", "kindergarten", "montessori", "primary",
    "junior", "childcare",
)

# Ordinary services whose names contain a sensitive word.
NOT_SENSITIVE: Final = (
    "educational psychology", "educational psychologist", "educational and child psychology",
    "school psychology", "ed psych", "health and wellbeing", "family wellbeing",
    "financial wellbeing", "lifestyle and wellbeing", "physical wellbeing", "staff wellbeing",
    "debt counselling", "careers counselling", "career counselling", "genetic counselling",
    "genetic counsellor", "paediatric intensive care", "paediatric intensive care unit PICU",
    "paediatric intensive care PICU", "PICU paediatric intensive care", "trauma and orthopaedics",
    "trauma orthopaedics", "orthopaedic trauma", "major trauma", "education recovery",
    "enhanced recovery", "sex education", "mental capacity", "Mind of My Own", "mind the gap",
    "drug allergy", "drug store", "foetal alcohol", "Tier 4 weight", "Brook Green", "Brook Lane",
    "Brook Street", "Brook Road", "Brook Farm", "Brook Park", "Brook Primary", "Brook School",
    "Brook Academy", "Brook Nursery", "EHC plan", "EHC needs", "EHC assessment",
    "EHC coordinator", "EHC plan coordinator", "neuro rehab", "neurorehab", "physical rehab",
    "cardiac rehab", "stroke rehab", "rehab physiotherapy", "rehab physio", "reading recovery",
    "mental arithmetic", "mental maths", "mental math", "sex and relationships education",
    "sex and relationship education", "drugs education", "drug education",
    "drug and alcohol education", "alcohol education",
    # found by a probe of realistic names (6 December): SEND teams, palliative and dental care,
    # crafts, welfare funds and the homeless charity, a slip of nothing sensitive
    "EHC team", "EHC hub", "EHC annual review", "EHC review", "EHC caseworker", "syringe driver",
    "gum disease", "needlework", "needle felting", "needlecraft", "metalwork", "heroes",
    "crisis fund", "crisis support scheme", "crisis grant", "crisis loan", "crisis payment",
    "Crisis Skylight", "tenancy termination", "covid recovery", "trauma informed schools",
    "trauma informed practice", "curious minds", "creative minds", "recovery ward",
    "post-operative recovery", "day surgery recovery", "employee wellbeing", "alcohol licensing",
    "recovery position", "drug chart", "drug round", "crisis support fund", "education psychology",
    "cochlear implant", "dental implant",
)

# Words of places and groups that no sensitive service is named with: beside one of them, in a
# service's name or an organisation's, a brand is a place ("Turning Point Church", "Kooth Lane
# Allotments"); so are SETTING_WORDS ("Healthy Minds Primary School").
ORDINARY_PLACE_WORDS: Final = frozenset({
    "church", "chapel", "mosque", "temple", "gurdwara", "synagogue", "parish", "allotment", "lane",
    "road", "street", "scout", "guide", "brownie", "cub", "surgery",
})
# Words that make an organisation's name a school's, a practice's or a club's as well: beside one
# of them a brand is a place or a person ("Brook Community Primary School", "Tavistock College",
# "Peace of Mind Childcare"). Not in a service's name: "Mortimer Market Centre" is a clinic.
ORDINARY_ORGANISATION_WORDS: Final = ORDINARY_PLACE_WORDS | frozenset({
    "school", "academy", "college", "university", "primary", "secondary", "nursery", "childcare",
    "preschool", "centre", "center", "medical", "surgery", "practice", "gp", "drs", "partners",
    "house", "home", "club", "swim", "sports", "sport", "infant", "junior",
})

# fmt: on
