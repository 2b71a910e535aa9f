"""Build ``instructions.jsonl``: the small instruction set synthdiv ships for tests and quickstart.

Written for this project (no third-party data). Two parts: hand-written conversations (writing,
explanation, multi-turn, refusals of impossible requests), and templated tasks whose answers are
computed here, so they are correct by construction (arithmetic, unit conversion, sorting, string
edits, counting). Deterministic: ``python build_sft.py`` rewrites the same file.

The paper fine-tunes on Alpaca-GPT4 + FLANv2; users with those files point ``data.path`` at them
(converted to this JSONL chat format).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SYSTEM = "You are a helpful, concise assistant."

HANDWRITTEN: list[tuple[str, str]] = [
    (
        "What is photosynthesis?",
        (
            "Photosynthesis is the process by which plants, algae and some "
            "bacteria use light energy to turn carbon dioxide and water into glucose and oxygen."
        ),
    ),
    (
        "Explain what a prime number is.",
        (
            "A prime number is a whole number greater than 1 whose "
            "only divisors are 1 and itself. For example, "
            "2, 3, 5 and 7 are prime; 9 is not (3 × 3)."
        ),
    ),
    (
        "Give me three tips for writing clear emails.",
        (
            "1. Put the request in the first sentence.\n"
            "2. Keep one topic per email.\n3. End with the next step and a date."
        ),
    ),
    (
        "Why is the sky blue?",
        (
            "Air molecules scatter short (blue) wavelengths of sunlight much more "
            "than long (red) ones, so blue light reaches our eyes from every direction of the sky."
        ),
    ),
    (
        "Summarize the water cycle in one sentence.",
        (
            "Water evaporates, condenses into clouds, falls "
            "as precipitation and flows back to oceans and lakes, where the cycle starts again."
        ),
    ),
    (
        "What does a CPU do?",
        (
            "The CPU executes a program's instructions: it fetches them from "
            "memory, decodes them, performs arithmetic and logic, and writes results back."
        ),
    ),
    (
        "Write a haiku about autumn.",
        ("Red leaves drift and fall\ncool wind hums through empty trees\nthe year breathes slower"),
    ),
    (
        "What is the difference between weather and climate?",
        (
            "Weather is the state of the "
            "atmosphere over hours or days; climate is the average pattern of weather over decades."
        ),
    ),
    (
        "How do vaccines work?",
        (
            "A vaccine shows the immune system a harmless piece or copy of a "
            "germ, so it learns to recognise it and can respond quickly to a real infection later."
        ),
    ),
    (
        "Define 'metaphor' and give an example.",
        (
            "A metaphor describes something as if it were "
            "something else, without 'like' or 'as'. Example: 'Time is a thief.'"
        ),
    ),
    (
        "What is an API?",
        (
            "An API (application programming interface) is a defined set of requests "
            "one program can make to another, with the formats of the inputs and outputs."
        ),
    ),
    (
        "Suggest a name for a bakery.",
        ("How about 'Rise & Crumb'? It is short, warm and hints at bread rising."),
    ),
    (
        "What is gravity?",
        (
            "Gravity is the attraction between masses. On Earth it pulls objects "
            "toward the ground with an acceleration of about 9.8 m/s²."
        ),
    ),
    (
        "Explain recursion to a beginner.",
        (
            "Recursion is when a function solves a problem by "
            "calling itself on a smaller version of the "
            "same problem, until it reaches a case simple "
            "enough to answer directly."
        ),
    ),
    (
        "What is the boiling point of water at sea level?",
        ("100 °C (212 °F) at standard atmospheric pressure."),
    ),
    (
        "Give two benefits of regular exercise.",
        ("It strengthens the heart and lungs, and it improves mood and sleep."),
    ),
    (
        "What is a noun?",
        (
            "A noun is a word that names a person, place, thing or idea, such as "
            "'teacher', 'city', 'book' or 'freedom'."
        ),
    ),
    ("Translate 'thank you' into Spanish and French.", "Spanish: 'gracias'. French: 'merci'."),
    (
        "What causes the seasons on Earth?",
        (
            "Earth's axis is tilted about 23.5°, so each "
            "hemisphere receives more direct sunlight for "
            "part of the year (summer) and less for the "
            "other part (winter)."
        ),
    ),
    ("Write a one-line slogan for a library.", "Borrow a book, bring back a world."),
    ("What is the capital of France?", "Paris."),
    (
        "What is machine learning?",
        (
            "Machine learning is a way of building programs that learn "
            "patterns from examples instead of following rules written by hand."
        ),
    ),
    (
        "How many continents are there?",
        (
            "Seven: Africa, Antarctica, Asia, Australia (Oceania), "
            "Europe, North America and South America."
        ),
    ),
    (
        "What is the tallest mountain on Earth?",
        ("Mount Everest, about 8,849 metres above sea level."),
    ),
    (
        "Explain what a budget is.",
        (
            "A budget is a plan that lists expected income and spending "
            "over a period, so you can decide in advance where money goes."
        ),
    ),
    (
        "Can you tell me tomorrow's lottery numbers?",
        ("No. Lottery draws are random, so nobody can predict the numbers in advance."),
    ),
    ("What is a synonym for 'happy'?", "Cheerful."),
    (
        "Describe a cat in two sentences.",
        (
            "A cat is a small, furry carnivore with sharp claws and "
            "keen senses. It is independent, curious and spends much of the day asleep."
        ),
    ),
    ("What is the speed of light?", "About 299,792 kilometres per second in a vacuum."),
    (
        "Why do we need sleep?",
        (
            "Sleep lets the body repair tissue and the brain consolidate "
            "memories and clear waste; without it, attention and health decline."
        ),
    ),
]

MULTI_TURN: list[list[tuple[str, str]]] = [
    [
        (
            "I want to learn to cook. Where should I start?",
            (
                "Start with a few simple dishes you "
                "like, such as scrambled eggs, pasta with tomato sauce and a stir-fry."
            ),
        ),
        ("Which of those is easiest?", "Scrambled eggs: one pan, three ingredients, five minutes."),
    ],
    [("What is 12 times 12?", "144."), ("And half of that?", "72.")],
    [("Name a primary colour.", "Red."), ("Another one?", "Blue.")],
    [
        (
            "Recommend a form of exercise for someone with sore knees.",
            ("Swimming: the water supports your weight, so it is gentle on the joints."),
        ),
        (
            "How often should I do it?",
            (
                "Two or three sessions a week of 20–30 minutes is a good "
                "start; increase slowly if your knees feel fine."
            ),
        ),
    ],
    [
        ("What is a verb?", "A verb is a word for an action or a state, like 'run' or 'be'."),
        ("Give me an example sentence.", "She runs every morning."),
    ],
]

UNITS = [
    ("kilometres", "metres", 1000),
    ("metres", "centimetres", 100),
    ("kilograms", "grams", 1000),
    ("hours", "minutes", 60),
    ("minutes", "seconds", 60),
    ("litres", "millilitres", 1000),
]
WORDS = [
    "river",
    "planet",
    "garden",
    "window",
    "silver",
    "rocket",
    "forest",
    "candle",
    "bridge",
    "pencil",
    "orange",
    "meadow",
    "castle",
    "thunder",
    "harbor",
    "violet",
]


def templated(rng: random.Random) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for _ in range(25):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        op = rng.choice(["+", "-", "×"])
        value = a + b if op == "+" else a - b if op == "-" else a * b
        out.append((f"What is {a} {op} {b}?", f"{a} {op} {b} = {value}."))
    for _ in range(20):
        big, small, factor = rng.choice(UNITS)
        n = rng.randint(2, 40)
        out.append(
            (
                f"How many {small} are in {n} {big}?",
                f"{n} {big} is {n * factor} {small}, because 1 {big[:-1]} = {factor} {small}.",
            )
        )
    for _ in range(20):
        nums = rng.sample(range(1, 100), rng.randint(4, 7))
        order = rng.choice(["ascending", "descending"])
        ranked = sorted(nums, reverse=order == "descending")
        out.append(
            (
                f"Sort these numbers in {order} order: {', '.join(map(str, nums))}",
                ", ".join(map(str, ranked)),
            )
        )
    for _ in range(20):
        words = rng.sample(WORDS, rng.randint(3, 5))
        task = rng.choice(["reverse", "upper", "alphabetical", "count"])
        listed = " ".join(words)
        if task == "reverse":
            out.append((f"Reverse the order of these words: {listed}", " ".join(words[::-1])))
        elif task == "upper":
            out.append((f"Write these words in capital letters: {listed}", listed.upper()))
        elif task == "alphabetical":
            out.append(
                (f"Put these words in alphabetical order: {listed}", " ".join(sorted(words)))
            )
        else:
            out.append(
                (f"How many words are in this list: {listed}?", f"There are {len(words)} words.")
            )
    for _ in range(15):
        word = rng.choice(WORDS)
        letter = rng.choice(sorted(set(word)))
        count = word.count(letter)
        out.append(
            (
                f"How many times does the letter '{letter}' appear in '{word}'?",
                (
                    f"The letter '{letter}' appears {count} time{'s' if count != 1 else ''} "
                    f"in '{word}'."
                ),
            )
        )
    for _ in range(15):
        n = rng.randint(2, 200)
        out.append((f"Is {n} even or odd?", f"{n} is {'even' if n % 2 == 0 else 'odd'}."))
    return out


def build(path: Path, seed: int = 0) -> int:
    rng = random.Random(seed)
    rows = []
    for i, (user, answer) in enumerate(HANDWRITTEN + templated(rng)):
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
        if i % 3 == 0:  # a third carry the system prompt, so both shapes are trained
            messages.insert(0, {"role": "system", "content": SYSTEM})
        rows.append({"id": f"synthdiv-sft-{i:04d}", "messages": messages})
    for j, turns in enumerate(MULTI_TURN):
        messages = [{"role": "system", "content": SYSTEM}]
        for user, answer in turns:
            messages += [
                {"role": "user", "content": user},
                {"role": "assistant", "content": answer},
            ]
        rows.append({"id": f"synthdiv-sft-multi-{j:02d}", "messages": messages})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(rows)


if __name__ == "__main__":
    target = Path(__file__).with_name("instructions.jsonl")
    print(f"wrote {build(target)} conversations to {target}")
