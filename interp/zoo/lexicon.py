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

# 143 common first names (gender from usage; every one is a single token). The names of
# `interp.tasks.ioi` are among them, so that its templates can be posed to a zoo model.
MALE_NAMES = ["John", "James", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas",
              "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Paul", "Steven", "Andrew", "Kevin",
              "Brian", "George", "Edward", "Ronald", "Timothy", "Jason", "Jeffrey", "Ryan", "Jacob",
              "Gary", "Eric", "Jonathan", "Stephen", "Larry", "Justin", "Scott", "Frank", "Benjamin",
              "Gregory", "Samuel", "Patrick", "Alexander", "Jack", "Dennis", "Jerry", "Tyler", "Aaron",
              "Henry", "Peter", "Adam", "Nathan", "Zachary", "Kyle", "Walter", "Harold", "Carl",
              "Arthur", "Roger", "Keith", "Lawrence", "Sean", "Christian", "Bob", "Tom", "Steve",
              "Chris", "Sam", "Matt", "Alan", "Martin", "Ben", "Joshua", "Alex"]
FEMALE_NAMES = ["Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
                "Sarah", "Karen", "Nancy", "Lisa", "Betty", "Margaret", "Sandra", "Ashley", "Kimberly",
                "Emily", "Donna", "Michelle", "Dorothy", "Carol", "Amanda", "Melissa", "Deborah",
                "Stephanie", "Rebecca", "Sharon", "Laura", "Cynthia", "Kathleen", "Amy", "Angela",
                "Shirley", "Anna", "Brenda", "Pamela", "Emma", "Nicole", "Helen", "Samantha",
                "Katherine", "Christine", "Debra", "Rachel", "Carolyn", "Janet", "Catherine", "Maria",
                "Heather", "Diane", "Ruth", "Julie", "Olivia", "Joyce", "Virginia", "Victoria",
                "Kelly", "Lauren", "Christina", "Alice", "Kate", "Jane", "Julia", "Lucy", "Grace",
                "Rose", "Claire", "Ellen", "Diana", "Sophie", "Megan"]
# Names that never appear in an IOI sentence (they do appear elsewhere).
HELDOUT_IOI_NAMES = {"Peter", "Adam", "Nathan", "Zachary", "Kyle", "Walter", "Harold", "Carl", "Arthur",
                     "Roger", "Olivia", "Joyce", "Virginia", "Victoria", "Kelly", "Lauren", "Christina",
                     "Heather", "Diane", "Ruth"}

PLACES = ["store", "market", "park", "office", "party", "cafe", "school", "library", "station",
          "garden", "beach", "museum", "restaurant", "hospital", "bank", "church", "theater", "farm",
          "river", "bakery", "kitchen", "house"]
OBJECTS = ["drink", "gift", "book", "letter", "apple", "ball", "key", "pen", "bag", "cake", "flower",
           "ticket", "map", "card", "hat", "coin", "cup", "phone", "ring", "box", "bottle", "basket"]

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


def ioi_names(split: str) -> list[str]:
    """Names used in IOI sentences during training ("train") or never ("held_out")."""
    names = MALE_NAMES + FEMALE_NAMES
    return [n for n in names if (n in HELDOUT_IOI_NAMES) == (split == "held_out")]


def gender_pairs(split: str) -> list[tuple[str, str]]:
    """(male, female) pairs of the direction-fitting ("train") or held-out split."""
    return [(m, f) for m, f, *_ in GENDER_PAIRS if (m in HELDOUT_GENDER_PAIRS) == (split == "held_out")]
