"""Container names: validation and Docker-style generated names (adjective_scientist)."""

from __future__ import annotations

import re
import secrets

from supervisor.errors import InvalidArgument

NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

_ADJECTIVES = (
    "admiring adoring affectionate agitated amazing angry awesome blissful bold boring "
    "brave charming clever cool compassionate competent condescending confident cranky "
    "crazy dazzling determined distracted dreamy eager ecstatic elastic elated elegant "
    "eloquent epic fervent festive flamboyant focused friendly frosty gallant gifted "
    "goofy gracious happy hardcore heuristic hopeful hungry infallible inspiring "
    "jolly jovial keen kind laughing loving lucid magical modest musing mystifying "
    "naughty nervous nice nifty nostalgic objective optimistic peaceful pedantic "
    "pensive practical priceless quirky quizzical relaxed reverent romantic sad serene "
    "sharp silly sleepy stoic strange stupefied suspicious sweet tender thirsty "
    "trusting unruffled upbeat vibrant vigilant vigorous wizardly wonderful xenodochial "
    "youthful zealous zen"
).split()

_SCIENTISTS = (
    "agnesi albattani allen almeida archimedes ardinghelli aryabhata austin babbage "
    "banach bardeen bartik bassi beaver bell benz bhabha bhaskara blackwell bohr booth "
    "borg bose boyd brahmagupta brattain brown carson cerf chandrasekhar chatelet "
    "chebyshev clarke cohen colden cori cray curie darwin davinci dewdney dijkstra "
    "dubinsky easley edison einstein elion engelbart euclid euler faraday feistel "
    "fermat fermi feynman franklin gagarin galileo gates gauss germain goldberg "
    "goldstine goldwasser golick goodall gould hamilton hawking heisenberg hermann "
    "hodgkin hofstadter hopper hugle hypatia jackson jang jennings jepsen johnson joliot "
    "jones kalam kapitsa keldysh keller kepler khorana kilby kirch knuth kowalevski "
    "lalande lamarr lamport leakey leavitt lederberg lehmann lewin lichterman liskov "
    "lovelace lumiere mahavira margulis matsumoto maxwell mayer mccarthy mcclintock "
    "mclean mcnulty meitner mendel mendeleev merkle mestorf mirzakhani moore morse "
    "murdock napier nash neumann newton nightingale nobel noether northcutt noyce "
    "panini pare pascal pasteur payne perlman pike poincare poitras ptolemy raman "
    "ramanujan ride ritchie robinson roentgen rosalind rubin saha sammet sanderson "
    "satoshi shamir shannon shaw shirley shockley sinoussi snyder spence stonebraker "
    "sutherland swanson swartz swirles tesla thompson torvalds turing varahamihira "
    "villani visvesvaraya volhard wescoff wilbur wiles williams wilson wing wozniak "
    "wright wu yalow yonath zhukovsky"
).split()


def generate(taken: set[str]) -> str:
    """A fresh `adjective_scientist` name, with a digit suffix if all tries collide."""
    for attempt in range(10):
        name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_SCIENTISTS)}"
        if attempt > 5:
            name += str(secrets.randbelow(10))
        if name not in taken:
            return name
    return f"corral_{secrets.token_hex(4)}"


def validate(name: str) -> str:
    """Docker's name rule; returns the name without a leading slash."""
    if not NAME_RE.match(name):
        raise InvalidArgument(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return name.lstrip("/")
