"""Generate posttrain's shipped default dataset (deterministic, standard library only).

    python scripts/make_default_dataset.py            # rewrites src/posttrain/resources/default_conversations.jsonl

Conversations are assembled from templates and topic tables written for posttrain: arithmetic and
unit conversions with computed answers, programming help with code blocks, JSON, recipes, travel,
writing help, multilingual text (CJK, RTL, combining marks, emoji ZWJ sequences), whitespace edge
cases, text that looks like control tokens, and a few long answers.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "posttrain" / "resources" / "default_conversations.jsonl"
N_CONVERSATIONS = 360

SYSTEM_PROMPTS = [
    "You are a helpful assistant.",
    "You are a concise assistant. Answer in as few words as possible.",
    "You are a patient tutor who explains each step.",
    "You are a senior software engineer reviewing code.",
    "Réponds en français si l'utilisateur écrit en français.",
    "You are a travel planner. Prefer trains over flights when the trip is under 6 hours.",
    "Always answer with valid JSON.",
    "  You are terse.  \n",
]

UNITS = [
    ("kilometers", "miles", 0.621371), ("miles", "kilometers", 1.609344), ("kilograms", "pounds", 2.204623),
    ("liters", "US gallons", 0.264172), ("inches", "centimeters", 2.54), ("meters", "feet", 3.28084),
]

LANGUAGE_PAIRS = [
    ("Translate 'good morning' into Japanese.", "おはようございます (ohayō gozaimasu)."),
    ("How do I say 'thank you' in Mandarin?", "谢谢 (xièxie)."),
    ("What does 'شكرا' mean?", "'شكرا' (shukran) is Arabic for 'thank you'."),
    ("Translate 'peace' into Hebrew.", "שלום (shalom) means peace; it is also used as a greeting."),
    ("Write 'coffee' in Korean.", "커피 (keopi)."),
    ("Is 'naïve' spelled with a diaeresis?", "It can be: 'naïve' and 'naive' are both accepted in English."),
    ("Combine e and a combining acute accent.", "e\u0301 renders like é but is two code points: U+0065 U+0301."),
    ("Which emoji is a family of four?", "👨‍👩‍👧‍👦 is one grapheme made of four emoji joined by zero-width joiners."),
    ("What is the Spanish word for 'year'?", "'Año', with an ñ. Without the tilde, 'ano' means something else."),
    ("Say hello in Greek and Russian.", "Greek: Γειά σου. Russian: Привет."),
]

RECIPES = {
    "pancakes": ["1 cup flour", "1 egg", "1 cup milk", "2 tbsp sugar", "2 tsp baking powder", "a pinch of salt"],
    "guacamole": ["2 ripe avocados", "1 lime", "1/4 onion", "1 small tomato", "cilantro", "salt"],
    "tomato soup": ["800 g canned tomatoes", "1 onion", "2 cloves garlic", "500 ml stock", "olive oil", "basil"],
    "omelette": ["3 eggs", "1 tbsp butter", "salt and pepper", "a handful of grated cheese"],
}

CITIES = [
    ("Paris", "Lyon", "about 2 hours by TGV"), ("Tokyo", "Kyoto", "about 2 hours 15 minutes by Shinkansen"),
    ("Madrid", "Barcelona", "about 2 hours 30 minutes by AVE"), ("London", "Edinburgh", "about 4 hours 30 minutes by train"),
    ("Berlin", "Munich", "about 4 hours by ICE"), ("New York", "Washington, D.C.", "about 3 hours by Amtrak"),
]

CODE_TASKS = [
    ("reverse a string in Python", "```python\ndef reverse(s: str) -> str:\n    return s[::-1]\n```\n\nSlicing with a step of -1 walks the string backwards."),
    ("read a file line by line in Python", "```python\nwith open(path, encoding=\"utf-8\") as f:\n    for line in f:\n        print(line.rstrip(\"\\n\"))\n```"),
    ("sum a list of numbers in JavaScript", "```javascript\nconst total = numbers.reduce((acc, x) => acc + x, 0);\n```"),
    ("check if a number is prime in Python", "```python\ndef is_prime(n: int) -> bool:\n    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n        if n % i == 0:\n            return False\n        i += 1\n    return True\n```"),
    ("count words in a shell pipeline", "```bash\ntr -s '[:space:]' '\\n' < input.txt | grep -c .\n```"),
    ("select the 5 newest rows in SQL", "```sql\nSELECT *\nFROM events\nORDER BY created_at DESC\nLIMIT 5;\n```"),
]

WRITING = [
    ("Make this sentence more formal: 'gonna be late, sorry'", "I apologize; I will be arriving late."),
    ("Fix the grammar: 'Their going to the park tomorrow.'", "They're going to the park tomorrow."),
    ("Give me a haiku about autumn.", "Crisp leaves drift and fall,\nthe maple lets go of red,\nwind keeps what it finds."),
    ("Summarize: 'The meeting moved from Tuesday to Thursday because the room was booked.'", "The meeting is now on Thursday; the room was unavailable Tuesday."),
    ("Write a one-line thank-you note to a colleague.", "Thanks so much for covering my shift on Friday. I owe you one!"),
]

CONTROL_LIKE = [
    "Why does my log contain the text <|eot_id|> in the middle of a line?",
    "Is '<|im_start|>user' a valid string in a Python file?",
    "My template prints [INST] and </s> literally. Is that a bug?",
    "Explain what <think> tags are used for in some chat formats.",
]


def arithmetic(rng: random.Random) -> list[dict[str, str]]:
    a, b = rng.randint(12, 9999), rng.randint(2, 999)
    op = rng.choice(["+", "-", "*"])
    result = {"+": a + b, "-": a - b, "*": a * b}[op]
    word = {"+": "sum", "-": "difference", "*": "product"}[op]
    return [
        {"role": "user", "content": f"What is {a} {op} {b}?"},
        {"role": "assistant", "content": f"The {word} is {result}." if rng.random() < 0.5 else f"{a} {op} {b} = {result}"},
    ]


def conversion(rng: random.Random) -> list[dict[str, str]]:
    src, dst, factor = rng.choice(UNITS)
    value = rng.choice([1, 2.5, 5, 10, 12, 42, 100, 250])
    answer = round(value * factor, 2)
    return [
        {"role": "user", "content": f"Convert {value} {src} to {dst}."},
        {"role": "assistant", "content": f"{value} {src} is about {answer} {dst} (1 {src} = {factor} {dst})."},
    ]


def word_problem(rng: random.Random) -> list[dict[str, str]]:
    price, n, paid = rng.randint(2, 19), rng.randint(2, 9), 100
    total = price * n
    return [
        {"role": "user", "content": f"I buy {n} notebooks at ${price} each and pay with a ${paid} bill. How much change do I get?"},
        {"role": "assistant", "content": f"The notebooks cost {n} × ${price} = ${total}.\nChange: ${paid} − ${total} = ${paid - total}."},
    ]


def recipe(rng: random.Random) -> list[dict[str, str]]:
    dish = rng.choice(sorted(RECIPES))
    items = RECIPES[dish]
    listing = "\n".join(f"- {x}" for x in items)
    turns = [
        {"role": "user", "content": f"What do I need to make {dish}?"},
        {"role": "assistant", "content": f"For {dish} you need:\n{listing}"},
    ]
    if rng.random() < 0.5:
        turns += [
            {"role": "user", "content": "Can I make it without the first ingredient?"},
            {"role": "assistant", "content": f"Leaving out {items[0]} changes the result a lot; substitute rather than omit it."},
        ]
    return turns


def travel(rng: random.Random) -> list[dict[str, str]]:
    a, b, how = rng.choice(CITIES)
    return [
        {"role": "user", "content": f"How long does it take to get from {a} to {b}?"},
        {"role": "assistant", "content": f"From {a} to {b} it is {how}. Book early for cheaper fares."},
    ]


def code(rng: random.Random) -> list[dict[str, str]]:
    task, answer = rng.choice(CODE_TASKS)
    return [{"role": "user", "content": f"How do I {task}?"}, {"role": "assistant", "content": answer}]


def json_answer(rng: random.Random) -> list[dict[str, str]]:
    name = rng.choice(["Zoë", "Ana", "李雷", "Omar", "Søren"])
    age = rng.randint(18, 80)
    obj = {"name": name, "age": age, "languages": rng.sample(["en", "fr", "zh", "ar", "da", "es"], 2)}
    return [
        {"role": "system", "content": "Always answer with valid JSON."},
        {"role": "user", "content": f"Make a JSON record for {name}, age {age}."},
        {"role": "assistant", "content": json.dumps(obj, ensure_ascii=False, indent=2 if rng.random() < 0.5 else None)},
    ]


def language(rng: random.Random) -> list[dict[str, str]]:
    q, a = rng.choice(LANGUAGE_PAIRS)
    return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]


def writing(rng: random.Random) -> list[dict[str, str]]:
    q, a = rng.choice(WRITING)
    return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]


def whitespace(rng: random.Random) -> list[dict[str, str]]:
    variants = [
        ("  leading and trailing spaces  ", "  Spaces are kept exactly.  "),
        ("\nstarts with a newline", "\n\nSo does this answer."),
        ("windows\r\nline endings\r\n", "Handled:\r\nCRLF stays CRLF.\r\n"),
        ("tab\tseparated\tvalues", "col_a\tcol_b\n1\t2"),
        ("no\u00a0break\u00a0spaces and zero\u200bwidth", "NBSP (U+00A0) and ZWSP (U+200B) are ordinary characters here."),
    ]
    q, a = rng.choice(variants)
    return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]


def control_like(rng: random.Random) -> list[dict[str, str]]:
    q = rng.choice(CONTROL_LIKE)
    return [
        {"role": "user", "content": q},
        {"role": "assistant", "content": "Those are plain characters in your text. Only the tokenizer's chat template "
                                         "should produce real control tokens, e.g. <|eot_id|> at the end of a turn."},
    ]


def long_answer(rng: random.Random) -> list[dict[str, str]]:
    steps = rng.randint(25, 60)
    body = "\n".join(
        f"{i}. Step {i}: measure, record the value {rng.randint(1, 10_000)}, and compare it with step {max(1, i - 1)}."
        for i in range(1, steps + 1)
    )
    return [
        {"role": "user", "content": "Write a detailed checklist for calibrating a kitchen scale."},
        {"role": "assistant", "content": "Here is a thorough checklist:\n\n" + body + "\n\nDone."},
    ]


GENERATORS = [
    (arithmetic, 6), (conversion, 5), (word_problem, 4), (recipe, 4), (travel, 4), (code, 5), (json_answer, 2),
    (language, 5), (writing, 4), (whitespace, 3), (control_like, 1), (long_answer, 1),
]


def conversation(rng: random.Random) -> list[dict[str, str]]:
    funcs = [f for f, w in GENERATORS for _ in range(w)]
    messages: list[dict[str, str]] = []
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
        messages += rng.choice(funcs)(rng)
    # json_answer brings its own system prompt; keep only a leading one.
    systems = [m for m in messages if m["role"] == "system"]
    messages = [m for m in messages if m["role"] != "system"]
    if systems:
        messages.insert(0, systems[0])
    elif rng.random() < 0.35:
        messages.insert(0, {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    return messages


def generate(n: int = N_CONVERSATIONS, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join(json.dumps({"messages": conversation(rng)}, ensure_ascii=False) + "\n" for _ in range(n))


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(generate(), encoding="utf-8")
    print(f"wrote {OUT} ({N_CONVERSATIONS} conversations)")


if __name__ == "__main__":
    main()
