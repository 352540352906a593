"""Prompt styles as data: zero-/few-shot chain-of-thought, direct, chat-boxed, program-of-thought, tool use.

Implements docs/methods/evaluation.md §g.2: the CoT templates of the math-evaluation-harness lineage (`cot`, `direct`,
`jiuzhang`, `deepseek_math`, `prm800k`, `alpaca`, `alpaca_step`, `icot`), program-of-thought (`pal` of
Gao et al. 2023 "PAL: Program-aided Language Models": `solution()` returns the answer; `pot` of Chen et
al. 2023 "Program of Thoughts Prompting": the program prints it; `pot_alpaca` of MAmmoTH/SDAT) and
tool-integrated reasoning (`tora`, `jiuzhang_tora`, Gou et al. 2024 "ToRA").

Few-shot assembly follows the harness: `splitter.join(demo_in + demo_out) + splitter + template(q)`,
stripped at both ends. The demonstrations are our own [library]: every demo is one record (question,
worked solution, answer, program, the program's printed output) rendered per style, so the same facts
feed the CoT, PoT, PAL and tool demos; tests execute every program and check its output and answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALPACA_HEADER = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the "
    "request.\n\n### Instruction:\n{q}\n\n### Response:"
)
# docs/methods/sdat.md §b.6: the MAmmoTH/SDAT stop list.
ALPACA_STOP = ("Question:", "Question", "USER:", "USER", "ASSISTANT:", "ASSISTANT", "Instruction:",
               "Instruction", "Response:", "Response", "### Instruction")


@dataclass(frozen=True)
class PromptStyle:
    """One prompt style. `kind`: `text` (answer read from the text), `program` (one program is run and its
    result is the answer) or `tool` (code runs in rounds, §g.2 loop). `exec_mode` is the sandbox mode."""

    name: str
    template: str
    splitter: str = "\n\n\n"
    stop: tuple[str, ...] = ()
    demo_format: str = "cot"
    kind: str = "text"
    exec_mode: str | None = None
    max_rounds: int = 1
    answer_marker: str | None = None
    question_suffix: str = ""
    needs_eos: bool = False

    def wrap(self, question: str, eos: str = "") -> str:
        q = question + self.question_suffix
        return self.template.replace("{eos}", eos).replace("{q}", q)


STYLES: dict[str, PromptStyle] = {s.name: s for s in (
    PromptStyle("cot", "Question: {q}\nAnswer: ", stop=("\n\nQuestion:",)),
    PromptStyle("direct", "Question: {q}\nAnswer: ", splitter="\n\n", stop=("\n\nQuestion:",),
                demo_format="direct"),
    PromptStyle("jiuzhang", "## Question\n{q}\n\n## Solution\n", stop=("\n\n## Question",),
                demo_format="boxed"),
    PromptStyle("deepseek_math", "User: {q}\nPlease reason step by step, and put your final answer within "
                "\\boxed{}.\n\nAssistant:", demo_format="chat_boxed"),
    PromptStyle("prm800k", "# Question\n\n{q}\n\n# Solution\n\n", demo_format="prm800k",
                answer_marker="# Answer\n\n"),
    PromptStyle("alpaca", ALPACA_HEADER, stop=ALPACA_STOP, demo_format="none"),
    PromptStyle("alpaca_step", ALPACA_HEADER + " Let's think step by step.", stop=ALPACA_STOP[:-1],
                demo_format="none"),
    PromptStyle("icot", " {q} {eos} ", demo_format="none", needs_eos=True),
    # The `question||cot #### answer` line format that mathforge's own training renders (data/tasks):
    # the model continues after `||` with its chain of thought and `#### answer`.
    PromptStyle("line", "{q}||", demo_format="none"),
    # The question exactly as given: a task generator's prompt, as the model was trained on it.
    PromptStyle("raw", "{q}", demo_format="none"),
    PromptStyle("pal", "Question: {q}\n\n", splitter="\n---\n", stop=("\n\n---", "```output"),
                demo_format="pal", kind="program", exec_mode="pal"),
    PromptStyle("pot", "Question: {q}\nWrite a Python program that prints the answer.\n",
                stop=("\n\nQuestion:", "```output"), demo_format="pot", kind="program", exec_mode="print"),
    PromptStyle("pot_alpaca", ALPACA_HEADER, stop=ALPACA_STOP, demo_format="none", kind="program",
                exec_mode="print", question_suffix=" Let's write a program."),
    PromptStyle("tora", "Question: {q}\n\nSolution:\n", splitter="\n---\n", stop=("\n\n---", "```output"),
                demo_format="tora", kind="tool", exec_mode="harness", max_rounds=4),
    PromptStyle("jiuzhang_tora", "## Question\n{q}\n\n## Code Solution\n", splitter="\n---\n",
                stop=("\n\n---", "```output"), demo_format="tora", kind="tool", exec_mode="harness",
                max_rounds=4),
)}
ALIASES = {"chat-boxed": "deepseek_math", "chat_boxed": "deepseek_math", "program-of-thought": "pot",
           "tool-integrated": "tora", "tool_integrated": "tora"}


@dataclass(frozen=True)
class Demo:
    """One worked example. `program` (stdlib only) prints `printed`; `answer` is the final answer as LaTeX
    or a letter. `plan` is the one-sentence lead-in the program styles use."""

    question: str
    solution: str
    answer: str
    program: str = ""
    printed: str = ""
    plan: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)


def _d(q: str, sol: str, ans: str, prog: str = "", printed: str = "", plan: str = "") -> Demo:
    return Demo(q, sol, ans, prog.strip("\n"), printed or ans, plan or "Let's compute it with Python.")


GSM8K_DEMOS = (
    _d("Maya buys 3 packs of pencils with 12 pencils in each pack. She gives 9 pencils to her brother. "
       "How many pencils does she have left?",
       "Maya buys 3 * 12 = 36 pencils. After giving 9 away she has 36 - 9 = 27 pencils.", "27",
       "packs = 3\nper_pack = 12\ngiven = 9\nleft = packs * per_pack - given\nprint(left)"),
    _d("A bakery sells muffins for $2 each and cookies for $1.50 each. On Monday it sold 40 muffins and "
       "30 cookies. How many dollars did it make on Monday?",
       "The muffins bring 40 * 2 = 80 dollars and the cookies 30 * 1.50 = 45 dollars. "
       "Together that is 80 + 45 = 125 dollars.", "125",
       "muffins = 40 * 2\ncookies = 30 * 3 / 2\ntotal = muffins + cookies\nprint(int(total))"),
    _d("Tom reads 15 pages a day. His book has 240 pages and he has already read 60 of them. How many "
       "more days does he need to finish the book?",
       "He still has 240 - 60 = 180 pages to read. At 15 pages a day that takes 180 / 15 = 12 days.",
       "12", "remaining = 240 - 60\ndays = remaining // 15\nprint(days)"),
    _d("A farmer has 4 rows of apple trees with 9 trees in each row. Each tree gives 25 apples. He packs "
       "the apples in bags of 10. How many bags can he fill?",
       "There are 4 * 9 = 36 trees, which give 36 * 25 = 900 apples. That fills 900 / 10 = 90 bags.",
       "90", "trees = 4 * 9\napples = trees * 25\nbags = apples // 10\nprint(bags)"),
    _d("Lena earns $18 per hour and works 6 hours a day for 5 days. She spends one third of her earnings "
       "on rent. How many dollars does she have left?",
       "She earns 18 * 6 * 5 = 540 dollars. Rent is 540 / 3 = 180 dollars, so she keeps "
       "540 - 180 = 360 dollars.", "360",
       "earned = 18 * 6 * 5\nrent = earned // 3\nprint(earned - rent)"),
    _d("A school has 320 students. 45% of them take the bus, and one quarter of the others walk. The rest "
       "are driven by their parents. How many students are driven?",
       "The bus takes 320 * 45 / 100 = 144 students, leaving 320 - 144 = 176. One quarter of them, "
       "176 / 4 = 44, walk, so 176 - 44 = 132 are driven.", "132",
       "bus = 320 * 45 // 100\nothers = 320 - bus\nwalk = others // 4\nprint(others - walk)"),
    _d("A train travels at 80 km per hour for 2.5 hours, then at 60 km per hour for 1.5 hours. How many "
       "kilometres does it travel in total?",
       "The first part is 80 * 2.5 = 200 km and the second 60 * 1.5 = 90 km, so 200 + 90 = 290 km.",
       "290", "first = 80 * 5 / 2\nsecond = 60 * 3 / 2\nprint(int(first + second))"),
    _d("Sam lost 7 of his marbles. Then he bought twice as many marbles as he had left, and now he has "
       "48 marbles. How many marbles did he have at first?",
       "After losing 7 he had some number m, and buying 2m more gives 3m = 48, so m = 16. "
       "At first he had 16 + 7 = 23 marbles.", "23",
       "start = 7\nwhile 3 * (start - 7) != 48:\n    start += 1\nprint(start)"),
)

MATH_DEMOS = (
    _d("What is the value of $\\frac{2}{3} + \\frac{5}{12}$?",
       "Over the common denominator 12, $\\frac{2}{3} = \\frac{8}{12}$, so the sum is "
       "$\\frac{8}{12} + \\frac{5}{12} = \\frac{13}{12}$.", "\\frac{13}{12}",
       "from fractions import Fraction\nprint(Fraction(2, 3) + Fraction(5, 12))", "13/12"),
    _d("Find the sum of all solutions of $x^2 - 7x + 10 = 0$.",
       "The quadratic factors as $(x - 2)(x - 5) = 0$, so the solutions are $2$ and $5$ and their sum "
       "is $7$.", "7",
       "import math\na, b, c = 1, -7, 10\nr = math.isqrt(b * b - 4 * a * c)\n"
       "roots = [(-b + r) // (2 * a), (-b - r) // (2 * a)]\nprint(sum(roots))"),
    _d("How many positive divisors does $72$ have?",
       "Since $72 = 2^3 \\cdot 3^2$, it has $(3 + 1)(2 + 1) = 12$ positive divisors.", "12",
       "print(sum(1 for d in range(1, 73) if 72 % d == 0))"),
    _d("If $f(x) = 3x^2 - 2x + 1$, what is $f(-2)$?",
       "$f(-2) = 3 \\cdot 4 - 2 \\cdot (-2) + 1 = 12 + 4 + 1 = 17$.", "17",
       "def f(x):\n    return 3 * x**2 - 2 * x + 1\nprint(f(-2))"),
    _d("What is the remainder when $7^{100}$ is divided by $5$?",
       "Since $7 \\equiv 2 \\pmod 5$ and $2^4 = 16 \\equiv 1 \\pmod 5$, we get "
       "$7^{100} \\equiv (2^4)^{25} \\equiv 1 \\pmod 5$.", "1", "print(pow(7, 100, 5))"),
    _d("A bag holds 4 red and 6 blue marbles. Two marbles are drawn without replacement. What is the "
       "probability that both are red? Express your answer as a common fraction.",
       "The first marble is red with probability $\\frac{4}{10}$ and then the second with probability "
       "$\\frac{3}{9}$, so both are red with probability $\\frac{4}{10} \\cdot \\frac{3}{9} = \\frac{2}{15}$.",
       "\\frac{2}{15}",
       "from fractions import Fraction\nprint(Fraction(4, 10) * Fraction(3, 9))", "2/15"),
)

MMLU_STEM_DEMOS = (
    _d("What is the derivative of $x^3$?\nAnswer Choices: (A) 3x^2 (B) x^2 (C) 3x (D) x^4/4",
       "By the power rule the derivative of $x^3$ is $3x^2$, which is choice A.", "A"),
    _d("Which of the following numbers is prime?\nAnswer Choices: (A) 21 (B) 27 (C) 29 (D) 33",
       "21 = 3 * 7, 27 = 3 * 9 and 33 = 3 * 11 are composite, while 29 has no divisor other than 1 and "
       "itself, so the answer is C.", "C"),
    _d("If 2x + 3 = 11, what is x?\nAnswer Choices: (A) 3 (B) 4 (C) 5 (D) 7",
       "Subtracting 3 gives 2x = 8, so x = 4, which is choice B.", "B"),
    _d("What is the sum of the interior angles of a hexagon, in degrees?\nAnswer Choices: (A) 540 (B) 620 "
       "(C) 900 (D) 720",
       "The interior angles of an n-gon sum to (n - 2) * 180, so a hexagon has 4 * 180 = 720 degrees, "
       "choice D.", "D"),
)

AQUA_DEMOS = (
    _d("A shop sells a shirt for $40 after a 20% discount. What was the original price? Answer Choices: "
       "(A) $45 (B) $48 (C) $50 (D) $52 (E) $60",
       "The sale price is 80% of the original, so the original price is 40 / 0.8 = 50 dollars, choice C.",
       "C"),
    _d("The average of five numbers is 14. When one number is removed, the average of the other four is "
       "12. Which number was removed? Answer Choices: (A) 16 (B) 18 (C) 20 (D) 22 (E) 24",
       "The five numbers sum to 5 * 14 = 70 and the four to 4 * 12 = 48, so the removed number is "
       "70 - 48 = 22, choice D.", "D"),
    _d("A car covers 150 km in 2.5 hours. What is its average speed in km/h? Answer Choices: (A) 60 "
       "(B) 55 (C) 50 (D) 65 (E) 75",
       "Speed is distance over time: 150 / 2.5 = 60 km/h, choice A.", "A"),
    _d("In how many ways can 3 books be chosen from 7 different books? Answer Choices: (A) 21 (B) 35 "
       "(C) 30 (D) 28 (E) 42",
       "Order does not matter, so the count is C(7, 3) = 7 * 6 * 5 / 6 = 35, choice B.", "B"),
)

DEMO_FAMILIES: dict[str, tuple[Demo, ...]] = {
    "gsm8k": GSM8K_DEMOS, "math": MATH_DEMOS, "mmlu_stem": MMLU_STEM_DEMOS, "aqua": AQUA_DEMOS,
}
# §g.2 demo families; benchmarks not listed fall back by answer type (LaTeX -> math).
BENCHMARK_FAMILY: dict[str, str] = {
    "gsm8k": "gsm8k", "svamp": "gsm8k", "asdiv": "gsm8k", "mawps": "gsm8k", "gsm_hard": "gsm8k",
    "tabmwp": "gsm8k", "gsm8k-icot": "gsm8k",
    "math": "math", "math500": "math", "minerva_math": "math", "carp_en": "math", "aime24": "math",
    "amc23": "math", "college_math": "math", "gaokao2023en": "math", "olympiadbench": "math",
    "sat_math": "mmlu_stem", "mmlu_stem": "mmlu_stem", "aqua": "aqua", "mathqa": "aqua",
}


def get_style(name: str) -> PromptStyle:
    """The style called `name` (aliases such as `chat-boxed` accepted); a clear error otherwise."""
    key = ALIASES.get(name, name)
    if key not in STYLES:
        raise ValueError(f"unknown prompt style {name!r}; known: {', '.join(sorted(STYLES))}")
    return STYLES[key]


def demo_family(benchmark: str) -> str:
    """Which demo set a benchmark uses (§g.2); `mawps/addsub` -> `mawps` -> `gsm8k`."""
    base = benchmark.split("/")[0]
    if base.startswith("multiplication"):
        raise ValueError(f"benchmark {benchmark!r} has no few-shot demos; use --shots 0")
    return BENCHMARK_FAMILY.get(base, "math")


def _boxed(answer: str) -> str:
    return f"$\\boxed{{{answer}}}$"


def _pal_program(program: str) -> str:
    """The PAL form of a printing program: the body moves into `solution()` and the final print returns."""
    lines = program.splitlines()
    last = lines[-1]
    indent = last[: len(last) - len(last.lstrip())]
    if not last.strip().startswith("print(") or indent:
        raise ValueError(f"demo program must end with a top-level print(...): {last!r}")
    body = lines[:-1] + [f"return {last.strip()[len('print('):-1]}"]
    return "def solution():\n" + "\n".join("    " + ln if ln else ln for ln in body)


def render_demo(demo: Demo, style: PromptStyle) -> str:
    """The text the model should produce for `demo` under `style` (the demo output)."""
    fmt, ans = style.demo_format, demo.answer
    if fmt in ("pal", "pot", "tora") and not demo.program:
        raise ValueError(f"style {style.name!r} needs program demos; this benchmark's family has none")
    if fmt == "cot":
        return f"{demo.solution} The answer is {ans}."
    if fmt == "direct":
        return f"The answer is {ans}."
    if fmt == "boxed":
        return f"{demo.solution}\nThe answer is {_boxed(ans)}."
    if fmt == "chat_boxed":
        return f" {demo.solution} The final answer is {_boxed(ans)}."
    if fmt == "prm800k":
        return demo.solution.replace(". ", ".\n\n") + f"\n\n# Answer\n\n{ans}"
    if fmt == "pal":
        return f"```python\n{_pal_program(demo.program)}\n```"
    if fmt == "pot":
        return f"```python\n{demo.program}\n```"
    if fmt == "tora":
        return (f"{demo.plan}\n```python\n{demo.program}\n```\n```output\n{demo.printed}\n```\n"
                f"The answer is {_boxed(ans)}.")
    raise ValueError(f"style {style.name!r} takes no few-shot demos (demo format {fmt!r}); use shots=0")


def build_prompt(question: str, style: str | PromptStyle, *, shots: int = 0, benchmark: str = "gsm8k",
                 eos: str = "", demos: list[Demo] | None = None) -> str:
    """The exact prompt for `question`: zero-shot `template(q)`, or `shots` demos of the benchmark's
    family (or the given `demos`: exemplars from a train split or a file, `mathforge.data.sources`)
    joined by the style's splitter before it (§g.2 few-shot assembly)."""
    st = get_style(style) if isinstance(style, str) else style
    if st.needs_eos and not eos:
        raise ValueError(f"style {st.name!r} needs the tokenizer's EOS string (eos=...)")
    if shots < 0:
        raise ValueError(f"shots must be >= 0, got {shots}")
    target = st.wrap(question, eos)
    if shots == 0:
        return target
    demos = list(demos) if demos is not None else DEMO_FAMILIES[demo_family(benchmark)]
    if shots > len(demos):
        raise ValueError(f"benchmark {benchmark!r} has {len(demos)} demos; asked for shots={shots}")
    parts = [st.wrap(d.question, eos) + render_demo(d, st) for d in demos[:shots]]
    return st.splitter.join(parts + [target]).strip()


def stop_strings(style: str | PromptStyle, eos: str | None = None) -> list[str]:
    """Stop strings of a style (§g.2); EOS is always a stop as well (engines stop at EOS themselves)."""
    st = get_style(style) if isinstance(style, str) else style
    stops = list(st.stop)
    if eos and eos not in stops:
        stops.append(eos)
    return stops


def list_styles() -> list[str]:
    return sorted(STYLES)
