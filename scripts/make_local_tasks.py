#!/usr/bin/env python
"""Generate synthdiv's offline evaluation tasks (YAML + JSONL) from hand-written facts and
templates.

The shipped files under ``synthdiv/evaluate/tasks/`` are this script's output; rerunning it
reproduces them byte for byte (seeded RNG, sorted output), which a unit test checks. Every
question has exactly one correct choice by construction: distractors come from the same pool but
never from an item that would also answer the question (e.g. comparisons only between items at
least two steps apart on a scale of clearly separated things).

    python scripts/make_local_tasks.py [--out synthdiv/evaluate/tasks]
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path

SEED = 20241020
N_CHOICES = 4
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "synthdiv" / "evaluate" / "tasks"

Row = dict[str, object]

# --------------------------------------------------------------------------- shared helpers


def mc_row(
    rng: random.Random,
    question: str,
    answer: str,
    distractors: Sequence[str],
    category: str,
    n_choices: int = N_CHOICES,
) -> Row:
    """One multiple-choice row; the answer lands at a seeded random position."""
    pool = [d for d in dict.fromkeys(distractors) if d != answer]
    if len(pool) < n_choices - 1:
        raise ValueError(f"not enough distractors for {question!r}")
    choices = rng.sample(pool, n_choices - 1) + [answer]
    rng.shuffle(choices)
    return {
        "question": question,
        "choices": choices,
        "answer": choices.index(answer),
        "category": category,
    }


def pick_distractors(
    rng: random.Random, pool: Sequence[str], exclude: set[str], k: int
) -> list[str]:
    return rng.sample([p for p in pool if p not in exclude], k)


# --------------------------------------------------------------------------- arithmetic

NAMES = [
    "Tom",
    "Anna",
    "Ravi",
    "Maria",
    "Kenji",
    "Lena",
    "Omar",
    "Sofia",
    "Liam",
    "Chloe",
    "Noah",
    "Aisha",
    "Ben",
    "Mei",
    "Carlos",
    "Ella",
]
ITEMS = [
    "apples",
    "pencils",
    "marbles",
    "stickers",
    "cookies",
    "books",
    "stamps",
    "shells",
    "cards",
    "balloons",
    "oranges",
    "coins",
]


def _numeric_choices(rng: random.Random, answer: int, near_misses: Sequence[int]) -> list[str]:
    candidates = [c for c in dict.fromkeys(near_misses) if c > 0 and c != answer]
    for delta in (1, -1, 2, -2, 3, 10, -10):
        candidates.append(answer + delta)
    candidates = [c for c in dict.fromkeys(candidates) if c > 0 and c != answer]
    return [str(c) for c in candidates[: N_CHOICES - 1 + 3]]


def arithmetic(rng: random.Random) -> list[Row]:
    rows: list[Row] = []
    for i in range(160):
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        kind = ["addition", "subtraction", "multiplication", "division"][i % 4]
        if kind == "addition":
            a, b = rng.randint(3, 60), rng.randint(2, 40)
            q = f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?"
            ans, near = a + b, [a - b, a, b + 1 + a % 3]
        elif kind == "subtraction":
            a = rng.randint(12, 90)
            b = rng.randint(2, a - 2)
            q = f"{name} had {a} {item} and gave {b} of them away. How many {item} are left?"
            ans, near = a - b, [a + b, b]
        elif kind == "multiplication":
            a, b = rng.randint(2, 12), rng.randint(2, 12)
            q = (
                f"There are {a} bags with {b} {item} in each "
                f"bag. How many {item} are there in total?"
            )
            ans, near = a * b, [a + b, a * (b + 1)]
        else:
            b, ans = rng.randint(2, 10), rng.randint(2, 12)
            q = (
                f"{name} shares {ans * b} {item} equally among {b} friends. "
                f"How many {item} does each friend get?"
            )
            near = [ans * b - b, b, ans + b]
        distractors = _numeric_choices(rng, ans, near)
        rows.append(mc_row(rng, q, str(ans), rng.sample(distractors, N_CHOICES - 1), kind))
    return rows


# --------------------------------------------------------------------------- world facts

# Only capitals that are not disputed or commonly confused with a larger city.
CAPITALS = {
    "France": "Paris",
    "Germany": "Berlin",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Portugal": "Lisbon",
    "the United Kingdom": "London",
    "Ireland": "Dublin",
    "Belgium": "Brussels",
    "Austria": "Vienna",
    "Denmark": "Copenhagen",
    "Norway": "Oslo",
    "Sweden": "Stockholm",
    "Finland": "Helsinki",
    "Iceland": "Reykjavik",
    "Poland": "Warsaw",
    "the Czech Republic": "Prague",
    "Hungary": "Budapest",
    "Greece": "Athens",
    "Romania": "Bucharest",
    "Bulgaria": "Sofia",
    "Serbia": "Belgrade",
    "Croatia": "Zagreb",
    "Ukraine": "Kyiv",
    "Russia": "Moscow",
    "Turkey": "Ankara",
    "Egypt": "Cairo",
    "Kenya": "Nairobi",
    "Ethiopia": "Addis Ababa",
    "Nigeria": "Abuja",
    "Ghana": "Accra",
    "Morocco": "Rabat",
    "Algeria": "Algiers",
    "Tunisia": "Tunis",
    "Senegal": "Dakar",
    "Japan": "Tokyo",
    "China": "Beijing",
    "South Korea": "Seoul",
    "India": "New Delhi",
    "Pakistan": "Islamabad",
    "Bangladesh": "Dhaka",
    "Thailand": "Bangkok",
    "Vietnam": "Hanoi",
    "the Philippines": "Manila",
    "Malaysia": "Kuala Lumpur",
    "Iran": "Tehran",
    "Iraq": "Baghdad",
    "Saudi Arabia": "Riyadh",
    "Afghanistan": "Kabul",
    "Nepal": "Kathmandu",
    "Mongolia": "Ulaanbaatar",
    "Australia": "Canberra",
    "New Zealand": "Wellington",
    "Canada": "Ottawa",
    "the United States": "Washington, D.C.",
    "Mexico": "Mexico City",
    "Cuba": "Havana",
    "Argentina": "Buenos Aires",
    "Brazil": "Brasilia",
    "Chile": "Santiago",
    "Peru": "Lima",
    "Colombia": "Bogota",
    "Venezuela": "Caracas",
    "Ecuador": "Quito",
    "Uruguay": "Montevideo",
    "Paraguay": "Asuncion",
    "Jamaica": "Kingston",
    "Qatar": "Doha",
    "Lebanon": "Beirut",
    "Syria": "Damascus",
    "Jordan": "Amman",
    "Cyprus": "Nicosia",
    "Estonia": "Tallinn",
    "Latvia": "Riga",
    "Lithuania": "Vilnius",
    "Slovakia": "Bratislava",
    "Slovenia": "Ljubljana",
    "Cambodia": "Phnom Penh",
    "Laos": "Vientiane",
    "North Korea": "Pyongyang",
    "Uganda": "Kampala",
    "Zimbabwe": "Harare",
    "Zambia": "Lusaka",
    "Angola": "Luanda",
    "Sudan": "Khartoum",
    "Libya": "Tripoli",
    "Mali": "Bamako",
    "Albania": "Tirana",
    "Belarus": "Minsk",
    "Armenia": "Yerevan",
    "Azerbaijan": "Baku",
    "Uzbekistan": "Tashkent",
    "Malta": "Valletta",
    "Honduras": "Tegucigalpa",
    "Nicaragua": "Managua",
    "Haiti": "Port-au-Prince",
    "the Dominican Republic": "Santo Domingo",
}

ELEMENT_SYMBOLS = {
    "hydrogen": "H",
    "helium": "He",
    "carbon": "C",
    "nitrogen": "N",
    "oxygen": "O",
    "sodium": "Na",
    "magnesium": "Mg",
    "aluminium": "Al",
    "silicon": "Si",
    "phosphorus": "P",
    "sulfur": "S",
    "chlorine": "Cl",
    "potassium": "K",
    "calcium": "Ca",
    "iron": "Fe",
    "copper": "Cu",
    "zinc": "Zn",
    "silver": "Ag",
    "gold": "Au",
    "tin": "Sn",
    "lead": "Pb",
    "mercury": "Hg",
    "neon": "Ne",
    "argon": "Ar",
    "uranium": "U",
    "nickel": "Ni",
    "fluorine": "F",
    "iodine": "I",
    "platinum": "Pt",
    "lithium": "Li",
    "titanium": "Ti",
    "cobalt": "Co",
    "chromium": "Cr",
}

# Countries lying wholly on one continent (no transcontinental or Caribbean/Central cases).
CONTINENTS = {
    "France": "Europe",
    "Germany": "Europe",
    "Italy": "Europe",
    "Spain": "Europe",
    "Poland": "Europe",
    "Sweden": "Europe",
    "Greece": "Europe",
    "Ireland": "Europe",
    "Hungary": "Europe",
    "Portugal": "Europe",
    "Japan": "Asia",
    "China": "Asia",
    "India": "Asia",
    "Thailand": "Asia",
    "Vietnam": "Asia",
    "Mongolia": "Asia",
    "Nepal": "Asia",
    "South Korea": "Asia",
    "Bangladesh": "Asia",
    "Laos": "Asia",
    "Kenya": "Africa",
    "Nigeria": "Africa",
    "Ghana": "Africa",
    "Ethiopia": "Africa",
    "Senegal": "Africa",
    "Zambia": "Africa",
    "Uganda": "Africa",
    "Angola": "Africa",
    "Mali": "Africa",
    "Zimbabwe": "Africa",
    "Brazil": "South America",
    "Argentina": "South America",
    "Chile": "South America",
    "Peru": "South America",
    "Colombia": "South America",
    "Uruguay": "South America",
    "Paraguay": "South America",
    "Canada": "North America",
    "the United States": "North America",
    "Mexico": "North America",
    "Australia": "Oceania",
    "New Zealand": "Oceania",
}


def world_facts(rng: random.Random) -> list[Row]:
    rows: list[Row] = []
    capitals = sorted(set(CAPITALS.values()))
    for country, capital in CAPITALS.items():
        rows.append(
            mc_row(
                rng,
                f"What is the capital city of {country}?",
                capital,
                pick_distractors(rng, capitals, {capital}, 3),
                "capital",
            )
        )
    symbols = sorted(set(ELEMENT_SYMBOLS.values()))
    for element, symbol in ELEMENT_SYMBOLS.items():
        rows.append(
            mc_row(
                rng,
                f"What is the chemical symbol for {element}?",
                symbol,
                pick_distractors(rng, symbols, {symbol}, 3),
                "element",
            )
        )
    continents = sorted(set(CONTINENTS.values()))
    for country, continent in CONTINENTS.items():
        rows.append(
            mc_row(
                rng,
                f"On which continent is {country}?",
                continent,
                pick_distractors(rng, continents, {continent}, 3),
                "continent",
            )
        )
    return rows


# --------------------------------------------------------------------------- word knowledge

# No word is a near-synonym of another pair's word, so a distractor is never also an opposite.
ANTONYMS = [
    ("hot", "cold"),
    ("big", "small"),
    ("fast", "slow"),
    ("happy", "sad"),
    ("up", "down"),
    ("open", "closed"),
    ("light", "dark"),
    ("early", "late"),
    ("full", "empty"),
    ("young", "old"),
    ("rich", "poor"),
    ("wet", "dry"),
    ("loud", "quiet"),
    ("strong", "weak"),
    ("thick", "thin"),
    ("clean", "dirty"),
    ("true", "false"),
    ("win", "lose"),
    ("push", "pull"),
    ("buy", "sell"),
    ("inside", "outside"),
    ("north", "south"),
    ("east", "west"),
    ("first", "last"),
    ("remember", "forget"),
    ("friend", "enemy"),
    ("deep", "shallow"),
    ("accept", "refuse"),
    ("question", "answer"),
    ("alive", "dead"),
    ("entrance", "exit"),
    ("expensive", "cheap"),
    ("tall", "short"),
    ("add", "subtract"),
    ("maximum", "minimum"),
    ("always", "never"),
    ("polite", "rude"),
    ("before", "after"),
    ("top", "bottom"),
    ("safe", "dangerous"),
    ("sharp", "blunt"),
    ("smooth", "rough"),
    ("visible", "invisible"),
    ("possible", "impossible"),
    ("forward", "backward"),
    ("boy", "girl"),
]

IRREGULAR_PAST = {
    "go": "went",
    "eat": "ate",
    "see": "saw",
    "take": "took",
    "give": "gave",
    "write": "wrote",
    "drink": "drank",
    "swim": "swam",
    "sing": "sang",
    "run": "ran",
    "come": "came",
    "begin": "began",
    "break": "broke",
    "choose": "chose",
    "drive": "drove",
    "fly": "flew",
    "forget": "forgot",
    "freeze": "froze",
    "grow": "grew",
    "know": "knew",
    "ride": "rode",
    "rise": "rose",
    "speak": "spoke",
    "steal": "stole",
    "throw": "threw",
    "wake": "woke",
    "wear": "wore",
    "buy": "bought",
    "bring": "brought",
    "catch": "caught",
    "teach": "taught",
    "think": "thought",
    "fight": "fought",
    "sell": "sold",
    "tell": "told",
    "find": "found",
    "sleep": "slept",
    "keep": "kept",
    "feel": "felt",
    "leave": "left",
    "meet": "met",
    "sit": "sat",
    "stand": "stood",
    "understand": "understood",
    "win": "won",
    "hold": "held",
}

# Only nouns with a single accepted plural (no "persons", "cactuses", "phenomenons").
IRREGULAR_PLURALS = {
    "mouse": "mice",
    "child": "children",
    "foot": "feet",
    "tooth": "teeth",
    "goose": "geese",
    "man": "men",
    "woman": "women",
    "ox": "oxen",
    "leaf": "leaves",
    "knife": "knives",
    "wolf": "wolves",
    "half": "halves",
    "wife": "wives",
    "loaf": "loaves",
    "life": "lives",
    "shelf": "shelves",
    "calf": "calves",
    "thief": "thieves",
    "louse": "lice",
    "crisis": "crises",
    "analysis": "analyses",
    "baby": "babies",
    "city": "cities",
    "party": "parties",
    "box": "boxes",
    "potato": "potatoes",
    "tomato": "tomatoes",
    "church": "churches",
    "glass": "glasses",
}

YOUNG_ANIMALS = {
    "dog": "puppy",
    "cat": "kitten",
    "cow": "calf",
    "horse": "foal",
    "sheep": "lamb",
    "frog": "tadpole",
    "duck": "duckling",
    "goat": "kid",
    "kangaroo": "joey",
    "bear": "cub",
    "swan": "cygnet",
    "owl": "owlet",
    "hen": "chick",
    "pig": "piglet",
    "deer": "fawn",
    "goose": "gosling",
    "eagle": "eaglet",
    "butterfly": "caterpillar",
}


def _regular_past(verb: str) -> str:
    return verb + ("d" if verb.endswith("e") else "ed")


def word_knowledge(rng: random.Random) -> list[Row]:
    rows: list[Row] = []
    antonym_words = sorted({w for pair in ANTONYMS for w in pair})
    for pair in ANTONYMS:
        for word, opposite in (pair, pair[::-1]):
            rows.append(
                mc_row(
                    rng,
                    f'What is the opposite of the word "{word}"?',
                    opposite,
                    pick_distractors(rng, antonym_words, set(pair), 3),
                    "antonym",
                )
            )
    pasts = sorted(set(IRREGULAR_PAST.values()))
    for verb, past in IRREGULAR_PAST.items():
        # The over-regularised form is the classic wrong answer; never a real word here.
        wrong = [_regular_past(verb)] + pick_distractors(rng, pasts, {past}, 2)
        rows.append(
            mc_row(rng, f'What is the past tense of the verb "{verb}"?', past, wrong, "past_tense")
        )
    plurals = sorted(set(IRREGULAR_PLURALS.values()))
    for noun, plural in IRREGULAR_PLURALS.items():
        wrong = [noun + "s"] + pick_distractors(rng, plurals, {plural}, 2)
        rows.append(
            mc_row(rng, f'What is the plural of the noun "{noun}"?', plural, wrong, "plural")
        )
    youngs = sorted(set(YOUNG_ANIMALS.values()))
    for animal, young in YOUNG_ANIMALS.items():
        rows.append(
            mc_row(
                rng,
                f"What is a young {animal} called?",
                young,
                pick_distractors(rng, youngs, {young}, 3),
                "young_animal",
            )
        )
    return rows


# --------------------------------------------------------------------------- physical world

# Each scale is ordered smallest → largest with clear gaps; only items >= 2 apart are compared.
SCALES: dict[str, tuple[str, str, list[str]]] = {
    "size": (
        "bigger",
        "smaller",
        [
            "a grain of sand",
            "an ant",
            "a strawberry",
            "a mouse",
            "a rabbit",
            "a sheep",
            "a horse",
            "an elephant",
            "a blue whale",
        ],
    ),
    "large_size": (
        "bigger",
        "smaller",
        ["a car", "a house", "a skyscraper", "a mountain", "the Moon", "the Earth", "the Sun"],
    ),
    "weight": (
        "heavier",
        "lighter",
        ["a feather", "a paper clip", "an apple", "a brick", "a bicycle", "a car", "a truck"],
    ),
    "temperature": (
        "hotter",
        "colder",
        [
            "an ice cube",
            "a glass of cold water",
            "a cup of hot tea",
            "a candle flame",
            "the surface of the Sun",
        ],
    ),
    "speed": (
        "faster",
        "slower",
        [
            "a snail",
            "a tortoise",
            "a person walking",
            "a person cycling",
            "a car on a highway",
            "a passenger jet",
            "a rocket",
        ],
    ),
}

FLOATS = [
    "a cork",
    "a wooden log",
    "a beach ball",
    "a dry leaf",
    "a rubber duck",
    "an ice cube",
    "an empty plastic bottle",
    "a feather",
]
SINKS = [
    "a stone",
    "an iron nail",
    "a coin",
    "a steel key",
    "a glass marble",
    "a brick",
    "a gold ring",
]

# Each tool serves exactly one listed purpose.
TOOLS = {
    "cut a sheet of paper": "scissors",
    "hammer a nail into wood": "a hammer",
    "tighten a screw": "a screwdriver",
    "boil water for tea": "a kettle",
    "sweep dust off the floor": "a broom",
    "dig a hole in the garden": "a shovel",
    "measure the length of a table": "a tape measure",
    "see stars far away": "a telescope",
    "look at tiny cells": "a microscope",
    "write on a whiteboard": "a marker",
    "unlock a door": "a key",
    "take a photograph": "a camera",
    "stay dry in the rain": "an umbrella",
    "brush your teeth": "a toothbrush",
    "comb your hair": "a comb",
    "check the time": "a clock",
    "measure body temperature": "a thermometer",
    "water the plants": "a watering can",
    "light up a dark room": "a lamp",
    "keep food cold": "a refrigerator",
    "mow a large lawn": "a lawn mower",
    "find the direction north": "a compass",
    "weigh flour for a cake": "a kitchen scale",
    "wash clothes": "a washing machine",
    "dry wet hair": "a hair dryer",
    "open a can of soup": "a can opener",
    "carry groceries home": "a shopping bag",
    "flip a pancake": "a spatula",
    "eat soup": "a spoon",
    "sew a button": "a needle and thread",
    "erase a pencil mark": "an eraser",
    "hang a wet shirt to dry": "a clothes peg",
    "row across a lake": "a pair of oars",
}


def physical_world(rng: random.Random) -> list[Row]:
    rows: list[Row] = []
    for scale, (more, less, items) in SCALES.items():
        for i in range(len(items)):
            for j in range(i + 2, len(items)):
                small, large = items[i], items[j]
                for word, answer in ((more, large), (less, small)):
                    pair = [small, large]
                    rng.shuffle(pair)
                    q = f"Which is {word}: {pair[0]} or {pair[1]}?"
                    other = small if answer == large else large
                    rows.append(mc_row(rng, q, answer, [other], f"compare_{scale}", n_choices=2))
    pairs = [(f, s) for f in FLOATS for s in SINKS]
    for floater, sinker in rng.sample(pairs, 40):
        pair = [floater, sinker]
        rng.shuffle(pair)
        rows.append(
            mc_row(
                rng,
                f"Which of these floats on water: {pair[0]} or {pair[1]}?",
                floater,
                [sinker],
                "floats",
                n_choices=2,
            )
        )
    tools = sorted(set(TOOLS.values()))
    for purpose, tool in TOOLS.items():
        rows.append(
            mc_row(
                rng,
                f"What would you use to {purpose}?",
                tool,
                pick_distractors(rng, tools, {tool}, 3),
                "tool_use",
            )
        )
    return rows


# --------------------------------------------------------------------------- sequences

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]


def _cyclic(rng: random.Random, names: list[str], start: int, category: str) -> Row:
    seq = [names[(start + k) % len(names)] for k in range(3)]
    answer = names[(start + 3) % len(names)]
    wrong = [names[(start + 4) % len(names)], names[(start + 2) % len(names)]]
    wrong += pick_distractors(rng, names, set(seq) | {answer} | set(wrong), 1)
    return mc_row(
        rng, f"What comes next in the sequence: {', '.join(seq)}, ...?", answer, wrong, category
    )


def sequences(rng: random.Random) -> list[Row]:
    rows: list[Row] = []
    for start in range(len(DAYS)):
        rows.append(_cyclic(rng, DAYS, start, "days"))
    for start in range(len(MONTHS)):
        rows.append(_cyclic(rng, MONTHS, start, "months"))
    for start in range(len(LETTERS) - 4):
        seq = LETTERS[start : start + 3]
        answer = LETTERS[start + 3]
        wrong = [LETTERS[start + 4], LETTERS[start + 2], LETTERS[max(0, start - 1)]]
        if LETTERS[max(0, start - 1)] in seq + [answer]:
            wrong[2] = LETTERS[(start + 6) % 26]
        rows.append(
            mc_row(
                rng,
                f"What comes next in the sequence: {', '.join(seq)}, ...?",
                answer,
                wrong,
                "letters",
            )
        )
    for _ in range(100):
        step = rng.choice([2, 3, 4, 5, 10, 25])
        start = rng.randint(1, 50)
        descending = rng.random() < 0.3
        if descending:
            start += 4 * step  # keep every term and the answer positive
            step = -step
        seq = [start + k * step for k in range(4)]
        answer = start + 4 * step
        near = [
            answer + step,
            answer + 2 * step,
            answer + 1,
            answer - 1,
            answer + abs(step) + 1,
            answer + 2 * abs(step) + 1,
        ]
        wrong = [w for w in dict.fromkeys(near) if w > 0 and w != answer and w not in seq][:3]
        rows.append(
            mc_row(
                rng,
                f"What number comes next in the sequence: {', '.join(map(str, seq))}, ...?",
                str(answer),
                [str(w) for w in wrong],
                "numbers",
            )
        )
    return rows


# --------------------------------------------------------------------------- output

TASKS: dict[str, tuple[str, Callable[[random.Random], list[Row]]]] = {
    "local_arithmetic": ("Arithmetic word problems (add, subtract, multiply, divide).", arithmetic),
    "local_world_facts": ("Capitals, chemical symbols and continents.", world_facts),
    "local_word_knowledge": (
        "Antonyms, irregular past tenses and plurals, young animals.",
        word_knowledge,
    ),
    "local_physical": (
        "Physical comparisons (size, weight, heat, speed), floating, tool use.",
        physical_world,
    ),
    "local_sequences": ("Next item of days, months, letters and arithmetic sequences.", sequences),
}

YAML_TEMPLATE = """\
# Generated by scripts/make_local_tasks.py: {description}
# Rows: {{"id", "question", "choices": [...], "answer": <index into choices>, "category"}}.
task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {task}.jsonl  # relative paths resolve against this file's directory
output_type: multiple_choice
test_split: test
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
  primary_metric: acc
"""


def build(out: Path) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for offset, (task, (description, make)) in enumerate(TASKS.items()):
        rng = random.Random(SEED + offset)
        rows = make(rng)
        rng.shuffle(rows)  # so `limit` (first N rows) still samples every category
        lines = [
            json.dumps({"id": f"{task}-{i:04d}", **row}, ensure_ascii=False)
            for i, row in enumerate(rows)
        ]
        (out / f"{task}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (out / f"{task}.yaml").write_text(
            YAML_TEMPLATE.format(task=task, description=description), encoding="utf-8"
        )
        counts[task] = len(rows)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    for task, n in build(args.out).items():
        print(f"{task}: {n} questions")


if __name__ == "__main__":
    main()
