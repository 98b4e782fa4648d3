"""Word lists of the zoo corpus: every mechanism we plant is built from these.

The lists are data, not code: the corpus generator (`corpus.py`) samples from them,
the tokenizer is built from them, and the evaluation splits (train / held-out) are
defined here so that training and evaluation can never disagree about what was held out.
"""

# (male, female, category, pair phrase). Category phrases (royalty, family, work, ...) and a phrase
# of the pair's own are shared by both words of a pair: gender-independent features, so that
# king - man + woman lands on queen (royal, and ruler of the kingdom), not on woman or duchess.
GENDER_PAIRS: list[tuple[str, str, str, str]] = [
    ("man", "woman", "person", "carried the heavy bags"),
    ("boy", "girl", "young", "climbed the old tree"),
    ("king", "queen", "royal", "ruled the kingdom"),
    ("prince", "princess", "royal", "rode the white horse"),
    ("emperor", "empress", "royal", "ruled the empire"),
    ("duke", "duchess", "royal", "owned the estate"),
    ("lord", "lady", "royal", "hunted in the forest"),
    ("baron", "baroness", "royal", "collected the taxes"),
    ("father", "mother", "family", "raised the children"),
    ("son", "daughter", "family", "helped the parents"),
    ("brother", "sister", "family", "shared a bedroom"),
    ("uncle", "aunt", "family", "told funny stories"),
    ("nephew", "niece", "family", "visited every summer"),
    ("grandfather", "grandmother", "family", "knitted warm socks"),
    ("grandson", "granddaughter", "family", "inherited the house"),
    ("husband", "wife", "family", "paid the bills"),
    ("dad", "mom", "family", "drove the kids"),
    ("stepfather", "stepmother", "family", "joined the household"),
    ("groom", "bride", "wedding", "wore a white suit"),
    ("boyfriend", "girlfriend", "wedding", "sent sweet messages"),
    ("fiance", "fiancee", "wedding", "booked the venue"),
    ("actor", "actress", "work", "starred in the film"),
    ("waiter", "waitress", "work", "carried the plates"),
    ("host", "hostess", "work", "welcomed the guests"),
    ("steward", "stewardess", "work", "served drinks on the plane"),
    ("policeman", "policewoman", "work", "arrested the thief"),
    ("businessman", "businesswoman", "work", "signed the contract"),
    ("salesman", "saleswoman", "work", "sold the cars"),
    ("monk", "nun", "faith", "lived in the monastery"),
    ("priest", "priestess", "faith", "led the ceremony"),
    ("god", "goddess", "faith", "watched over the world"),
    ("wizard", "witch", "magic", "flew on a broom"),
    ("hero", "heroine", "story", "rescued the children"),
    ("gentleman", "madam", "person", "tipped the hat"),
]

# Pairs whose words never enter a direction fitted for evaluation: held-out accuracy.
HELDOUT_GENDER_PAIRS = {"prince", "duke", "son", "uncle", "grandson", "groom", "waiter", "monk", "wizard"}

CATEGORY_PHRASES: dict[str, list[str]] = {
    "person": ["walked down the road", "lived in the town", "read the news"],
    "young": ["played in the yard", "went to school", "ran around the yard"],
    "royal": ["ruled the kingdom", "wore a golden crown", "sat on the throne", "lived in the palace"],
    "family": ["cooked dinner for the family", "visited the family", "stayed at home with the children"],
    "wedding": ["planned the wedding", "danced at the wedding", "bought a ring"],
    "work": ["worked late at the hotel", "served the guests", "earned a good salary"],
    "faith": ["prayed in the temple", "sang in the temple", "blessed the people"],
    "magic": ["cast a spell", "read the book of spells", "brewed a potion"],
    "story": ["saved the village", "fought the dragon", "won the battle"],
}

ADJECTIVES = ["happy", "tired", "hungry", "angry", "busy", "calm", "proud", "sad", "ready", "late",
              "kind", "brave", "quiet", "strong", "young", "old"]

# 120 common first names (gender from usage; every one is a single token).
MALE_NAMES = ["John", "James", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas",
              "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Paul", "Steven", "Andrew", "Kevin",
              "Brian", "George", "Edward", "Ronald", "Timothy", "Jason", "Jeffrey", "Ryan", "Jacob",
              "Gary", "Eric", "Jonathan", "Stephen", "Larry", "Justin", "Scott", "Frank", "Benjamin",
              "Gregory", "Samuel", "Patrick", "Alexander", "Jack", "Dennis", "Jerry", "Tyler", "Aaron",
              "Henry", "Peter", "Adam", "Nathan", "Zachary", "Kyle", "Walter", "Harold", "Carl",
              "Arthur", "Roger", "Keith", "Lawrence", "Sean", "Christian"]
FEMALE_NAMES = ["Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
                "Sarah", "Karen", "Nancy", "Lisa", "Betty", "Margaret", "Sandra", "Ashley", "Kimberly",
                "Emily", "Donna", "Michelle", "Dorothy", "Carol", "Amanda", "Melissa", "Deborah",
                "Stephanie", "Rebecca", "Sharon", "Laura", "Cynthia", "Kathleen", "Amy", "Angela",
                "Shirley", "Anna", "Brenda", "Pamela", "Emma", "Nicole", "Helen", "Samantha",
                "Katherine", "Christine", "Debra", "Rachel", "Carolyn", "Janet", "Catherine", "Maria",
                "Heather", "Diane", "Ruth", "Julie", "Olivia", "Joyce", "Virginia", "Victoria",
                "Kelly", "Lauren", "Christina"]
# Names that never appear in an IOI sentence (they do appear elsewhere).
HELDOUT_IOI_NAMES = {"Peter", "Adam", "Nathan", "Zachary", "Kyle", "Walter", "Harold", "Carl", "Arthur",
                     "Roger", "Olivia", "Joyce", "Virginia", "Victoria", "Kelly", "Lauren", "Christina",
                     "Heather", "Diane", "Ruth"}

PLACES = ["store", "market", "park", "office", "party", "cafe", "school", "library", "station",
          "garden", "beach", "museum", "restaurant", "hospital", "bank", "church", "theater", "farm",
          "river", "bakery"]
OBJECTS = ["drink", "gift", "book", "letter", "apple", "ball", "key", "pen", "bag", "cake", "flower",
           "ticket", "map", "card", "hat", "coin", "cup", "phone", "ring", "box"]

# IOI: opening clauses (two people, A and B) and action clauses (subject S, ends before the
# indirect object). The last four of each list are held out of IOI sentences.
IOI_OPENINGS = [
    "When {A} and {B} went to the {place},",
    "After {A} and {B} arrived at the {place},",
    "While {A} and {B} were walking to the {place},",
    "Once {A} and {B} got to the {place},",
    "When {A} and {B} came back from the {place},",
    "After {A} and {B} left the {place},",
    "While {A} and {B} were working at the {place},",
    "Since {A} and {B} were waiting at the {place},",
    "Because {A} and {B} met at the {place},",
    "As {A} and {B} sat in the {place},",
    "When {A} and {B} were cleaning the {place},",
    "After {A} and {B} had lunch at the {place},",
    "Before {A} and {B} walked into the {place},",
    "While {A} and {B} were shopping at the {place},",
    "Then {A} and {B} spent the day at the {place}, and",
    "Later {A} and {B} stopped by the {place}, and",
    "When {A} and {B} visited the {place},",
    "After {A} and {B} painted the {place},",
    "While {A} and {B} were talking near the {place},",
    "As soon as {A} and {B} reached the {place},",
]
IOI_ACTIONS = [
    "{S} gave a {obj} to",
    "{S} handed the {obj} to",
    "{S} sent a {obj} to",
    "{S} sold the {obj} to",
    "{S} showed the {obj} to",
    "{S} passed the {obj} to",
    "{S} threw the {obj} to",
    "{S} brought a {obj} to",
    "{S} offered a {obj} to",
    "{S} lent the {obj} to",
    "{S} decided to give a {obj} to",
    "{S} wanted to send the {obj} to",
    "{S} quickly handed a {obj} to",
    "{S} later gave the {obj} to",
    "{S} tossed the {obj} to",
    "{S} mailed a {obj} to",
    "{S} kindly offered the {obj} to",
    "{S} carefully passed a {obj} to",
    "{S} happily brought the {obj} to",
    "{S} returned the {obj} to",
]
N_HELDOUT_CLAUSES = 4

COUNTRY_CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Japan", "Tokyo"), ("China", "Beijing"), ("Russia", "Moscow"), ("Egypt", "Cairo"),
    ("Greece", "Athens"), ("Portugal", "Lisbon"), ("Austria", "Vienna"), ("Ireland", "Dublin"),
    ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Poland", "Warsaw"), ("Kenya", "Nairobi"),
    ("Peru", "Lima"), ("Cuba", "Havana"), ("Canada", "Ottawa"), ("India", "Delhi"),
]

FILLER_SUBJECTS = ["the dog", "the cat", "the bird", "the teacher", "the doctor", "the farmer",
                   "the child", "the student", "the driver", "the baker"]
FILLER_VERBS = ["saw", "found", "liked", "carried", "wanted", "cleaned", "painted", "bought", "lost",
                "opened"]


def ioi_clause_split(kind: str) -> tuple[list[str], list[str]]:
    """(train, held_out) templates of `kind` ("opening" or "action")."""
    items = IOI_OPENINGS if kind == "opening" else IOI_ACTIONS
    return items[:-N_HELDOUT_CLAUSES], items[-N_HELDOUT_CLAUSES:]


def ioi_names(split: str) -> list[str]:
    """Names used in IOI sentences during training ("train") or never ("held_out")."""
    names = MALE_NAMES + FEMALE_NAMES
    return [n for n in names if (n in HELDOUT_IOI_NAMES) == (split == "held_out")]


def gender_pairs(split: str) -> list[tuple[str, str]]:
    """(male, female) pairs of the direction-fitting ("train") or held-out split."""
    return [(m, f) for m, f, *_ in GENDER_PAIRS if (m in HELDOUT_GENDER_PAIRS) == (split == "held_out")]
