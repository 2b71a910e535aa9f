"""Record reference values of the baseline metrics from the published packages.

Runs in a SEPARATE venv, never in the project's (``diversity`` pins transformers<5 and
sentence-transformers<6 and would downgrade the stack)::

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install --no-deps diversity==0.3.1 vendi-score==0.0.3
    /tmp/refvenv/bin/pip install numpy scipy scikit-learn nltk tqdm
    /tmp/refvenv/bin/python scripts/record_golden_metrics.py

It defines the inputs itself (texts and vectors) and writes them, with the reference values and
the package versions, to ``tests/unit/golden/``; the unit tests read the same files, so inputs
and expected values never drift apart.

Offline workarounds for the ``diversity`` package: its ``__init__`` imports sentence-transformers,
spacy and openai and tries an nltk download, so the three modules used here are loaded by file
path instead. Its functions round to 3 digits; ``round`` is shadowed in each loaded module to
also record the unrounded value that the 1e-6 checks compare against.
"""

from __future__ import annotations

import importlib.util
import json
from importlib import metadata
from pathlib import Path
from types import ModuleType

import numpy as np

OUT_DIR = Path(__file__).resolve().parents[1] / "tests" / "unit" / "golden"

# Single spaces only: the reference splits the joined corpus on " ", we split on any whitespace;
# on this input the two tokenizations coincide. Some documents share 4-grams on purpose.
TEXTS = [
    "the cat sat on the mat and looked at the door",
    "the cat sat on the mat and then fell asleep",
    "a dog ran across the park chasing a red ball",
    "the dog ran across the park and barked at the cat",
    "stock markets fell sharply after the central bank raised rates",
    "the central bank raised rates to fight persistent inflation",
    "photosynthesis converts light energy into chemical energy in plants",
    "plants use photosynthesis to convert light into sugar",
    "the cat sat on the mat and looked at the door",
    "quantum computers use qubits that can hold superpositions of states",
    "a recipe for bread needs flour water salt and yeast",
    "the recipe for bread needs flour water and a little salt",
]


def reference_vectors() -> list[list[float]]:
    """Twelve 8-d vectors with a shared direction (so the kernel is not near-identity),
    rounded to 6 decimals so the JSON holds them exactly."""
    rng = np.random.default_rng(20241020)
    base = rng.standard_normal((12, 8)) + 0.8 * rng.standard_normal(8)
    return np.round(base, 6).tolist()


def load_by_path(package: str, module: str) -> ModuleType:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            f"{package} is not installed in this interpreter; see the module docstring"
        )
    path = Path(spec.submodule_search_locations[0]) / f"{module}.py"
    mod_spec = importlib.util.spec_from_file_location(f"_ref_{package}_{module}", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


def rounded_and_exact(mod: ModuleType, fn_name: str, *args, **kwargs) -> dict[str, float]:
    fn = getattr(mod, fn_name)
    rounded = float(fn(*args, **kwargs))
    mod.round = lambda x, ndigits=None: x  # module globals shadow the builtin
    try:
        exact = float(fn(*args, **kwargs))
    finally:
        del mod.round
    return {"rounded": rounded, "exact": exact}


def lexical_golden() -> dict:
    ngram = load_by_path("diversity", "ngram_diversity")
    selfrep = load_by_path("diversity", "self_repetition")
    compression = load_by_path("diversity", "compression")
    return {
        "texts": TEXTS,
        "ngram_diversity_score": {
            f"num_n={k}": rounded_and_exact(ngram, "ngram_diversity_score", TEXTS, num_n=k)
            for k in (1, 2, 4)
        },
        "self_repetition_score": {
            "n=4": float(selfrep.self_repetition_score(TEXTS, n=4, verbose=False))
        },
        # Double gzip with a wall-clock mtime inside: varies run to run in the 4th digit.
        "compression_ratio": {"gzip": rounded_and_exact(compression, "compression_ratio", TEXTS)},
    }


def vendi_golden() -> dict:
    vendi = load_by_path("vendi_score", "vendi")
    x = np.asarray(reference_vectors())
    return {
        "vectors": reference_vectors(),
        "score_dual": {f"q={q}": float(vendi.score_dual(x, q=q)) for q in (1, 2)},
        "score_X": float(vendi.score_X(x)),  # ignores q: always q=1
    }


def versions() -> dict[str, str]:
    return {p: metadata.version(p) for p in ("diversity", "vendi-score", "nltk", "numpy", "scipy")}


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, payload in (("diversity_lexical", lexical_golden()), ("vendi", vendi_golden())):
        payload["versions"] = versions()
        path = OUT_DIR / f"{name}.json"
        path.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
