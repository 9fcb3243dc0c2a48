"""Generate posttrain's shipped default dataset (deterministic, standard library only, no network).

    python scripts/make_default_dataset.py   # rewrites src/posttrain/resources/default_conversations.jsonl

Conversations are assembled from templates and topic tables written for posttrain: arithmetic,
word problems and unit conversions with computed answers, programming help with code blocks,
JSON, recipes scaled to a number of servings, travel budgets, history, writing help, multilingual
text (CJK, Arabic/Hebrew, Devanagari, combining marks, emoji ZWJ sequences), whitespace edge cases
(leading/trailing spaces and newlines, CRLF, tabs), text that looks like chat control tokens, and a
few long messages. ``tests/test_default_data.py`` checks that the committed file equals
``generate()``, so edit this script and rerun it rather than editing the JSONL by hand.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path

OUT = (Path(__file__).resolve().parent.parent / "src" / "posttrain" / "resources" / "default_conversations.jsonl")
N_CONVERSATIONS = 360

Turn = tuple[str, str]  # (user, assistant)

SYSTEM_PROMPTS = [
    "You are a helpful assistant.",
    "You are a concise assistant. Answer in as few words as possible.",
    "You are a patient tutor who explains each step.",
    "You are a senior software engineer reviewing code. Point out bugs before style issues.",
    "Réponds en français si l'utilisateur écrit en français.",
    "You are a travel planner. Prefer trains over flights when the trip is under 6 hours.",
    "  You are terse.  \n",
    "You are a friendly cooking assistant.\nUse metric units unless asked otherwise.\nKeep lists short.",
    "Today's date is 2024-03-15. The user is in the Europe/Berlin time zone.",
    "You are an assistant for a history museum. Give dates precisely and say when a date is approximate.",
    "Answer in Markdown. Use headings only for answers longer than three paragraphs.",
]

NAMES = ["Zoë", "Ana", "李雷", "Omar", "Søren", "Priya", "Kwame", "Małgorzata", "José", "Yuki", "Noa", "Ève"]

# ---------------------------------------------------------------------------------------------- math


def arithmetic(rng: random.Random) -> list[Turn]:
    a, b = rng.randint(12, 9999), rng.randint(2, 999)
    op, word, result = rng.choice([("+", "sum", a + b), ("-", "difference", a - b), ("*", "product", a * b)])
    question = rng.choice([f"What is {a} {op} {b}?", f"calculate {a}{op}{b}", f"Quick one: {a} {op} {b} = ?"])
    answer = rng.choice([f"The {word} is {result}.", f"{a} {op} {b} = {result}", f"{result:,}"])
    turns = [(question, answer)]
    if rng.random() < 0.4:
        k = rng.randint(2, 12)
        turns.append(
            (rng.choice([f"Now multiply that by {k}.", f"And times {k}?"]), f"{result} × {k} = {result * k}.")
        )
    return turns


def percentage(rng: random.Random) -> list[Turn]:
    pct, base = rng.choice([5, 10, 12.5, 15, 18, 20, 25, 40, 75]), rng.randrange(40, 2000, 10)
    value = base * pct / 100
    return [
        (
            f"What is {pct}% of {base}?",
            f"{pct}% of {base} is {value:g}.\n\nWorking: {base} × {pct} / 100 = {value:g}.",
        )
    ]


def equation(rng: random.Random) -> list[Turn]:
    x, a, b = rng.randint(-20, 20), rng.randint(2, 12), rng.randint(-50, 50)
    c = a * x + b
    sign = "+" if b >= 0 else "-"
    return [
        (
            f"Solve for x: {a}x {sign} {abs(b)} = {c}",
            f"1. {f'Subtract {b} from' if b >= 0 else f'Add {-b} to'} both sides: {a}x = {c - b}\n2. Divide by {a}: x = {x}\n\n"
            f"Check: {a} · ({x}) {sign} {abs(b)} = {c} ✓",
        )
    ]


def fraction(rng: random.Random) -> list[Turn]:
    g, p, q = rng.randint(2, 9), rng.randint(1, 12), rng.randint(13, 30)
    d = math.gcd(p, q)
    num, den = p * g, q * g
    return [
        (
            f"Simplify the fraction {num}/{den}.",
            f"The greatest common divisor of {num} and {den} is {g * d}, so {num}/{den} = {p // d}/{q // d}.",
        )
    ]


def average(rng: random.Random) -> list[Turn]:
    xs = [rng.randint(1, 100) for _ in range(rng.randint(4, 8))]
    mean = sum(xs) / len(xs)
    ordered = sorted(xs)
    mid = len(xs) // 2
    median = ordered[mid] if len(xs) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return [
        (
            f"Find the mean and median of {', '.join(map(str, xs))}.",
            f"- Mean: {sum(xs)} / {len(xs)} = {mean:.2f}\n- Median: sorted, the list is {ordered}, "
            f"so the median is {median:g}.",
        )
    ]


def word_problem(rng: random.Random) -> list[Turn]:
    kind = rng.randrange(4)
    if kind == 0:
        price, n, paid = rng.randint(2, 19), rng.randint(2, 9), rng.choice([50, 100, 200])
        total = price * n
        return [
            (
                f"I buy {n} notebooks at ${price} each and pay with a ${paid} bill. How much change do I get?",
                f"The notebooks cost {n} × ${price} = ${total}.\nChange: ${paid} − ${total} = ${paid - total}.",
            )
        ]
    if kind == 1:
        km, minutes = rng.randrange(30, 600, 5), rng.randrange(60, 480, 15)
        speed = km / (minutes / 60)
        return [
            (
                f"A train covers {km} km in {minutes // 60} h {minutes % 60} min. What is its average speed?",
                f"Time: {minutes} min = {minutes / 60:g} h.\nSpeed = {km} km ÷ {minutes / 60:g} h ≈ {speed:.1f} km/h.",
            )
        ]
    if kind == 2:
        w, h = rng.randint(2, 15), rng.randint(2, 15)
        return [
            (
                f"My room is {w} m by {h} m. How many square meters of flooring do I need, with 10% extra for cuts?",
                f"Area: {w} × {h} = {w * h} m².\nWith 10% extra: {w * h} × 1.1 = {w * h * 11 / 10:g} m², "
                f"so buy {math.ceil(w * h * 11 / 10)} m².",
            )
        ]
    bill, people, tip = rng.randrange(40, 400), rng.randint(2, 8), rng.choice([10, 15, 18, 20])
    total = bill * (1 + tip / 100)
    return [
        (
            f"Split a ${bill} restaurant bill between {people} people with a {tip}% tip.",
            f"Total with tip: ${bill} × {1 + tip / 100:g} = ${total:.2f}\nPer person: ${total:.2f} / {people} = "
            f"${total / people:.2f}",
        )
    ]


UNITS = [
    ("kilometers", "miles", 0.621371),
    ("miles", "kilometers", 1.609344),
    ("kilograms", "pounds", 2.204623),
    ("pounds", "kilograms", 0.453592),
    ("liters", "US gallons", 0.264172),
    ("inches", "centimeters", 2.54),
    ("meters", "feet", 3.28084),
    ("ounces", "grams", 28.349523),
    ("cups", "milliliters", 236.588),
]


def conversion(rng: random.Random) -> list[Turn]:
    if rng.random() < 0.25:
        c = rng.choice([-40, -10, 0, 4, 18, 21, 25, 37, 100, 180])
        f = c * 9 / 5 + 32
        return [(f"{c} °C in Fahrenheit?", f"{c} °C = {c} × 9/5 + 32 = {f:g} °F.")]
    src, dst, factor = rng.choice(UNITS)
    value = rng.choice([1, 2.5, 5, 10, 12, 42, 100, 250])
    answer = round(value * factor, 2)
    question = rng.choice(
        [f"Convert {value} {src} to {dst}.", f"how many {dst} is {value} {src}", f"{value} {src} → {dst}?"]
    )
    return [(question, f"{value} {src} is about {answer:g} {dst} (1 {src} = {factor} {dst}).")]


# ------------------------------------------------------------------------------------- programming

CODE_TASKS = [
    ("reverse a string in Python", "```python\ndef reverse(s: str) -> str:\n    return s[::-1]\n```\n\nSlicing with a step of -1 walks the string backwards. Note that this reverses code points, so combining marks can end up on the wrong letter."),
    ("read a file line by line in Python", '```python\nwith open(path, encoding="utf-8") as f:\n    for line in f:\n        print(line.rstrip("\\n"))\n```\n\nIterating over the file object reads one line at a time, so memory stays flat for large files.'),
    ("sum a list of numbers in JavaScript", "```javascript\nconst total = numbers.reduce((acc, x) => acc + x, 0);\n```\n\nPass the initial value `0`; without it `reduce` throws on an empty array."),
    ("check if a number is prime in Python", "```python\ndef is_prime(n: int) -> bool:\n    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n        if n % i == 0:\n            return False\n        i += 1\n    return True\n```\n\nTesting divisors up to √n is enough: a larger factor would pair with a smaller one."),
    ("count words in a file from the shell", "```bash\ntr -s '[:space:]' '\\n' < input.txt | grep -c .\n```\n\nOr simply `wc -w input.txt`."),
    ("select the 5 newest rows in SQL", "```sql\nSELECT *\nFROM events\nORDER BY created_at DESC\nLIMIT 5;\n```"),
    ("parse JSON in Go", '```go\ntype User struct {\n\tName string `json:"name"`\n\tAge  int    `json:"age"`\n}\n\nvar u User\nif err := json.Unmarshal(data, &u); err != nil {\n\treturn err\n}\n```\n\nOnly exported fields (capitalized) are filled in.'),
    ("read a line from stdin in Rust", '```rust\nuse std::io;\n\nfn main() {\n    let mut line = String::new();\n    io::stdin().read_line(&mut line).expect("read failed");\n    println!("you typed: {}", line.trim_end());\n}\n```'),
    ("deduplicate a list but keep the order in Python", "```python\nunique = list(dict.fromkeys(items))\n```\n\nDicts keep insertion order (Python 3.7+), so the first occurrence of each item wins."),
    ("make an HTTP GET request in Python", '```python\nimport urllib.request\n\nwith urllib.request.urlopen("https://example.com", timeout=10) as resp:\n    body = resp.read().decode("utf-8")\n```\n\nThe `requests` library is friendlier if you can add a dependency.'),
]

ERRORS = [
    ('TypeError: can only concatenate str (not "int") to str', 'count = 3\nprint("items: " + count)', 'You are adding a string and an integer. Convert the number first:\n\n```python\nprint("items: " + str(count))\n# or, clearer:\nprint(f"items: {count}")\n```'),
    ("IndexError: list index out of range", "xs = [1, 2, 3]\nfor i in range(len(xs) + 1):\n    print(xs[i])", "`range(len(xs) + 1)` goes one past the last index (valid indices are 0–2). Iterate over the list directly:\n\n```python\nfor x in xs:\n    print(x)\n```"),
    ("KeyError: 'email'", 'user = {"name": "Ana"}\nprint(user["email"])', 'The dict has no `email` key. Use `.get` with a default when the key is optional:\n\n```python\nprint(user.get("email", "<no email>"))\n```'),
    ("UnboundLocalError: cannot access local variable 'total'", "total = 0\ndef add(x):\n    total += x", "Assigning to `total` inside the function makes it local, so `total += x` reads it before it exists. Return the new value instead of mutating a global:\n\n```python\ndef add(total: int, x: int) -> int:\n    return total + x\n```"),
]


def code(rng: random.Random) -> list[Turn]:
    task, answer = rng.choice(CODE_TASKS)
    question = rng.choice([f"How do I {task}?", f"how to {task}", f"Show me how to {task}, please."])
    turns = [(question, answer)]
    if rng.random() < 0.3:
        turns.append(("Thanks!", "You're welcome! Tell me if you'd like a test for it too."))
    return turns


def debug(rng: random.Random) -> list[Turn]:
    err, snippet, fix = rng.choice(ERRORS)
    fence = "```" if rng.random() < 0.7 else ""
    body = f"{fence}\n{snippet}\n{fence}" if fence else "\n" + snippet
    return [(f"I get `{err}` from this code:\n{body}\nWhat's wrong?", fix)]


def json_answer(rng: random.Random) -> list[Turn]:
    name = rng.choice(NAMES)
    age = rng.randint(18, 80)
    obj = {
        "name": name,
        "age": age,
        "languages": rng.sample(["en", "fr", "zh", "ar", "da", "es", "ja", "he"], 2),
        "active": rng.random() < 0.5,
        "score": round(rng.uniform(0, 100), 1),
        "manager": None,
    }
    text = json.dumps(obj, ensure_ascii=False, indent=2 if rng.random() < 0.5 else None)
    if rng.random() < 0.5:
        return [(f"Make a JSON record for {name}, age {age}. Output only JSON.", text)]
    return [
        (
            f"Give me a JSON example for a user called {name}.",
            f"```json\n{text}\n```\n\n`manager` is `null` because the field is optional.",
        )
    ]


# ------------------------------------------------------------------------------- everyday topics

RECIPES = {  # dish: (servings, [(quantity, unit, ingredient)], method); unit "" = a count (pluralized)
    "pancakes": (4, [(300, "g", "flour"), (2, "", "egg"), (500, "ml", "milk"), (2, "tbsp", "sugar"), (4, "tsp", "baking powder")], "Whisk the dry ingredients, add the eggs and milk, rest the batter 10 minutes, then cook on a hot pan."),
    "guacamole": (4, [(2, "", "ripe avocado"), (1, "", "lime"), (0.25, "", "red onion"), (1, "", "small tomato"), (10, "g", "cilantro")], "Mash the avocados, stir in lime juice, chopped onion, tomato and cilantro, and salt to taste."),
    "tomato soup": (4, [(800, "g", "canned tomatoes"), (1, "", "onion"), (2, "cloves", "garlic"), (500, "ml", "vegetable stock"), (2, "tbsp", "olive oil")], "Soften the onion and garlic in oil, add tomatoes and stock, simmer 20 minutes, then blend."),
    "omelette": (1, [(3, "", "egg"), (1, "tbsp", "butter"), (30, "g", "grated cheese")], "Beat the eggs, melt the butter over medium heat, pour in the eggs, add cheese, fold when just set."),
    "dal": (4, [(250, "g", "red lentils"), (1, "l", "water"), (1, "tsp", "turmeric"), (1, "tsp", "cumin seeds"), (2, "cloves", "garlic")], "Simmer the lentils with turmeric until soft (about 20 minutes); fry cumin and garlic in oil and stir it in."),
}


def _ingredient(q: float, unit: str, name: str) -> str:
    amount = {0.25: "¼", 0.5: "½", 0.75: "¾"}.get(q, f"{q:.3g}")
    if not unit:
        plural = name + ("es" if name.endswith("o") else "s") if q > 1 else name
        return f"- {amount} {plural}"
    return f"- {amount} {unit} {name}"


def recipe(rng: random.Random) -> list[Turn]:
    dish = rng.choice(sorted(RECIPES))
    base, items, method = RECIPES[dish]
    listing = "\n".join(_ingredient(q, u, name) for q, u, name in items)
    turns = [
        (
            rng.choice([f"What do I need to make {dish}?", f"Recipe for {dish}?", f"how do i make {dish}"]),
            f"For {dish} ({base} serving{'s' if base > 1 else ''}):\n\n{listing}\n\n{method}",
        )
    ]
    if rng.random() < 0.6:
        want = rng.choice([n for n in (1, 2, 3, 4, 6, 8) if n != base])
        scaled = "\n".join(_ingredient(q * want / base, u, name) for q, u, name in items)
        turns.append((f"Scale it to {want} servings.", f"Multiply everything by {want}/{base}:\n\n{scaled}"))
    return turns


CITIES = [
    ("Paris", "Lyon", "about 2 hours by TGV"),
    ("Tokyo", "Kyoto", "about 2 hours 15 minutes by Shinkansen"),
    ("Madrid", "Barcelona", "about 2 hours 30 minutes by high-speed train"),
    ("London", "Edinburgh", "about 4 hours 30 minutes by train"),
    ("Berlin", "Munich", "about 4 hours by ICE"),
    ("New York", "Washington, D.C.", "about 3 hours by Amtrak"),
    ("Rome", "Florence", "about 1 hour 35 minutes by Frecciarossa"),
    ("Seoul", "Busan", "about 2 hours 30 minutes by KTX"),
]


def travel(rng: random.Random) -> list[Turn]:
    a, b, how = rng.choice(CITIES)
    if rng.random() < 0.5:
        return [
            (
                f"How long does it take to get from {a} to {b}?",
                f"From {a} to {b} it is {how}. Book early for cheaper fares, and check whether seat reservations are required.",
            )
        ]
    nights, hotel, daily = rng.randint(2, 9), rng.randrange(60, 260, 5), rng.randrange(30, 120, 5)
    total = nights * hotel + (nights + 1) * daily
    return [
        (
            f"Budget for {nights} nights in {b}: hotel ${hotel}/night, ${daily}/day for food and transport.",
            f"| item | cost |\n|---|---:|\n| hotel ({nights} × ${hotel}) | ${nights * hotel} |\n"
            f"| daily spending ({nights + 1} days × ${daily}) | ${(nights + 1) * daily} |\n| **total** | **${total}** |\n\n"
            f"I counted {nights + 1} days because arrival and departure days both cost money.",
        )
    ]


HISTORY = [
    ("the first Moon landing", "20 July 1969", "Apollo 11's lunar module landed on 20 July 1969. Neil Armstrong and Buzz Aldrin walked on the surface while Michael Collins stayed in lunar orbit."),
    ("the fall of the Berlin Wall", "9 November 1989", "The Berlin Wall opened on the night of 9 November 1989, after East German authorities announced relaxed travel rules. Germany reunified on 3 October 1990."),
    ("the Magna Carta", "1215", "King John of England agreed to the Magna Carta at Runnymede in June 1215. It limited royal power and is remembered for the principle that the king is subject to law."),
    ("the storming of the Bastille", "14 July 1789", "Parisians stormed the Bastille fortress on 14 July 1789, an early turning point of the French Revolution. France's national day commemorates it."),
    ("the Wright brothers' first powered flight", "17 December 1903", "Orville and Wilbur Wright flew the first controlled, sustained powered aeroplane flight near Kitty Hawk, North Carolina, on 17 December 1903. The first flight lasted 12 seconds."),
    ("the fall of Constantinople", "29 May 1453", "Ottoman forces under Mehmed II took Constantinople on 29 May 1453, ending the Byzantine Empire."),
    ("the adoption of the Universal Declaration of Human Rights", "10 December 1948", "The UN General Assembly adopted the Universal Declaration of Human Rights in Paris on 10 December 1948."),
    ("the opening of the Suez Canal", "17 November 1869", "The Suez Canal opened on 17 November 1869, linking the Mediterranean and the Red Sea."),
    ("the end of the First World War's fighting", "11 November 1918", "The armistice signed at Compiègne took effect at 11 a.m. on 11 November 1918; the Treaty of Versailles followed in 1919."),
    ("Gutenberg's printing press", "around 1440–1450", "Johannes Gutenberg developed movable-type printing in Mainz around 1440–1450; his Bible was printed by about 1455. The exact dates are approximate."),
]


def history(rng: random.Random) -> list[Turn]:
    event, date, detail = rng.choice(HISTORY)
    if rng.random() < 0.5:
        return [
            (rng.choice([f"When was {event}?", f"what year was {event}"]), f"{date[0].upper()}{date[1:]}.")
        ]
    turns = [(f"Tell me briefly about {event}.", detail)]
    if rng.random() < 0.4:
        turns.append(
            ("Can you give me that as one sentence?", f"{event[0].upper()}{event[1:]} dates to {date}.")
        )
    return turns


WRITING = [
    ("Make this sentence more formal: 'gonna be late, sorry'", "I apologize; I will be arriving late."),
    ("Fix the grammar: 'Their going to the park tomorrow.'", 'They\'re going to the park tomorrow.\n\n("Their" is possessive; "they\'re" is short for "they are".)'),
    ("Give me a haiku about autumn.", "Crisp leaves drift and fall,\nthe maple lets go of red,\nwind keeps what it finds."),
    ("Summarize: 'The meeting moved from Tuesday to Thursday because the room was booked.'", "The meeting is now on Thursday; the room was unavailable Tuesday."),
    ("Write a one-line thank-you note to a colleague.", "Thanks so much for covering my shift on Friday. I owe you one!"),
    ("What's the difference between 'affect' and 'effect'?", 'Usually *affect* is the verb ("the rain affected traffic") and *effect* is the noun ("the rain had an effect"). *Effect* as a verb means to bring about: "to effect change".'),
    ("Suggest three titles for a blog post about learning to bake bread.", "1. Flour, Water, Patience\n2. My First Hundred Loaves\n3. What Sourdough Taught Me About Waiting"),
    ("Shorten this: 'At this point in time we are not in a position to make a decision.'", "We can't decide yet."),
]


def writing(rng: random.Random) -> list[Turn]:
    if rng.random() < 0.35:
        name = rng.choice(NAMES)
        d1, d2 = rng.sample(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"], 2)
        topic = rng.choice(
            ["project review", "dentist appointment", "coffee chat", "quarterly planning meeting"]
        )
        return [
            (
                f"Write a short email to {name} moving our {topic} from {d1} to {d2}.",
                f"Subject: Moving our {topic} to {d2}\n\nHi {name},\n\nWould it be possible to move our {topic} "
                f"from {d1} to {d2}, same time? Something came up on {d1}. If {d2} doesn't work, "
                "let me know a time that does.\n\nThanks,\nAlex",
            )
        ]
    return [rng.choice(WRITING)]


# ------------------------------------------------------------------------------ multilingual / edge

LANGUAGE_PAIRS = [
    ("Translate 'good morning' into Japanese.", "おはようございます (ohayō gozaimasu)."),
    ("How do I say 'thank you' in Mandarin?", "谢谢 (xièxie)."),
    ("What does 'شكرا' mean?", "'شكرا' (shukran) is Arabic for 'thank you'."),
    ("Translate 'peace' into Hebrew.", "שלום (shalom) means peace; it is also used as a greeting."),
    ("Write 'coffee' in Korean.", "커피 (keopi)."),
    ("Is 'naïve' spelled with a diaeresis?", "It can be: 'naïve' and 'naive' are both accepted in English."),
    ("Combine e and a combining acute accent.", "e\u0301 renders like é but is two code points: U+0065 U+0301. NFC normalization turns it into the single code point U+00E9."),
    ("Which emoji is a family of four?", "👨‍👩‍👧‍👦 is one grapheme made of four emoji joined by zero-width joiners (U+200D)."),
    ("What is the Spanish word for 'year'?", "'Año', with an ñ. Without the tilde, 'ano' means something else."),
    ("Say hello in Greek and Russian.", "Greek: Γειά σου. Russian: Привет."),
    ("Quelle est la capitale de l'Australie ?", "La capitale de l'Australie est Canberra, et non Sydney."),
    ("¿Cuántos días tiene un año bisiesto?", "Un año bisiesto tiene 366 días: febrero tiene 29 días en lugar de 28."),
    ("Wie viele Bundesländer hat Deutschland?", "Deutschland hat 16 Bundesländer, darunter die drei Stadtstaaten Berlin, Hamburg und Bremen."),
    ("日本で一番高い山は何ですか？", "日本で一番高い山は富士山で、標高は3,776メートルです。"),
    ("水的沸点是多少？", "在标准大气压下，水的沸点是100摄氏度（212华氏度）。"),
    ("ما هي عاصمة مصر؟", "عاصمة مصر هي القاهرة."),
    ("מה בירת יפן?", "בירת יפן היא טוקיו."),
    ("भारत की राजधानी क्या है?", "भारत की राजधानी नई दिल्ली है।"),
    ("Thủ đô của Việt Nam là gì?", "Thủ đô của Việt Nam là Hà Nội."),
    ("What do the emoji 👩🏽‍💻 and 🏳️‍🌈 consist of?", "👩🏽‍💻 is woman + medium skin tone modifier + ZWJ + laptop. 🏳️‍🌈 is white flag + variation selector-16 + ZWJ + rainbow."),
    ("Why is the Swedish 'Å' sometimes two characters?", "It can be written as U+00C5 or as A followed by U+030A (combining ring above): A\u030a. Both display the same."),
    ("Mix English and Arabic in one sentence.", "The word for book is كتاب (kitāb), and the plural is كتب (kutub)."),
    ("Flag emoji for Japan and Brazil?", "🇯🇵 and 🇧🇷: each flag is a pair of regional indicator symbols."),
]

WHITESPACE = [
    ("  leading and trailing spaces  ", "  Spaces are kept exactly.  "),
    ("\nstarts with a newline", "\n\nSo does this answer."),
    ("windows\r\nline endings\r\n", "Handled:\r\nCRLF stays CRLF.\r\n"),
    ("tab\tseparated\tvalues", "col_a\tcol_b\n1\t2"),
    ("no\u00a0break\u00a0spaces and zero\u200bwidth", "NBSP (U+00A0) and ZWSP (U+200B) are ordinary characters here."),
    ("Format this as a Makefile rule: build runs `python -m build`", "```make\nbuild:\n\tpython -m build\n```\n\nRecipe lines must start with a tab, not spaces."),
    ("What's in this CSV?\r\nname,age\r\nAna,31\r\nOmar,27\r\n", "Two rows: Ana (31) and Omar (27). The file uses CRLF line endings."),
    ("ends with blank lines\n\n\n", "Trailing blank lines are part of the message.\n\n"),
]

CONTROL_LIKE = [
    ("Why does my log contain the text <|eot_id|> in the middle of a line?", "Your code printed a decoded token sequence. <|eot_id|> is Llama 3's end-of-turn token; in your text it is just characters."),
    ("Is '<|im_start|>user' a valid string in a Python file?", "Yes. It is ordinary text; only a tokenizer asked to parse special tokens would turn <|im_start|> into a control token."),
    ("My template prints [INST] and </s> literally. Is that a bug?", "Probably: [INST] and </s> are Mistral/Llama 2 control markers and should come from the template, not from user text."),
    ("Explain what <think> tags are used for in some chat formats.", "Some reasoning models write their intermediate reasoning between think tags before the final answer; trainers often drop that reasoning from earlier turns."),
    ("What is <|begin_of_text|><|start_header_id|>system<|end_header_id|> ?", "That is the start of a Llama 3 prompt: the BOS token, then a header naming the system role. Typed by a user it is plain text."),
    ("Should user text containing <|im_end|> end the turn?", "No. Text a user types must be encoded as text; otherwise users could inject turns. <|im_end|> as text is several ordinary tokens."),
]


class Deck:
    """Deals a table's entries in shuffled rounds, so every edge case appears (``rng.choice`` could skip one)."""

    def __init__(self, table: list[Turn]) -> None:
        self.table = table
        self.cards: list[Turn] = []

    def __call__(self, rng: random.Random) -> list[Turn]:
        if not self.cards:
            self.cards = rng.sample(self.table, len(self.table))
        return [self.cards.pop()]


# ------------------------------------------------------------------------------------ long messages


def long_checklist(rng: random.Random) -> list[Turn]:
    steps = rng.randint(30, 60)
    actions = [
        "place the reference weight",
        "record the reading",
        "tare the scale",
        "wait ten seconds",
        "compare with the previous reading",
        "note the room temperature",
        "wipe the platform",
    ]
    body = "\n".join(
        f"{i}. {rng.choice(actions).capitalize()} (target {rng.randint(1, 5000)} g, tolerance ±{rng.randint(1, 5)} g)."
        for i in range(1, steps + 1)
    )
    return [
        (
            "Write a detailed checklist for calibrating a kitchen scale.",
            "Here is a thorough checklist:\n\n" + body + "\n\nDone.",
        )
    ]


def long_history(rng: random.Random) -> list[Turn]:
    chosen = rng.sample(HISTORY, len(HISTORY))
    sections = "\n\n".join(f"## {e[0].upper()}{e[1:]} ({d})\n\n{x}" for e, d, x in chosen)
    return [
        (
            "Write an overview of several turning points in history, with a heading per event.",
            "# Turning points\n\n"
            + sections
            + "\n\n## Timeline\n\n"
            + "\n".join(f"- {d}: {e}" for e, d, _ in chosen)
            + "\n\nThe sections are in no particular order.",
        )
    ]


def long_paste(rng: random.Random) -> list[Turn]:
    lines = []
    for i in range(rng.randint(60, 110)):
        level = rng.choice(["INFO", "INFO", "INFO", "WARN", "ERROR"])
        lines.append(
            f"2024-03-15T10:{i // 60:02d}:{i % 60:02d}Z {level} worker-{rng.randint(1, 4)} "
            f"processed batch {i} in {rng.randint(20, 900)} ms"
        )
    errors = sum(" ERROR " in x for x in lines)
    return [
        (
            "Summarize this log:\n\n" + "\n".join(lines),
            f"The log covers {len(lines)} batches. {errors} lines are errors; the rest are INFO or WARN. "
            "Check the ERROR lines first, then look for workers with unusually slow batches.",
        )
    ]


GENERATORS: list[tuple[Callable[[random.Random], list[Turn]], float]] = [
    (arithmetic, 5),
    (percentage, 2),
    (equation, 2),
    (fraction, 1),
    (average, 2),
    (word_problem, 4),
    (conversion, 4),
    (code, 5),
    (debug, 3),
    (json_answer, 2),
    (recipe, 3),
    (travel, 3),
    (history, 4),
    (writing, 4),
    (Deck(LANGUAGE_PAIRS), 6),
    (Deck(WHITESPACE), 3),
    (Deck(CONTROL_LIKE), 2),
    (long_checklist, 0.4),
    (long_history, 0.4),
    (long_paste, 0.4),
]


def conversation(rng: random.Random) -> list[dict[str, str]]:
    funcs, weights = zip(*GENERATORS, strict=True)
    n_turns = rng.choice([1, 1, 1, 2, 2, 3, 4])
    turns: list[Turn] = []
    while len(turns) < n_turns:
        turns += rng.choices(funcs, weights)[0](rng)
    messages = [
        {"role": r, "content": c} for u, a in turns[:n_turns] for r, c in (("user", u), ("assistant", a))
    ]
    if rng.random() < 0.35:
        messages.insert(0, {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    return messages


def generate(n: int = N_CONVERSATIONS, seed: int = 0) -> str:
    """The dataset as JSONL text: ``n`` conversations, one ``{"messages": [...]}`` per line."""
    rng = random.Random(seed)
    for func, _ in GENERATORS:
        if isinstance(func, Deck):
            func.cards = []  # each call starts from the same state
    return "".join(json.dumps({"messages": conversation(rng)}, ensure_ascii=False) + "\n" for _ in range(n))


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(generate().encode("utf-8"))  # bytes: no newline translation on Windows
    print(f"wrote {OUT} ({N_CONVERSATIONS} conversations)")


if __name__ == "__main__":
    main()
