"""Generator answers for tests: valid JSON samples as a capable model would return them."""

from __future__ import annotations

import json
import re

GOOD = {
    "passages": [
        {"concepts": ["lever"], "text": "A lever is a rigid bar that turns about a fulcrum."},
        {
            "concepts": ["mechanical advantage"],
            "text": "Moving the fulcrum trades force for distance.",
        },
        {
            "concepts": ["torque balance"],
            "text": "Equilibrium holds when torques on both sides match.",
        },
    ],
    "question": {
        "question": "What does moving the fulcrum closer to the load do?",
        "options": ["Reduces the effort needed", "Doubles the load", "Removes friction", "Nothing"],
        "answer": "Reduces the effort needed",
        "explanation": "Step 1: the effort arm gets "
        "longer. Step 2: the same torque needs less force.",
    },
}


def valid_answer(topic: str, n: int) -> str:
    word = re.sub(
        r"[\W_]", "", topic.lower()
    )  # distinct filler words: no repetition to trip the gate
    return json.dumps(
        {
            "passages": [
                {
                    "concepts": [f"{topic} basics"],
                    "text": f"Part {i} about {topic} and the ideas that go with it: "
                    + " ".join(f"{word}{n}{i}{w:02d}" for w in range(40)),
                }
                for i in range(3)
            ],
            "question": {
                "question": f"Which statement about {topic} is right?",
                "options": ["first", "second", "third", "fourth"],
                "answer": "second",
                "explanation": "Step 1: recall the passage. Step 2: pick the second option.",
            },
        }
    )
