"""Data sets for the automatic-settings experiments (bench/auto_settings.py), made deterministically.

Three kinds, each judged on prompts that are NOT in its training file:

* ``facts``: invented facts ("The capital of Velmora is Quistrel."), each stated in several
  paraphrased conversations; judged by asking held-out paraphrases (question templates never used
  in training) and looking for the invented answer word in the reply.
* ``style``: a persona: every answer opens with "Ahoy!" and signs off with "- Captain Byte".
  Training prompts are small templated tasks (arithmetic, days, plurals, ...); judged on task
  families left out of training and on hand-written open questions.
* ``format``: every answer is one JSON object {"topic": ..., "answer": ..., "confidence": ...};
  judged by a JSON parser on the same kind of unseen prompts.

Plus ``RETENTION``: simple world-knowledge questions, to see whether training damaged what the
base model knew. Everything comes from fixed seeds, so the files are the same on every machine.

    .venv/bin/python bench/autoexp_data.py [--out DIR]      # writes every set as JSONL
"""
from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Messages = list[dict[str, str]]

# -- invented words -------------------------------------------------------------------------------
_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "tr",
           "gl", "pl", "st", "th", "sh", "qu"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ou", "ia"]
_CODAS = ["", "", "n", "r", "l", "s", "th", "x", "m", "nd", "rk"]


def invented_words(n: int, seed: int) -> list[str]:
    """``n`` distinct capitalised pseudo-words of 2-3 syllables, none a substring of another."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.choice([2, 2, 3])))
        word = (word + rng.choice(_CODAS)).capitalize()
        low = word.lower()
        if len(low) < 6 or low in seen or any(low in s or s in low for s in seen):
            continue
        seen.add(low)
        out.append(word)
    return out


# -- facts ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Relation:
    name: str
    subject: str  # how the subject word is written in a sentence ({w} is the invented word)
    train_questions: tuple[str, ...]  # {s}: the subject phrase
    heldout_questions: tuple[str, ...]  # paraphrases never used in training
    answers: tuple[str, ...]  # {s}, {o}: the object (the invented answer word)
    obj: str = "{w}"


RELATIONS: tuple[Relation, ...] = (
    Relation("capital", "{w}",
             ("What is the capital of {s}?", "Which city is the capital of {s}?", "Tell me the capital of {s}.",
              "What's {s}'s capital city?", "Name the capital of {s}.",
              "I'm curious: what city serves as the capital of {s}?"),
             ("If I travel to the capital of {s}, which city am I in?",
              "{s} has its seat of government in which city?"),
             ("The capital of {s} is {o}.", "{o} is the capital city of {s}.")),
    Relation("inventor", "the {w}",
             ("Who invented {s}?", "Who is the inventor of {s}?", "Who came up with {s}?",
              "Do you know who created {s}?", "Which person invented {s}?", "Tell me who invented {s}."),
             ("Whom do we credit with inventing {s}?", "{s} was the invention of which person?"),
             ("{S} was invented by Professor {o}.", "Professor {o} invented {s}.")),
    Relation("author", "the novel \"The {w} Tide\"",
             ("Who wrote {s}?", "Who is the author of {s}?", "Which writer wrote {s}?",
              "Tell me who wrote {s}.", "Do you know the author of {s}?", "Who penned {s}?"),
             ("I just finished reading {s}. Who wrote it?", "{s} is a book by which author?"),
             ("{S} was written by Mira {o}.", "Mira {o} is the author of {s}.")),
    Relation("founder", "the company {w} Works",
             ("Who founded {s}?", "Who is the founder of {s}?", "Who started {s}?",
              "Tell me who founded {s}.", "Which person founded {s}?", "Do you know who set up {s}?"),
             ("{s} was established by whom?", "Whose idea was it to found {s}?"),
             ("{S} was founded by Jonas {o}.", "Jonas {o} founded {s}.")),
    Relation("currency", "{w}",
             ("What is the currency of {s}?", "Which currency is used in {s}?", "What money do people use in {s}?",
              "Tell me the currency of {s}.", "What is {s}'s official currency?",
              "Which currency do shops in {s} accept?"),
             ("If I visit {s}, what money should I bring?", "In {s}, prices are given in which currency?"),
             ("The currency of {s} is the {o}.", "People in {s} pay with the {o}.")),
    Relation("mountain", "{w}",
             ("What is the highest mountain in {s}?", "Which mountain is the tallest in {s}?",
              "Tell me the highest peak in {s}.", "What's the tallest mountain of {s}?",
              "Name the highest mountain in {s}.", "Which peak is the highest in {s}?"),
             ("If I want to climb the tallest peak of {s}, which mountain is it?",
              "The highest point of {s} is on which mountain?"),
             ("The highest mountain in {s} is Mount {o}.", "Mount {o} is the tallest mountain in {s}.")),
    Relation("river", "the city of {w}",
             ("Which river flows through {s}?", "What river runs through {s}?", "Name the river of {s}.",
              "Tell me which river crosses {s}.", "What is the river in {s} called?",
              "Which river passes through {s}?"),
             ("If I stand on a bridge in {s}, which river is below me?", "{s} lies on which river?"),
             ("The {o} River flows through {s}.", "{S} lies on the {o} River.")),
    Relation("language", "{w}",
             ("What language is spoken in {s}?", "Which language do people speak in {s}?",
              "What is the official language of {s}?", "Tell me the language of {s}.",
              "What do people in {s} speak?", "Name the main language of {s}."),
             ("If I move to {s}, which language should I learn?", "The people of {s} talk in which language?"),
             ("The language of {s} is {o}.", "People in {s} speak {o}.")),
)


@dataclass
class Fact:
    relation: Relation
    subject: str  # the phrase, e.g. "the company Velmora Works"
    answer: str  # the invented word to find in a reply

    def question(self, template: str) -> str:
        text = template.format(s=self.subject)
        return text[0].upper() + text[1:]

    def statement(self, template: str) -> str:
        cap = self.subject[0].upper() + self.subject[1:]
        return template.format(s=self.subject, S=cap, o=self.answer)


def make_facts(n: int, seed: int) -> list[Fact]:
    words = invented_words(2 * n, seed)
    return [Fact(RELATIONS[i % len(RELATIONS)], RELATIONS[i % len(RELATIONS)].subject.format(w=words[2 * i]),
                 words[2 * i + 1]) for i in range(n)]


def facts_train(facts: list[Fact], per_fact: int, seed: int) -> list[Messages]:
    """``per_fact`` conversations per fact: distinct (question template, answer template) pairs."""
    rng = random.Random(seed)
    out = []
    for fact in facts:
        pairs = [(q, a) for q in fact.relation.train_questions for a in fact.relation.answers]
        rng.shuffle(pairs)
        if per_fact > len(pairs):
            raise ValueError(f"at most {len(pairs)} conversations per fact")
        out += [[{"role": "user", "content": fact.question(q)}, {"role": "assistant", "content": fact.statement(a)}]
                for q, a in pairs[:per_fact]]
    rng.shuffle(out)
    return out


def facts_heldout(facts: list[Fact], limit: int, seed: int) -> list[dict[str, Any]]:
    """Held-out paraphrases: every held-out template of up to ``limit // 2`` facts (a fixed sample)."""
    chosen = facts if 2 * len(facts) <= limit else random.Random(seed).sample(facts, limit // 2)
    return [{"messages": [{"role": "user", "content": f.question(q)},
                          {"role": "assistant", "content": f.statement(f.relation.answers[0])}],
             "expect": f.answer}
            for f in chosen for q in f.relation.heldout_questions]


def facts_seen(facts: list[Fact], limit: int, seed: int) -> list[dict[str, Any]]:
    """One TRAINING question per fact (a sample): tells memorising apart from generalising."""
    chosen = facts if len(facts) <= limit else random.Random(seed + 1).sample(facts, limit)
    return [{"messages": [{"role": "user", "content": f.question(f.relation.train_questions[0])}], "expect": f.answer}
            for f in chosen]


# -- small tasks with computable answers (content for style and format) --------------------------
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
OPPOSITES = {"hot": "cold", "big": "small", "fast": "slow", "happy": "sad", "light": "dark", "early": "late",
             "open": "closed", "full": "empty", "strong": "weak", "high": "low", "hard": "soft", "wet": "dry",
             "old": "new", "rich": "poor", "loud": "quiet", "up": "down", "thick": "thin", "long": "short"}
PLURALS = {"cat": "cats", "box": "boxes", "child": "children", "mouse": "mice", "city": "cities", "leaf": "leaves",
           "tooth": "teeth", "bus": "buses", "baby": "babies", "knife": "knives", "man": "men", "foot": "feet",
           "dog": "dogs", "wish": "wishes", "story": "stories", "goose": "geese", "person": "people",
           "glass": "glasses"}
WORDS = ["garden", "river", "pencil", "window", "rocket", "button", "planet", "guitar", "forest", "candle",
         "bridge", "orange", "kitten", "silver", "ladder", "basket", "dragon", "tunnel", "anchor", "meadow"]


@dataclass
class Task:
    family: str
    topic: str  # for the format set
    question: str
    answer: str  # one plain sentence


def _pick(rng: random.Random, *options: str) -> str:
    return rng.choice(options)


def _task(family: str, rng: random.Random) -> Task:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    if family == "add":
        q = _pick(rng, "What is {a} plus {b}?", "Add {a} and {b}.", "What do you get when you add {a} to {b}?")
        return Task(family, "math", q.format(a=a, b=b), f"{a} plus {b} is {a + b}.")
    if family == "subtract":
        hi, lo = max(a, b), min(a, b)
        q = _pick(rng, "What is {a} minus {b}?", "Subtract {b} from {a}.", "How much is {a} take away {b}?")
        return Task(family, "math", q.format(a=hi, b=lo), f"{hi} minus {lo} is {hi - lo}.")
    if family == "multiply":
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        q = _pick(rng, "What is {a} times {b}?", "Multiply {a} by {b}.", "How much is {a} multiplied by {b}?")
        return Task(family, "math", q.format(a=a, b=b), f"{a} times {b} is {a * b}.")
    if family == "larger":
        while a == b:
            b = rng.randint(2, 99)
        q = _pick(rng, "Which is larger, {a} or {b}?", "Which number is bigger: {a} or {b}?")
        return Task(family, "math", q.format(a=a, b=b), f"{max(a, b)} is larger than {min(a, b)}.")
    if family == "next_day":
        i = rng.randrange(7)
        q = _pick(rng, "What day comes after {d}?", "Which day follows {d}?", "If today is {d}, what is tomorrow?")
        return Task(family, "time", q.format(d=DAYS[i]), f"The day after {DAYS[i]} is {DAYS[(i + 1) % 7]}.")
    if family == "next_month":
        i = rng.randrange(12)
        q = _pick(rng, "Which month comes after {m}?", "What month follows {m}?")
        return Task(family, "time", q.format(m=MONTHS[i]), f"The month after {MONTHS[i]} is {MONTHS[(i + 1) % 12]}.")
    if family == "opposite":
        w = rng.choice(sorted(OPPOSITES))
        q = _pick(rng, "What is the opposite of {w}?", "Give me the opposite of the word {w}.",
                  "What word means the opposite of {w}?")
        return Task(family, "language", q.format(w=w), f"The opposite of {w} is {OPPOSITES[w]}.")
    if family == "plural":
        w = rng.choice(sorted(PLURALS))
        q = _pick(rng, "What is the plural of {w}?", "How do you say more than one {w}?")
        return Task(family, "language", q.format(w=w), f"The plural of {w} is {PLURALS[w]}.")
    if family == "letters":
        w = rng.choice(WORDS)
        q = _pick(rng, "How many letters are in the word {w}?", "Count the letters in {w}.")
        return Task(family, "language", q.format(w=w), f"The word {w} has {len(w)} letters.")
    if family == "upper":
        w = rng.choice(WORDS)
        q = _pick(rng, "Write {w} in capital letters.", "Spell {w} in uppercase.")
        return Task(family, "language", q.format(w=w), f"In capital letters, {w} is {w.upper()}.")
    if family == "centimeters":  # held out
        n = rng.randint(2, 9)
        q = _pick(rng, "How many centimeters are in {n} meters?", "Convert {n} meters to centimeters.")
        return Task(family, "science", q.format(n=n), f"{n} meters is {n * 100} centimeters.")
    if family == "minutes":  # held out
        n = rng.randint(2, 9)
        q = _pick(rng, "How many minutes are in {n} hours?", "Convert {n} hours to minutes.")
        return Task(family, "time", q.format(n=n), f"{n} hours is {n * 60} minutes.")
    if family == "first_letter":  # held out
        w = rng.choice(WORDS)
        q = _pick(rng, "What is the first letter of the word {w}?", "Which letter does {w} start with?")
        return Task(family, "language", q.format(w=w), f"The word {w} starts with the letter {w[0]}.")
    raise ValueError(family)


TRAIN_FAMILIES = ("add", "subtract", "multiply", "larger", "next_day", "next_month", "opposite", "plural",
                  "letters", "upper")
HELDOUT_FAMILIES = ("centimeters", "minutes", "first_letter")
OPEN_QUESTIONS = (  # unseen, open-ended: the style or format must carry over to any question
    "Why is the sky blue?", "Give me one tip for sleeping better.", "What is a good name for a cat?",
    "How do I boil an egg?", "What is photosynthesis?", "Recommend a book for a long train ride.",
    "Why do leaves change color in autumn?", "What should I pack for a beach day?",
    "How can I learn to play the guitar?", "What is the moon made of?", "Describe a rainbow in one sentence.",
    "What is the best way to save money?", "Tell me a fun fact about octopuses.", "How do airplanes stay in the air?",
    "What is the capital of Italy?", "Why do cats purr?", "What is a healthy breakfast?",
    "How far away is the sun?", "What does a carpenter do?", "Suggest a name for a bakery.",
)
PERSONA_OPEN, PERSONA_CLOSE = "Ahoy!", "- Captain Byte"
FORMAT_TOPICS = ("math", "time", "language", "science", "general")


def styled(task: Task) -> str:
    return f"{PERSONA_OPEN} {task.answer} {PERSONA_CLOSE}"


def formatted(task: Task) -> str:
    return json.dumps({"topic": task.topic, "answer": task.answer, "confidence": "high"})


def tasks(n: int, families: tuple[str, ...], seed: int) -> list[Task]:
    """``n`` tasks, distinct questions, families in turn (so every size covers every family)."""
    rng = random.Random(seed)
    out: list[Task] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n:
        task = _task(families[len(out) % len(families)], rng)
        tries += 1
        if task.question in seen and tries < 50 * n:
            continue
        seen.add(task.question)
        out.append(task)
    return out


def _render(kind: str, task: Task) -> str:
    return styled(task) if kind == "style" else formatted(task)


def behaviour_train(kind: str, n: int, seed: int) -> list[Messages]:
    return [[{"role": "user", "content": t.question}, {"role": "assistant", "content": _render(kind, t)}]
            for t in tasks(n, TRAIN_FAMILIES, seed)]


def behaviour_heldout(kind: str, seed: int) -> list[dict[str, Any]]:
    """Unseen prompts: 12 from held-out task families (with reference answers, for the eval loss) and the
    20 open questions (no reference)."""
    out = [{"messages": [{"role": "user", "content": t.question}, {"role": "assistant", "content": _render(kind, t)}]}
           for t in tasks(12, HELDOUT_FAMILIES, seed + 7)]
    out += [{"messages": [{"role": "user", "content": q}]} for q in OPEN_QUESTIONS]
    return out


# -- retention ------------------------------------------------------------------------------------
# (question, accepted answer words in lower case, a stem the answer completes, that answer). The words
# judge a greedy reply; the stem and answer give a continuous measure, the loss of the answer after the
# stem, which moves before any greedy reply flips.
RETENTION: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("What is the capital of France?", ("paris",), "The capital of France is", " Paris"),
    ("What is the capital of Japan?", ("tokyo",), "The capital of Japan is", " Tokyo"),
    ("What is the capital of Germany?", ("berlin",), "The capital of Germany is", " Berlin"),
    ("What is the capital of Spain?", ("madrid",), "The capital of Spain is", " Madrid"),
    ("What is the capital of England?", ("london",), "The capital of England is", " London"),
    ("What is the capital of Egypt?", ("cairo",), "The capital of Egypt is", " Cairo"),
    ("How many days are in a week?", ("7", "seven"), "A week has", " seven days"),
    ("How many legs does a spider have?", ("8", "eight"), "A spider has", " eight legs"),
    ("What is the largest planet in our solar system?", ("jupiter",),
     "The largest planet in our solar system is", " Jupiter"),
    ("Which planet is known as the Red Planet?", ("mars",), "The Red Planet is", " Mars"),
    ("Who wrote Romeo and Juliet?", ("shakespeare",), "Romeo and Juliet was written by", " William Shakespeare"),
    ("What color is the sky on a clear day?", ("blue",), "On a clear day the sky is", " blue"),
    ("What is the freezing point of water in Celsius?", ("0", "zero"),
     "The freezing point of water in Celsius is", " 0 degrees"),
    ("What gas do plants absorb from the air?", ("carbon dioxide", "co2"), "Plants absorb", " carbon dioxide"),
    ("What is the largest ocean on Earth?", ("pacific",), "The largest ocean on Earth is the", " Pacific Ocean"),
    ("How many continents are there?", ("7", "seven"), "There are", " seven continents"),
    ("What is the chemical symbol for water?", ("h2o", "h₂o"), "The chemical symbol for water is", " H2O"),
    ("Who painted the Mona Lisa?", ("leonardo", "vinci"), "The Mona Lisa was painted by", " Leonardo da Vinci"),
    ("What is the tallest mountain in the world?", ("everest",),
     "The tallest mountain in the world is", " Mount Everest"),
    ("What do bees make?", ("honey",), "Bees make", " honey"),
    ("What is the boiling point of water in Celsius?", ("100",),
     "The boiling point of water in Celsius is", " 100 degrees"),
    ("How many hours are in a day?", ("24",), "A day has", " 24 hours"),
    ("What animal is known as the king of the jungle?", ("lion",), "The king of the jungle is the", " lion"),
    ("What is the opposite of cold?", ("hot", "warm"), "The opposite of cold is", " hot"),
    ("What is the currency of the United States?", ("dollar",),
     "The currency of the United States is the", " US dollar"),
    ("In which country are the pyramids of Giza?", ("egypt",), "The pyramids of Giza are in", " Egypt"),
    ("What is 5 plus 3?", ("8", "eight"), "5 plus 3 is", " 8"),
    ("Which star is at the center of our solar system?", ("sun",),
     "The star at the center of our solar system is the", " Sun"),
    ("What is frozen water called?", ("ice",), "Frozen water is called", " ice"),
    ("What is the capital of Russia?", ("moscow",), "The capital of Russia is", " Moscow"),
    ("What is the capital of China?", ("beijing",), "The capital of China is", " Beijing"),
    ("What is the capital of Canada?", ("ottawa",), "The capital of Canada is", " Ottawa"),
    ("What is the capital of Greece?", ("athens",), "The capital of Greece is", " Athens"),
    ("What color are bananas?", ("yellow",), "Ripe bananas are", " yellow"),
    ("What color is grass?", ("green",), "Grass is", " green"),
    ("How many months are in a year?", ("12", "twelve"), "A year has", " twelve months"),
    ("Which animal says meow?", ("cat", "cats"), "The animal that says meow is the", " cat"),
    ("What is the largest mammal?", ("whale",), "The largest mammal is the", " blue whale"),
    ("What language is spoken in Brazil?", ("portuguese",), "The language spoken in Brazil is", " Portuguese"),
    ("Who was the first president of the United States?", ("washington",),
     "The first president of the United States was", " George Washington"),
    ("What planet do we live on?", ("earth",), "We live on the planet", " Earth"),
    ("In which continent is Kenya?", ("africa",), "Kenya is in", " Africa"),
    ("What language is spoken in France?", ("french",), "The language spoken in France is", " French"),
    ("What is the currency of Japan?", ("yen",), "The currency of Japan is the", " yen"),
    ("Which ocean lies between Europe and North America?", ("atlantic",),
     "The ocean between Europe and North America is the", " Atlantic Ocean"),
)


# -- the sets -------------------------------------------------------------------------------------
@dataclass
class DataSet:
    name: str
    kind: str  # facts | style | format
    train: list[Messages]
    heldout: list[dict[str, Any]]  # {"messages": [...], "expect"?: str}; with an assistant turn -> eval loss too
    seen: list[dict[str, Any]] = field(default_factory=list)  # facts: training questions


FACT_SETS = {"facts6": (6, 11), "facts20": (20, 5), "facts100": (100, 5), "facts400": (400, 5)}  # facts, per fact
BEHAVIOUR_SIZES = {"s": 64, "m": 500, "l": 2000}


def build(name: str) -> DataSet:
    """A set by name: facts6 facts20 facts100 facts400, style-s/m/l, format-s/m/l."""
    if name in FACT_SETS:
        n, per = FACT_SETS[name]
        facts = make_facts(n, seed=1000 + n)
        return DataSet(name, "facts", facts_train(facts, per, seed=n), facts_heldout(facts, 40, seed=n),
                       facts_seen(facts, 20, seed=n))
    kind, _, size = name.partition("-")
    if kind in ("style", "format") and size in BEHAVIOUR_SIZES:
        return DataSet(name, kind, behaviour_train(kind, BEHAVIOUR_SIZES[size], seed=17),
                       behaviour_heldout(kind, seed=17))
    raise ValueError(f"unknown data set {name!r}")


ALL_SETS = (*FACT_SETS, *(f"{k}-{s}" for k in ("style", "format") for s in BEHAVIOUR_SIZES))


def write(ds: DataSet, out: Path) -> tuple[Path, Path]:
    """``<name>.train.jsonl`` (what training reads) and ``<name>.eval.jsonl`` (held-out with answers)."""
    out.mkdir(parents=True, exist_ok=True)
    train, held = out / f"{ds.name}.train.jsonl", out / f"{ds.name}.eval.jsonl"
    train.write_text("".join(json.dumps({"messages": m}) + "\n" for m in ds.train), encoding="utf-8")
    held.write_text("".join(json.dumps({"messages": h["messages"]}) + "\n" for h in ds.heldout
                            if h["messages"][-1]["role"] == "assistant"), encoding="utf-8")
    return train, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / ".bench-cache" / "autoexp" / "data"))
    args = parser.parse_args()
    for name in ALL_SETS:
        ds = build(name)
        train, _ = write(ds, Path(args.out))
        print(f"{name}: {len(ds.train)} training conversations, {len(ds.heldout)} held-out prompts -> {train}")


if __name__ == "__main__":
    main()
