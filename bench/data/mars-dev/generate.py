"""Build the MARS development set (cards.jsonl, queries.jsonl) from catalog.txt, deterministically.

    .venv/bin/python bench/data/mars-dev/generate.py [--out DIR] [--seed N]

See README.md next to this file for how the set is built and graded.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20240601
QUERIES_PER_CAPABILITY = 16

BRANDS = (
    "Acorn", "Aether", "Albatross", "Amber", "Anvil", "Apex", "Arbor", "Atlas", "Aurora", "Basalt",
    "Beacon", "Birch", "Bolt", "Cedar", "Cinder", "Cobalt", "Comet", "Copper", "Coral", "Crane",
    "Delta", "Dune", "Echo", "Ember", "Falcon", "Fern", "Flint", "Fjord", "Gale", "Garnet",
    "Glacier", "Granite", "Harbor", "Hazel", "Helix", "Heron", "Indigo", "Iris", "Jade", "Juniper",
    "Kestrel", "Lark", "Lumen", "Lynx", "Maple", "Marlin", "Meridian", "Mesa", "Nimbus", "Nova",
    "Oak", "Onyx", "Orbit", "Osprey", "Pebble", "Pine", "Pixel", "Prism", "Quartz", "Raven",
    "Reef", "Ridge", "Sable", "Sage", "Sequoia", "Sierra", "Slate", "Sparrow", "Spruce", "Summit",
    "Tern", "Thistle", "Tidal", "Topaz", "Tundra", "Umber", "Vale", "Vertex", "Willow", "Zephyr",
)  # fmt: skip
SUFFIXES = ("Agent", "Bot", "Pro", "Service", "Assistant", "", "Works", "Engine")
SPECIALIST_DESCRIPTIONS = (
    "Specialist agent for {lname}. {desc}",
    "{desc} That is all it does, and it does it well.",
    "A focused {domain} agent. {desc}",
    "Built for {lname}: {ldesc}",
    "{brand} handles {lname} end to end. {desc}",
    "Dedicated {lname} service. {desc}",
)
GENERALIST_NAMES = ("Toolkit", "Suite", "Hub", "Assistant", "Workbench", "Helper")
QUESTION_WORDS = frozenset(
    [
        "what",
        "how",
        "which",
        "when",
        "is",
        "are",
        "does",
        "do",
        "can",
        "should",
        "who",
        "where",
        "will",
        "why",
        "am",
    ]
)
STATEMENT_WORDS = frozenset(["my", "i", "someone", "people", "our"])
IMPERATIVE_FRAMES = (
    "{core}", "I need an agent to {core}", "Can someone {core}?", "Looking for help: {core}",
    "{Core}, please.", "Which agent can {core}?", "Task: {core}", "Need a tool that will {core}",
    "Who could {core} for me?", "Please {core}.",
)  # fmt: skip
QUESTION_FRAMES = (
    "{core}", "{Core}?", "Quick question: {core}?", "Can an agent tell me {core}?",
    "Help me figure out {core}", "I want to know {core}", "{Core}? Need an answer today.",
    "Task: {core}",
)  # fmt: skip
STATEMENT_FRAMES = (
    "{core}", "{Core}.", "Help needed: {core}.", "{Core} - can an agent help?", "Hi, {core}.",
    "Problem: {core}.", "{Core}; who can sort this out?", "Support request: {core}",
)  # fmt: skip


@dataclass(frozen=True)
class Capability:
    domain: str
    key: str
    name: str
    description: str
    tags: tuple[str, ...]
    examples: tuple[str, ...]
    cores: tuple[str, ...]

    def skill(self, examples: int | None = None) -> dict[str, object]:
        return {
            "name": self.name,
            "description": self.description,
            "tags": list(self.tags),
            "examples": list(self.examples[:examples] if examples is not None else self.examples),
        }


def read_catalog(path: Path) -> list[Capability]:
    caps: list[Capability] = []
    domain = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("## "):
            domain = line[3:].strip()
            continue
        if not line.strip() or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) != 6 or not domain:
            raise SystemExit(f"{path}:{number}: expected 6 fields under a domain")
        key, name, description, tags, examples, cores = fields
        caps.append(
            Capability(
                domain,
                f"{domain}/{key}",
                name,
                description,
                tuple(t.strip() for t in tags.split(",")),
                tuple(e.strip() for e in examples.split(";")),
                tuple(c.strip() for c in cores.split(";")),
            )
        )
    return caps


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def build(seed: int = SEED) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    rng = random.Random(seed)
    caps = read_catalog(HERE / "catalog.txt")
    by_domain: dict[str, list[Capability]] = {}
    for cap in caps:
        by_domain.setdefault(cap.domain, []).append(cap)

    used_ids: set[str] = set()

    def new_id() -> str:
        while True:
            agent_id = f"agent-{rng.getrandbits(32):08x}"
            if agent_id not in used_ids:
                used_ids.add(agent_id)
                return agent_id

    cards: list[dict[str, object]] = []
    grades: dict[str, dict[str, int]] = {cap.key: {} for cap in caps}
    for cap in caps:
        for _ in range(rng.choice((1, 2, 2, 3, 3))):
            agent_id = new_id()
            brand = rng.choice(BRANDS)
            secondaries: list[Capability] = []
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                pool = by_domain[cap.domain] if rng.random() < 0.7 else caps
                other = rng.choice(pool)
                if other is not cap and other not in secondaries:
                    secondaries.append(other)
            name = f"{brand} {cap.name.title()} {rng.choice(SUFFIXES)}".strip()
            description = rng.choice(SPECIALIST_DESCRIPTIONS).format(
                lname=cap.name.lower(),
                desc=cap.description,
                ldesc=_lower_first(cap.description),
                domain=cap.domain,
                brand=brand,
            )
            if secondaries:
                description += " Also: " + ", ".join(s.name.lower() for s in secondaries) + "."
            skills = [cap.skill()] + [s.skill(examples=1) for s in secondaries]
            cards.append(
                {"id": agent_id, "name": name, "description": description, "skills": skills}
            )
            grades[cap.key][agent_id] = 2
            for other in secondaries:
                grades[other.key].setdefault(agent_id, 1)
    for domain, members in by_domain.items():
        for _ in range(2):
            agent_id = new_id()
            chosen = rng.sample(members, min(4, len(members)))
            names = [c.name.lower() for c in chosen]
            cards.append(
                {
                    "id": agent_id,
                    "name": f"{rng.choice(BRANDS)} {domain.title()} {rng.choice(GENERALIST_NAMES)}",
                    "description": f"A general {domain} assistant covering "
                    + ", ".join(names[:-1])
                    + f" and {names[-1]}.",
                    "skills": [c.skill(examples=1) for c in chosen],
                }
            )
            for c in chosen:
                grades[c.key].setdefault(agent_id, 1)
    rng.shuffle(cards)

    queries: list[dict[str, object]] = []
    seen: set[str] = set()
    for cap in caps:
        candidates: list[str] = []
        for core in cap.cores:
            first = core.split()[0].lower()
            if first in QUESTION_WORDS:
                frames = QUESTION_FRAMES
            elif first in STATEMENT_WORDS:
                frames = STATEMENT_FRAMES
            else:
                frames = IMPERATIVE_FRAMES
            candidates.extend(f.format(core=core, Core=_upper_first(core)) for f in frames)
        rng.shuffle(candidates)
        taken = 0
        for text in candidates:
            if text.lower() in seen:
                continue
            seen.add(text.lower())
            relevant = dict(sorted(grades[cap.key].items(), key=lambda kv: (-kv[1], kv[0])))
            queries.append({"query": text, "relevant": relevant, "capability": cap.key})
            taken += 1
            if taken == QUERIES_PER_CAPABILITY:
                break
    rng.shuffle(queries)
    return cards, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    cards, queries = build(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("cards.jsonl", cards), ("queries.jsonl", queries)):
        with (args.out / name).open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(cards)} cards, {len(queries)} queries -> {args.out}")


if __name__ == "__main__":
    main()
